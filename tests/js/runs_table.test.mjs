// The runs table's pure parts for hyperparameter work: the kept column choice (columns.js), groups
// and their statistics (grouping.js), the shared selection and brushing (selection.js), the
// parallel-coordinates axes (parallel.js) and the scatter's points (scatter.js). The pages
// themselves run in Chromium against a real server (tests/test_ui_runs_table_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { loadHidden, saveHidden, shownColumns, withColumn } from "../../nbtrack/web/ui/columns.js";
import { NO_VALUE, columnStats, groupHeading, groupRuns, statsText } from "../../nbtrack/web/ui/grouping.js";
import { axisOf, metricColor, metricShare, runPositions } from "../../nbtrack/web/ui/parallel.js";
import { numericColumns, scatterPoints } from "../../nbtrack/web/ui/scatter.js";
import { createSelection, idsWithin } from "../../nbtrack/web/ui/selection.js";
import { runColumns } from "../../nbtrack/web/ui/table.js";

function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

function run(id, config, summary = {}) {
  return { id, name: id, state: "finished", createdAt: 1, runtime: 2, tags: [], config, summary };
}

const RUNS = [
  run("a", { lr: 0.1, opt: "adam" }, { acc: 0.9, loss: 0.3 }),
  run("b", { lr: 0.01, opt: "sgd" }, { acc: 0.8, loss: NaN }),
  run("c", { lr: 0.01, opt: "adam" }, { acc: { max: 0.7 }, loss: 0.5 }),
  run("d", { lr: 0.001 }, { loss: "diverged" }),
  run("e", { opt: "sgd", lr: 1.0 }, { acc: Infinity, loss: 0.1 }),
];
const COLUMNS = runColumns(RUNS, 10);
const column = (id) => COLUMNS.find((c) => c.id === id);

test("columns: the hidden ones are kept per project, name always shows, bad items read as none", () => {
  const storage = memoryStorage();
  assert.deepEqual([...loadHidden(storage, "me", "p")], []);
  let hidden = withColumn(new Set(), "config:lr", false);
  hidden = withColumn(hidden, "runtime", false);
  hidden = withColumn(hidden, "name", false);
  assert.deepEqual([...hidden].sort(), ["config:lr", "runtime"]);
  assert.equal(saveHidden(storage, "me", "p", hidden), true);
  assert.deepEqual([...loadHidden(storage, "me", "p")].sort(), ["config:lr", "runtime"]);
  assert.deepEqual([...loadHidden(storage, "me", "other")], [], "another project keeps its own");
  assert.deepEqual(shownColumns(COLUMNS, hidden).map((c) => c.id), COLUMNS.map((c) => c.id).filter((id) => !hidden.has(id)));
  assert.equal(saveHidden(storage, "me", "p", withColumn(withColumn(hidden, "config:lr", true), "runtime", true)), true);
  assert.equal(storage.items.size, 0, "nothing hidden: nothing kept");
  storage.setItem("nbtrack.columns:me/p", "{not json");
  assert.deepEqual([...loadHidden(storage, "me", "p")], []);
  storage.setItem("nbtrack.columns:me/p", JSON.stringify(["name", 3, "tags"]));
  assert.deepEqual([...loadHidden(storage, "me", "p")], ["tags"]);
  const refusing = { getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("full"); }, removeItem: () => {} };
  assert.deepEqual([...loadHidden(refusing, "me", "p")], []);
  assert.equal(saveHidden(refusing, "me", "p", new Set(["tags"])), false);
});

test("grouping: one group per value in value order, the runs without one last", () => {
  const groups = groupRuns(RUNS, column("config:opt"));
  assert.deepEqual(groups.map((g) => [g.label, g.runs.map((r) => r.id)]), [["adam", ["a", "c"]], ["sgd", ["b", "e"]], [NO_VALUE, ["d"]]]);
  const byLr = groupRuns(RUNS, column("config:lr"));
  assert.deepEqual(byLr.map((g) => g.label), ["0.001", "0.01", "0.1", "1"]);
  assert.equal(groupHeading(column("config:lr"), byLr[1]), "lr = 0.01 · 2 runs");
  assert.equal(groupHeading(column("config:lr"), byLr[0]), "lr = 0.001 · 1 run");
  const flags = groupRuns([run("x", { f: true }), run("y", { f: 1 }), run("z", { f: NaN }), run("w", { f: NaN })], { value: (r) => r.config.f });
  assert.deepEqual(flags.map((g) => [g.label, g.runs.length]), [["1", 1], ["true", 1], ["nan", 2]], "1 and true are two groups; NaN is one, last");
});

test("grouping: mean and min–max of the finite numbers, the rest counted and said", () => {
  const acc = columnStats(RUNS, column("summary:acc"));
  // a 0.9, b 0.8, c kept max 0.7 (read as its number), d missing, e infinite.
  assert.deepEqual(acc, { count: 3, mean: (0.9 + 0.8 + 0.7) / 3, min: 0.7, max: 0.9, nan: 0, infinite: 1, missing: 1, other: 0 });
  assert.deepEqual(statsText(acc), { mean: "mean 0.8", range: "0.7–0.9", note: "1 infinite · 1 missing" });
  const loss = columnStats(RUNS, column("summary:loss"));
  assert.deepEqual([loss.count, loss.nan, loss.other, loss.min, loss.max], [3, 1, 1, 0.1, 0.5]);
  assert.deepEqual(statsText(loss), { mean: "mean 0.3", range: "0.1–0.5", note: "1 NaN · 1 not a number" });
  assert.deepEqual(statsText(columnStats([RUNS[3]], column("summary:acc"))), { mean: "no number", range: "", note: "1 missing" });
  assert.deepEqual(statsText(columnStats([RUNS[0]], column("summary:acc"))), { mean: "mean 0.9", range: "", note: "" });
});

test("selection: every change is told once; marks inside every brushed range are selected", () => {
  const selection = createSelection();
  const seen = [];
  selection.onChange((s) => seen.push(s.ids().sort().join(",")));
  selection.mark(["a", "b"], true);
  selection.toggle("a");
  selection.set(["c"]);
  assert.deepEqual(seen, ["a,b", "b", "c"]);
  selection.keepOnly(new Set(["a"]));
  assert.equal(selection.size, 0);
  const marks = [
    { id: "a", at: { x: 10, y: 5 } },
    { id: "b", at: { x: 20, y: 50 } },
    { id: "c", at: { x: 30, y: NaN } },
    { id: "d", at: { x: 25 } },
  ];
  assert.deepEqual(idsWithin(marks, new Map()), [], "no brush selects nothing");
  assert.deepEqual(idsWithin(marks, new Map([["x", [30, 15]]])), ["b", "c", "d"], "either way round, ends included");
  assert.deepEqual(idsWithin(marks, new Map([["x", [15, 30]], ["y", [0, 100]]])), ["b"], "a mark without a place on an axis is outside its range");
});

test("parallel: numbers on a linear or log axis, the rest as categories, missing values below", () => {
  const geometry = { top: 0, bottom: 100, missingGap: 20 };
  const lr = axisOf(column("config:lr"), RUNS, geometry);
  assert.equal(lr.kind, "log", "0.001 to 1 spans three decades");
  assert.deepEqual(lr.domain, [0.001, 1]);
  assert.deepEqual(RUNS.map((r) => Math.round(lr.position(r))), [33, 67, 67, 100, 0]);
  assert.equal(lr.missing, false);
  const loss = axisOf(column("summary:loss"), RUNS, geometry);
  assert.equal(loss.kind, "category", "a text value makes the axis one of categories");
  const acc = axisOf(column("summary:acc"), RUNS, geometry);
  assert.equal(acc.kind, "linear");
  assert.deepEqual(acc.domain, [0.7, 0.9]);
  assert.deepEqual(RUNS.map((r) => Math.round(acc.position(r))), [0, 50, 100, 120, 120], "missing and infinite: the no-value mark");
  assert.equal(acc.missing, true);
  assert.deepEqual(acc.ticks.map((t) => t.text), ["0.70", "0.75", "0.80", "0.85", "0.90"]);
  const opt = axisOf(column("config:opt"), RUNS, geometry);
  assert.equal(opt.kind, "category");
  assert.deepEqual(opt.ticks.map((t) => [t.text, t.y]), [["adam", 100], ["sgd", 0]]);
  assert.equal(opt.position(RUNS[3]), 120);
  const single = axisOf(column("config:opt"), [RUNS[0]], geometry);
  assert.deepEqual(single.ticks.map((t) => t.y), [50], "one category sits in the middle");
  const positions = runPositions(RUNS.slice(0, 2), [lr, opt]);
  assert.deepEqual(positions.map((p) => [p.id, Object.keys(p.at)]), [["a", ["config:lr", "config:opt"]], ["b", ["config:lr", "config:opt"]]]);
  assert.deepEqual(idsWithin(positions, new Map([["config:opt", [90, 110]]])), ["a"]);
});

test("parallel: the metric's color runs along the ramp; no value, no color", () => {
  assert.equal(metricColor(0), "rgb(68, 1, 84)");
  assert.equal(metricColor(1), "rgb(253, 231, 37)");
  assert.equal(metricColor(0.5), "rgb(33, 145, 140)");
  assert.equal(metricColor(2), metricColor(1));
  assert.equal(metricColor(null), null);
  assert.equal(metricColor(NaN), null);
  const share = metricShare(column("summary:acc"), RUNS);
  assert.deepEqual(RUNS.map(share).map((t) => (t === null ? t : Number(t.toFixed(6)))), [1, 0.5, 0, null, null]);
});

test("scatter: the runs with numbers in both columns, and how many are left out", () => {
  assert.deepEqual(numericColumns(COLUMNS, RUNS).map((c) => c.id), ["runtime", "config:lr", "summary:acc", "summary:loss"]);
  const { points, left } = scatterPoints(RUNS, column("config:lr"), column("summary:acc"));
  assert.deepEqual(points.map((p) => [p.id, p.x, p.y]), [["a", 0.1, 0.9], ["b", 0.01, 0.8], ["c", 0.01, 0.7]]);
  assert.equal(left, 2);
});
