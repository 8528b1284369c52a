// The web UI's media helpers (nbtrack/web/ui/media.js): which summary values are media, run file paths, and
// histogram bar geometry. The rendering runs in a real browser (tests/test_ui_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { valueText } from "../../nbtrack/web/ui/format.js";
import { histogramBars, imageSteps, isMedia, mediaEntries, runFilePath } from "../../nbtrack/web/ui/media.js";

test("mediaEntries picks media references from a summary: images, histograms, tables, by key", () => {
  const summary = {
    loss: 0.5,
    _step: 3,
    zeta: { _type: "image-file", path: "media/images/z.png" },
    alpha: { _type: "image-file", path: "media/images/a.png" },
    weights: { _type: "histogram", bins: [0, 1], values: [3] },
    preds: { _type: "table-file", path: "media/tables/p.table.json" },
    other: { _type: "something-else" },
    plain: { min: 1 },
  };
  assert.deepEqual(mediaEntries(summary).map(([key]) => key), ["alpha", "zeta", "weights", "preds"]);
  assert.equal(isMedia([1]), false);
  assert.equal(isMedia(null), false);
  assert.deepEqual(mediaEntries(undefined), []);
});

test("runFilePath encodes every part but keeps the folders of the file's path", () => {
  const names = { entity: "me", project: "a b", run: "r/1" };
  assert.equal(runFilePath(names, "media/images/x #1.png"), "/files/me/a%20b/r%2F1/media/images/x%20%231.png");
});

test("histogramBars scales counts to the box and refuses a malformed histogram", () => {
  const bars = histogramBars({ bins: [0, 1, 2, 3], values: [1, 4, NaN] }, 300, 100);
  assert.deepEqual(bars.map((b) => [b.x, b.y, b.w, b.h, b.count]), [[0, 75, 100, 25, 1], [100, 0, 100, 100, 4], [200, 100, 100, 0, 0]]);
  assert.deepEqual([bars[1].from, bars[1].to], [1, 2]);
  assert.deepEqual(histogramBars({ bins: [0, 1], values: [1, 2] }, 10, 10), []);
  assert.deepEqual(histogramBars({ bins: [0, 1], values: [0] }, 10, 10).map((b) => b.h), [0]);
  assert.deepEqual(histogramBars(null, 10, 10), []);
});

test("valueText names media in a few words (the runs table and the comparison show it so)", () => {
  assert.equal(valueText({ _type: "image-file", path: "p", width: 64, height: 48 }), "image 64×48");
  assert.equal(valueText({ _type: "histogram", bins: [0, 1, 2], values: [1, 2] }), "histogram (2 bins)");
  assert.equal(valueText({ _type: "table-file", nrows: 3, ncols: 2 }), "table 3×2");
  assert.equal(valueText({ _type: "other" }), '{"_type": "other"}');
});

test("imageSteps lists each image key's steps from history rows, skipping other values", () => {
  const image = (path) => ({ _type: "image-file", path });
  const rows = [{ _step: 0, a: image("a0") }, { _step: 1, b: image("b1"), a: 3 }, { _step: 2, a: image("a2"), b: image("b2") }];
  const found = imageSteps(rows, ["a", "b"]);
  assert.deepEqual(found.get("a").map((s) => [s.step, s.ref.path]), [[0, "a0"], [2, "a2"]]);
  assert.deepEqual(found.get("b").map((s) => [s.step, s.ref.path]), [[1, "b1"], [2, "b2"]]);
  assert.deepEqual(imageSteps(null, ["a"]).get("a"), []);
});
