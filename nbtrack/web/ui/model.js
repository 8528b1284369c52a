// What the server sends, turned into what the pages draw (pure: node's tests cover it).
import { jsonText } from "./format.js";
import { parseJSON } from "./json.js";
import { CLIENT_CONFIG_KEY } from "../shared/vocabulary.js";

// The history fields every row has; they are x axes, not metrics.
const SYSTEM_KEY = /^_/;

function parsedObject(text) {
  if (text === null || text === undefined || text === "") return {};
  const value = typeof text === "string" ? parseJSON(text) : text;
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

/**
 * A run as the pages use it, from a GraphQL Run: `id` is the run id (GraphQL `name`), `name` what
 * people read (displayName, else the id), config unwrapped from W&B's {"key": {"value": v}} form,
 * the wandb client's own entry left out, summary parsed (NaN and infinities kept). Fields the query
 * did not ask for stay undefined.
 */
export function normalizeRun(raw) {
  const config = {};
  for (const [key, item] of Object.entries(parsedObject(raw.config))) {
    if (key === CLIENT_CONFIG_KEY) continue;
    const wrapped = item !== null && typeof item === "object" && !Array.isArray(item) && "value" in item;
    config[key] = wrapped ? item.value : item;
  }
  return {
    ...raw,
    id: raw.name,
    name: raw.displayName || raw.name,
    config,
    summary: parsedObject(raw.summaryMetrics),
    tags: Array.isArray(raw.tags) ? raw.tags : [],
  };
}

/**
 * The step metrics a run declared (define_metric(name, step_metric=...)), in order: from nbtrack's
 * own metric list (Run.metrics) and from the wandb client's config entry, whose "m" list names a
 * step metric by its 1-based index ("5") or by name ("4"). These are the run's extra x axes.
 */
export function stepMetrics(raw) {
  const found = [];
  const add = (name) => {
    if (typeof name === "string" && name && !SYSTEM_KEY.test(name) && !found.includes(name)) found.push(name);
  };
  let metrics = raw.metrics;
  try {
    if (typeof metrics === "string") metrics = parseJSON(metrics);
  } catch {
    metrics = null; // not the list the schema promises: no step metric from it
  }
  if (Array.isArray(metrics)) for (const metric of metrics) if (metric && typeof metric === "object") add(metric.step_metric);
  const client = parsedObject(raw.config)[CLIENT_CONFIG_KEY];
  const own = client && typeof client === "object" && "value" in client ? client.value : client;
  const entries = own && typeof own === "object" ? own.m : null;
  if (Array.isArray(entries)) {
    for (const entry of entries) {
      if (!entry || typeof entry !== "object") continue;
      add(entry["4"]);
      const at = entry["5"];
      const named = Number.isInteger(at) && at >= 1 ? entries[at - 1] : null;
      if (named && typeof named === "object") add(named["1"]);
    }
  }
  return found;
}

/** The keys worth a chart: metric keys, not the _step/_runtime/_timestamp fields. */
export function metricKeys(keys) {
  return [...new Set(keys)].filter((key) => !SYSTEM_KEY.test(key)).sort(naturalCompare);
}

/** Names in the order people expect: "run-2" before "run-10", case ignored first. */
export function naturalCompare(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The series of a Run.chart answer ({"x", "lineCount", "exact", "series": {key: [[x, min, max], ...]}},
 * text or parsed) as a Map key -> {xs, lo, hi}; hi is null when every point has min == max (exact
 * data), so the chart draws a plain line. Points whose x is not a finite number are dropped; a
 * non-finite value stays, and breaks the line there. System keys are left out.
 */
export function chartSeries(answer) {
  const chart = typeof answer === "string" ? parseJSON(answer) : answer || {};
  const out = new Map();
  for (const [key, points] of Object.entries(chart.series || {})) {
    if (SYSTEM_KEY.test(key) || !Array.isArray(points)) continue;
    const xs = [];
    const lo = [];
    const hi = [];
    let banded = false;
    for (const point of points) {
      if (!Array.isArray(point) || typeof point[0] !== "number" || !Number.isFinite(point[0])) continue;
      const a = typeof point[1] === "number" ? point[1] : NaN;
      const b = point.length > 2 && typeof point[2] === "number" ? point[2] : a;
      xs.push(point[0]);
      lo.push(a);
      hi.push(b);
      if (b !== a && !(Number.isNaN(a) && Number.isNaN(b))) banded = true;
    }
    out.set(key, { xs, lo, hi: banded ? hi : null });
  }
  return out;
}

/** The info a chart payload carries besides its series: {x, lineCount, exact}. */
export function chartInfo(answer) {
  const chart = typeof answer === "string" ? parseJSON(answer) : answer || {};
  return { x: chart.x ?? "_step", lineCount: chart.lineCount ?? 0, exact: chart.exact !== false };
}

/**
 * Rows of a comparison table (config or summary of several runs): [key, values per run, differ],
 * keys in natural order (those `skip` says to leave out excepted). Values differ when their JSON
 * differs, so NaN equals NaN, and a key some runs lack differs.
 */
export function comparisonRows(objects, skip = () => false) {
  const keys = new Set();
  for (const object of objects) for (const key of Object.keys(object)) if (!skip(key)) keys.add(key);
  return [...keys].sort(naturalCompare).map((key) => {
    const values = objects.map((object) => object[key]);
    const texts = new Set(values.map((value) => (value === undefined ? undefined : jsonText(value))));
    return [key, values, texts.size > 1];
  });
}

/**
 * One stored console line, as console_format.py writes it ({"line", "stream", "_timestamp",
 * "_cell"}), or another client's plain text: {text, stream: "stdout" | "stderr", cell (or null)}.
 */
export function consoleLine(stored) {
  if (stored.startsWith('{"line":')) {
    try {
      const line = JSON.parse(stored);
      if (line && typeof line.line === "string") {
        return { text: line.line, stream: line.stream === "stderr" ? "stderr" : "stdout", cell: Number.isInteger(line._cell) ? line._cell : null };
      }
    } catch {
      // not ours after all: shown as it is
    }
  }
  return { text: stored, stream: "stdout", cell: null };
}
