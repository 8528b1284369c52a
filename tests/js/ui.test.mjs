// The web UI's pure modules (nbtrack/web/ui/): tolerant JSON, routes, value text, the server's answers
// turned into runs and series, and the runs table's sorting and filtering. The pages themselves
// run in a real browser against a real server (tests/test_ui_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatAgo, jsonText, plural, valueText } from "../../nbtrack/web/ui/format.js";
import { parseJSON } from "../../nbtrack/web/ui/json.js";
import { chartInfo, chartSeries, comparisonRows, consoleLine, metricKeys, naturalCompare, normalizeRun } from "../../nbtrack/web/ui/model.js";
import { compareQuery } from "../../nbtrack/web/ui/queries.js";
import { comparePath, parseRoute, projectPath, runPath, xAxisOf } from "../../nbtrack/web/ui/routes.js";
import { compareValues, filterRuns, runColumns, sortRuns } from "../../nbtrack/web/ui/table.js";

test("parseJSON reads NaN and infinities outside strings, and leaves strings alone", () => {
  assert.deepEqual(parseJSON('{"a": 1, "b": [1, 2]}'), { a: 1, b: [1, 2] });
  const value = parseJSON('{"loss": NaN, "up": Infinity, "down": -Infinity, "list": [1, NaN, -Infinity]}');
  assert.ok(Number.isNaN(value.loss));
  assert.equal(value.up, Infinity);
  assert.equal(value.down, -Infinity);
  assert.ok(Number.isNaN(value.list[1]));
  assert.equal(value.list[2], -Infinity);
  const strings = parseJSON('{"NaN": "NaN", "s": "Infinity and \\"NaN\\" -Infinity", "n": NaN}');
  assert.equal(strings.NaN, "NaN");
  assert.equal(strings.s, 'Infinity and "NaN" -Infinity');
  assert.equal(parseJSON("NaN").toString(), "NaN");
  assert.equal(parseJSON(" -Infinity "), -Infinity);
  assert.deepEqual(parseJSON('[[0, NaN, 1.5e3], [], {}, true, false, null, "\\u00e9\\n"]').slice(1), [[], {}, true, false, null, "é\n"]);
});

test("parseJSON is as strict as JSON.parse about everything else", () => {
  for (const bad of ["{", "[1,]", "{'a': 1}", "nan", "NaNa", "[Infinity", '{"a" 1}', "01", "[1] x", '"\u0001"', "-NaN", ""]) {
    assert.throws(() => parseJSON(bad), SyntaxError, bad);
  }
  const proto = parseJSON('{"__proto__": {"polluted": NaN}}');
  assert.equal({}.polluted, undefined, "no prototype pollution");
  assert.ok(Object.hasOwn(proto, "__proto__"));
});

test("routes: paths to pages and back, names escaped", () => {
  const home = parseRoute("/", "?search=adam%200.01");
  assert.equal(home.page, "projects");
  assert.equal(home.query.get("search"), "adam 0.01");
  const runs = parseRoute("/alice/mnist", "?q=lr&state=running");
  assert.equal(runs.page, "runs");
  assert.equal(runs.entity, "alice");
  assert.equal(runs.query.get("state"), "running");
  const run = parseRoute(runPath("local", "my project", "a/b c"));
  assert.deepEqual([run.page, run.entity, run.project, run.run], ["run", "local", "my project", "a/b c"]);
  assert.equal(runPath("e", "p", "r1"), "/e/p/runs/r1");
  assert.equal(projectPath("e", "p q"), "/e/p%20q");
  const compare = parseRoute("/e/p/compare", "?runs=a,b,a,,c");
  assert.deepEqual([compare.page, compare.runs], ["compare", ["a", "b", "c"]]);
  assert.equal(comparePath("e", "p", ["a", "b"]), "/e/p/compare?runs=a,b");
  assert.deepEqual(parseRoute(new URL(comparePath("e", "p", ["x y", "z"]), "http://h").pathname, "?runs=x%20y,z").runs, ["x y", "z"]);
  assert.equal(parseRoute("/e/p/runs").page, "notFound");
  assert.equal(parseRoute("/e/p/other/x").page, "notFound");
  assert.equal(parseRoute("/e/%E0%A4%A/x").page, "notFound", "a malformed escape");
  assert.equal(xAxisOf(new URLSearchParams("x=_runtime")), "_runtime");
  assert.equal(xAxisOf(new URLSearchParams("x=evil")), "_step");
  assert.equal(xAxisOf(null), "_step");
});

test("value text: numbers as the charts show them, objects as JSON with NaN kept", () => {
  assert.equal(valueText(3e-4), "3e-4");
  assert.equal(valueText(64), "64");
  assert.equal(valueText("adam"), "adam");
  assert.equal(valueText(true), "true");
  assert.equal(valueText(null), "null");
  assert.equal(valueText(undefined), "");
  assert.equal(valueText(NaN), "nan");
  assert.equal(valueText({ a: [1, NaN], b: "x" }), '{"a": [1, NaN], "b": "x"}');
  assert.equal(jsonText([Infinity, -Infinity, null, "\u0000"]), '[Infinity, -Infinity, null, "\\u0000"]');
  assert.equal(plural(1, "run"), "1 run");
  assert.equal(plural(3, "run"), "3 runs");
});

test("formatAgo is coarse and says 'just now' for the last seconds", () => {
  const now = 1_700_000_000;
  assert.equal(formatAgo(now - 10, now), "just now");
  assert.equal(formatAgo(now - 300, now), "5 min ago");
  assert.equal(formatAgo(now - 3 * 3600, now), "3 h ago");
  assert.equal(formatAgo(now - 86400, now), "1 day ago");
  assert.equal(formatAgo(now - 4 * 86400, now), "4 days ago");
  assert.equal(formatAgo(now - 90 * 86400, now), "2023-08-16");
  assert.equal(formatAgo(0, now), "");
});

test("normalizeRun unwraps the config, parses the summary with NaN, and names the run", () => {
  const run = normalizeRun({
    name: "abc123",
    displayName: "",
    state: "running",
    // the wandb client's own entry is its business, not a config value people set
    config: '{"lr": {"value": 0.001}, "opt": {"value": {"name": "adam"}}, "raw": 5, "_wandb": {"value": {"cli_version": "0.31.0"}}}',
    summaryMetrics: '{"loss": NaN, "acc": 0.5, "_step": 9}',
    tags: null,
  });
  assert.equal(run.id, "abc123");
  assert.equal(run.name, "abc123", "no display name: the id");
  assert.deepEqual(run.config, { lr: 0.001, opt: { name: "adam" }, raw: 5 });
  assert.ok(Number.isNaN(run.summary.loss));
  assert.deepEqual(run.tags, []);
  assert.equal(normalizeRun({ name: "x", displayName: "nice", config: "{}", summaryMetrics: "" }).name, "nice");
});

test("chartSeries turns [x, min, max] points into columns; bands only when a point has one", () => {
  const answer = '{"x": "_step", "lineCount": 5, "exact": false, "series": {"loss": [[0, 1, 1], [1, 0.5, 0.9], [2, NaN, NaN]], "acc": [[0, 0.1, 0.1], [2, 0.3, 0.3]], "_runtime": [[0, 0, 0]], "bad": [[null, 1, 1], [3, 2]]}}';
  const series = chartSeries(answer);
  assert.deepEqual([...series.keys()], ["loss", "acc", "bad"]);
  const loss = series.get("loss");
  assert.deepEqual(loss.xs, [0, 1, 2]);
  assert.deepEqual(loss.lo.slice(0, 2), [1, 0.5]);
  assert.deepEqual(loss.hi.slice(0, 2), [1, 0.9]);
  assert.ok(Number.isNaN(loss.lo[2]));
  assert.equal(series.get("acc").hi, null, "exact points: a plain line");
  assert.deepEqual(series.get("bad"), { xs: [3], lo: [2], hi: null });
  assert.deepEqual(chartInfo(answer), { x: "_step", lineCount: 5, exact: false });
  assert.equal(chartSeries(null).size, 0);
  assert.deepEqual(metricKeys(["val/acc", "_step", "loss", "loss", "epoch"]), ["epoch", "loss", "val/acc"]);
});

test("naturalCompare orders numbered names as people do", () => {
  assert.deepEqual(["run-10", "run-2", "Run-1", "run-1"].sort(naturalCompare), ["Run-1", "run-1", "run-2", "run-10"]);
});

test("comparisonRows marks the keys whose values differ", () => {
  const rows = comparisonRows([{ lr: 0.1, bs: 64, x: NaN, _t: 1 }, { lr: 0.2, bs: 64, x: NaN, only: 1 }], (k) => k.startsWith("_"));
  assert.deepEqual(rows.map(([key, , differs]) => [key, differs]), [["bs", false], ["lr", true], ["only", true], ["x", false]]);
  assert.deepEqual(rows[2][1], [undefined, 1]);
});

const RUNS = [
  { id: "a", name: "run-2", state: "finished", createdAt: 100, runtime: 50, tags: ["base"], config: { lr: 0.1 }, summary: { loss: 0.5, _step: 3 } },
  { id: "b", name: "run-10", state: "running", createdAt: 300, runtime: 5, tags: [], config: { lr: 0.01, opt: "adam" }, summary: { loss: NaN } },
  { id: "c", name: "Run-1", state: "failed", createdAt: 200, runtime: 500, tags: ["sweep", "base"], config: {}, summary: { loss: 0.1, acc: "n/a" } },
];

test("runColumns: the run's fields, then config and summary keys (no bookkeeping keys)", () => {
  const columns = runColumns(RUNS, 1000);
  assert.deepEqual(columns.map((c) => c.id), ["name", "state", "created", "runtime", "tags", "config:lr", "config:opt", "summary:acc", "summary:loss"]);
  const lr = columns.find((c) => c.id === "config:lr");
  assert.equal(lr.text(RUNS[1]), "0.01");
  assert.equal(lr.text(RUNS[2]), "");
  assert.equal(columns.find((c) => c.id === "runtime").text(RUNS[2]), "8 min 20 s");
});

test("sortRuns: numbers numerically, names naturally, missing values last either way", () => {
  const columns = runColumns(RUNS);
  const by = (id, dir) => sortRuns(RUNS, columns.find((c) => c.id === id), dir).map((r) => r.id);
  assert.deepEqual(by("name", "asc"), ["c", "a", "b"]);
  assert.deepEqual(by("name", "desc"), ["b", "a", "c"]);
  assert.deepEqual(by("created", "desc"), ["b", "c", "a"]);
  assert.deepEqual(by("config:lr", "asc"), ["b", "a", "c"], "c has no lr: last");
  assert.deepEqual(by("config:lr", "desc"), ["a", "b", "c"], "and still last descending");
  assert.deepEqual(by("summary:loss", "asc"), ["c", "a", "b"], "NaN sorts with the missing");
  assert.deepEqual(by("tags", "asc"), ["a", "c", "b"]);
  assert.ok(compareValues(1, "a") < 0 && compareValues(true, "a") < 0 && compareValues(2, 10) < 0);
  assert.equal(compareValues({ a: 1 }, { a: 1 }), 0);
});

test("filterRuns: every word in name, id or tags; and the state", () => {
  assert.deepEqual(filterRuns(RUNS, { text: "run" }).map((r) => r.id), ["a", "b", "c"]);
  assert.deepEqual(filterRuns(RUNS, { text: "BASE run-1" }).map((r) => r.id), ["c"]);
  assert.deepEqual(filterRuns(RUNS, { text: "sweep" }).map((r) => r.id), ["c"]);
  assert.deepEqual(filterRuns(RUNS, { text: "b" }).map((r) => r.id), ["a", "b", "c"], "a, c: tag base; b: id");
  assert.deepEqual(filterRuns(RUNS, { state: "running" }).map((r) => r.id), ["b"]);
  assert.deepEqual(filterRuns(RUNS, { text: "  ", state: "" }).length, 3);
  assert.deepEqual(filterRuns(RUNS, { text: "nothing" }), []);
});

test("compareQuery aliases one run per variable; values never enter the text", () => {
  const text = compareQuery(3, "name state", true);
  assert.match(text, /\$r0: String!, \$r1: String!, \$r2: String!/);
  assert.match(text, /r2: run\(name: \$r2\) \{ name state chart\(x: \$x, minX: \$minX, maxX: \$maxX\) \}/);
  assert.doesNotMatch(compareQuery(2, "state", false), /chart|\$x/);
});

test("consoleLine reads nbtrack's console lines and shows other text as it is", () => {
  assert.deepEqual(consoleLine('{"line":"epoch 1","stream":"stderr","_timestamp":1.5,"_cell":12}'), { text: "epoch 1", stream: "stderr", cell: 12 });
  assert.deepEqual(consoleLine('{"line":"no cell","stream":"stdout","_timestamp":1.5}'), { text: "no cell", stream: "stdout", cell: null });
  assert.deepEqual(consoleLine("plain <b>text</b>"), { text: "plain <b>text</b>", stream: "stdout", cell: null });
  assert.deepEqual(consoleLine('{"line": broken'), { text: '{"line": broken', stream: "stdout", cell: null });
});
