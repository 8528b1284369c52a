// Runs grouped by one column's value, with each group's statistics per summary column (pure: node's
// tests cover it; pages/runs.js draws the groups as rows that expand to their runs).
import { formatNumber } from "../shared/chart.js";
import { jsonText, plural, valueText } from "./format.js";
import { compareValues } from "./table.js";

export const NO_VALUE = "(no value)"; // the group of the runs that lack the key

/**
 * The groups of runs by column.value(run): [{key, value, label, runs}], in compareValues' order of
 * the values, the group of runs without one last. Values are the same when their JSON is (so 1 and
 * 1.0 are one group, NaN is a group of its own); each group keeps its runs in the order given.
 */
export function groupRuns(runs, column) {
  const groups = new Map();
  for (const run of runs) {
    const value = column.value(run);
    const missing = value === undefined;
    const key = missing ? "" : `=${jsonText(value)}`;
    if (!groups.has(key)) groups.set(key, { key, value, missing, label: missing ? NO_VALUE : valueText(value), runs: [] });
    groups.get(key).runs.push(run);
  }
  return [...groups.values()].sort((a, b) => (a.missing !== b.missing ? (a.missing ? 1 : -1) : compareValues(a.value, b.value)));
}

/**
 * The statistics of one column over runs: {count, mean, min, max} of its finite numbers (mean,
 * min and max are null when there is none), and how many runs had none of those: nan, infinite,
 * missing (no value) and other (text, booleans, objects). A summary kept by define_metric counts
 * as the number the table sorts it by (summaryValue: "max 0.98" is 0.98).
 */
export function columnStats(runs, column) {
  const stats = { count: 0, mean: null, min: null, max: null, nan: 0, infinite: 0, missing: 0, other: 0 };
  let sum = 0;
  for (const run of runs) {
    const value = column.value(run);
    if (value === undefined || value === null) stats.missing++;
    else if (typeof value !== "number") stats.other++;
    else if (Number.isNaN(value)) stats.nan++;
    else if (!Number.isFinite(value)) stats.infinite++;
    else {
      stats.count++;
      sum += value;
      stats.min = stats.min === null ? value : Math.min(stats.min, value);
      stats.max = stats.max === null ? value : Math.max(stats.max, value);
    }
  }
  if (stats.count) stats.mean = sum / stats.count;
  return stats;
}

/**
 * columnStats as a cell reads: {mean: "mean 0.5233" (or "no number"), range: "0.31–0.74" (or ""
 * for a single number), note: what was left out, "1 NaN · 2 missing" (or "")}.
 */
export function statsText(stats) {
  const left = [
    [stats.nan, "NaN"],
    [stats.infinite, "infinite"],
    [stats.missing, "missing"],
    [stats.other, "not a number"],
  ]
    .filter(([count]) => count > 0)
    .map(([count, what]) => `${count} ${what}`)
    .join(" · ");
  if (stats.count === 0) return { mean: "no number", range: "", note: left };
  const range = stats.min === stats.max ? "" : `${formatNumber(stats.min)}–${formatNumber(stats.max)}`;
  return { mean: `mean ${formatNumber(stats.mean)}`, range, note: left };
}

/** A group's heading: "lr = 0.01 · 3 runs". */
export function groupHeading(column, group) {
  return `${column.label} = ${group.label} · ${plural(group.runs.length, "run")}`;
}
