// Summaries kept by define_metric: the cases of format_cases.json, which tests/test_formatting.py
// checks against nbtrack/formatting.py too (one list, two twins).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { formatSummary, summaryText, summaryValue, valueText } from "../../nbtrack/web/ui/format.js";
import { parseJSON } from "../../nbtrack/web/ui/json.js";
import { runColumns, sortRuns } from "../../nbtrack/web/ui/table.js";

const CASES = parseJSON(readFileSync(new URL("./format_cases.json", import.meta.url), "utf8")).summaries;

test("every summary case reads and sorts as in Python", () => {
  for (const [value, text, sortValue] of CASES) {
    assert.equal(formatSummary(value), text, JSON.stringify(value));
    assert.deepEqual(summaryValue(value), sortValue, JSON.stringify(value));
    assert.equal(summaryText(value), text ?? valueText(value));
  }
});

test("the runs table shows a kept summary as text and sorts by its number", () => {
  const run = (id, acc) => ({ id, name: id, state: "finished", createdAt: 0, runtime: 1, tags: [], config: {}, summary: acc === undefined ? {} : { "val/acc": acc } });
  const runs = [run("a", { max: 0.9893873510407052 }), run("b", { max: 0.5 }), run("c", { max: 0.95 }), run("d")];
  const column = runColumns(runs).find((c) => c.id === "summary:val/acc");
  assert.equal(column.text(runs[0]), "max 0.9894");
  assert.deepEqual(sortRuns(runs, column, "desc").map((r) => r.id), ["a", "c", "b", "d"], "by value, a run without it last");
  assert.deepEqual(sortRuns(runs, column, "asc").map((r) => r.id), ["b", "c", "a", "d"]);
});
