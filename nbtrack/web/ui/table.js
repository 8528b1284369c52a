// The runs table's columns, sorting and filtering (pure: node's tests cover it; pages/runs.js
// draws the result).
import { formatDuration } from "../shared/chart.js";
import { formatAgo, summaryText, summaryValue, valueText } from "./format.js";
import { naturalCompare } from "./model.js";
import { RUN_STATES } from "../shared/vocabulary.js";

export const STATES = RUN_STATES; // the filter offers every stored state

/**
 * The columns for a list of normalized runs: the run's own fields, then one per config key and one
 * per summary key any run has (summary keys starting with "_" are bookkeeping and left out). A
 * summary kept by define_metric reads "max 0.9894" and sorts by that number (summaryValue).
 * A column is {id, label, group: "run" | "config" | "summary", value(run), text(run)}.
 */
export function runColumns(runs, now = Date.now() / 1000) {
  const columns = [
    { id: "name", label: "Name", group: "run", value: (r) => r.name, text: (r) => r.name },
    { id: "state", label: "State", group: "run", value: (r) => r.state, text: (r) => r.state },
    { id: "created", label: "Created", group: "run", value: (r) => r.createdAt, text: (r) => formatAgo(r.createdAt, now) },
    { id: "runtime", label: "Runtime", group: "run", value: (r) => r.runtime, text: (r) => formatDuration(r.runtime) },
    { id: "tags", label: "Tags", group: "run", value: (r) => (r.tags.length ? r.tags.join(", ") : undefined), text: (r) => r.tags.join(", ") },
  ];
  const keysOf = (field, skip) => {
    const keys = new Set();
    for (const run of runs) for (const key of Object.keys(run[field])) if (!skip(key)) keys.add(key);
    return [...keys].sort(naturalCompare);
  };
  for (const key of keysOf("config", () => false)) {
    columns.push({ id: `config:${key}`, label: key, group: "config", value: (r) => r.config[key], text: (r) => valueText(r.config[key]) });
  }
  for (const key of keysOf("summary", (k) => k.startsWith("_"))) {
    columns.push({ id: `summary:${key}`, label: key, group: "summary", value: (r) => summaryValue(r.summary[key]), text: (r) => summaryText(r.summary[key]) });
  }
  return columns;
}

// Sort classes: numbers, then booleans, then strings, then anything else (as JSON); a missing value
// or a NaN sorts after all of them whichever the direction, so the rows worth reading stay on top.
function rank(value) {
  if (typeof value === "number") return Number.isNaN(value) ? 9 : 0;
  if (typeof value === "boolean") return 1;
  if (typeof value === "string") return 2;
  if (value === undefined || value === null) return 9;
  return 3;
}

/** Orders a and b for an ascending sort (missing values excepted: see sortRuns). */
export function compareValues(a, b) {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return a - b;
  if (ra === 1) return Number(a) - Number(b);
  if (ra === 2) return naturalCompare(a, b);
  if (ra === 3) return naturalCompare(JSON.stringify(a), JSON.stringify(b));
  return 0;
}

/** runs sorted by column (stable), "asc" or "desc"; missing values last either way. */
export function sortRuns(runs, column, direction = "asc") {
  const sign = direction === "desc" ? -1 : 1;
  return runs
    .map((run, index) => ({ run, index, value: column.value(run) }))
    .sort((a, b) => {
      const missingA = rank(a.value) === 9;
      const missingB = rank(b.value) === 9;
      if (missingA !== missingB) return missingA ? 1 : -1;
      return (missingA ? 0 : sign * compareValues(a.value, b.value)) || a.index - b.index;
    })
    .map((entry) => entry.run);
}

/**
 * The runs whose name, id, tags or group contain every word of `text` (case ignored) and whose
 * state is `state` ("" for any).
 */
export function filterRuns(runs, { text = "", state = "" } = {}) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  return runs.filter((run) => {
    if (state && run.state !== state) return false;
    if (words.length === 0) return true;
    const haystack = [run.name, run.id, run.group || "", ...run.tags].join("\n").toLowerCase();
    return words.every((word) => haystack.includes(word));
  });
}
