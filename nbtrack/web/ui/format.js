// Text for values the UI shows (pure: node's tests cover it). Numbers follow chart.js's rules, so
// a value reads the same in the panel, the tables and the charts' tooltips.
import { formatNumber } from "../shared/chart.js";
import { HISTOGRAM_TYPE, IMAGE_TYPE, SUMMARY_KINDS, TABLE_TYPE } from "../shared/vocabulary.js";

// The kinds a kept summary object holds, in the order they are read ("none" keeps nothing).
const KEPT_KINDS = SUMMARY_KINDS.filter((kind) => kind !== "none");

/** A config or summary value in a table cell: numbers as formatNumber, objects as compact JSON. */
export function valueText(value) {
  if (value === undefined) return "";
  if (value === null) return "null";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return mediaText(value) ?? jsonText(value);
}

/** A summary value in a table cell: a kept summary as formatSummary writes it, else as valueText. */
export function summaryText(value) {
  return formatSummary(value) ?? valueText(value);
}

/**
 * A summary kept by define_metric ({"max": 0.98}, {"min": .., "max": ..}) as [kind, number] pairs
 * in reading order, or null when value is not one (a number, a string, any other object).
 */
function keptSummary(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const entries = Object.entries(value);
  if (entries.length === 0 || !entries.every(([kind, number]) => KEPT_KINDS.includes(kind) && typeof number === "number")) return null;
  return KEPT_KINDS.filter((kind) => kind in value).map((kind) => [kind, value[kind]]);
}

/**
 * A kept summary as text, "max 0.9894" or "min 0.1 · max 0.9" (numbers as formatNumber), or null
 * when value is not one. The twin of nbtrack/formatting.py's format_summary (same cases:
 * tests/js/format_cases.json).
 */
export function formatSummary(value) {
  const kept = keptSummary(value);
  return kept === null ? null : kept.map(([kind, number]) => `${kind} ${formatNumber(number)}`).join(" · ");
}

/**
 * The value a summary sorts by: a kept summary's first number in reading order (its last, else
 * min, max, mean: the first one formatSummary shows), any other value as it is. The twin of
 * formatting.py's summary_value.
 */
export function summaryValue(value) {
  const kept = keptSummary(value);
  return kept === null ? value : kept[0][1];
}

/** A logged image, histogram or table (a reference in the summary or history) in a few words; else null. */
export function mediaText(value) {
  const type = value !== null && typeof value === "object" ? value._type : undefined;
  if (type === IMAGE_TYPE) return `image ${value.width}×${value.height}`;
  if (type === HISTOGRAM_TYPE) return `histogram (${Array.isArray(value.values) ? value.values.length : 0} bins)`;
  if (type === TABLE_TYPE) return `table ${value.nrows}×${value.ncols}`;
  return null;
}

/** A value as JSON, NaN and infinities written as nbtrack's dialect writes them ("NaN", "-Infinity"). */
export function jsonText(value) {
  if (typeof value === "number") {
    if (Number.isFinite(value)) return JSON.stringify(value);
    return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
  }
  if (Array.isArray(value)) return `[${value.map(jsonText).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${jsonText(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value) ?? "null"; // strings, booleans, null (undefined, as in an array: null)
}

/** How long ago a unix time was, coarsely: "just now", "5 min ago", "3 h ago", "4 days ago", or a date. */
export function formatAgo(seconds, now = Date.now() / 1000) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) return "";
  const age = now - seconds;
  if (age < 45) return "just now";
  if (age < 3600) return `${Math.max(1, Math.round(age / 60))} min ago`;
  if (age < 86400) return `${Math.round(age / 3600)} h ago`;
  if (age < 30 * 86400) {
    const days = Math.round(age / 86400);
    return `${days} day${days === 1 ? "" : "s"} ago`;
  }
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

/** "3 runs", "1 run". */
export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
