// panel.js needs a DOM to render; without one, check only that the module loads (no DOM access at
// import time) and has anywidget's shape. Rendering is covered by the real-browser test.
import assert from "node:assert/strict";
import { test } from "node:test";

import panel, { artifactWords, stepText } from "../../nbtrack/web/widget/panel.js";

test("panel.js loads without a DOM and exports anywidget's render", () => {
  assert.equal(typeof panel.render, "function");
});

test("the panel's step is the last step logged, with the rows beside it, as the web UI's run page", () => {
  assert.equal(stepText(599, 600), "step 599 · 600 rows");
  assert.equal(stepText(0, 1), "step 0 · 1 row");
  assert.equal(stepText(-1, 0), "no rows yet");
  assert.equal(stepText(undefined, 0), "no rows yet");
  assert.equal(stepText(41, 0), "step 41"); // a resumed run before its first new row
});

test("an artifact line says what snapshot.py's artifact_words says", () => {
  // The same cases as tests/test_panel.py::test_artifacts_list_in_the_panel_and_its_snapshots.
  const logged = { role: "logged", type: "dataset", name: "mnist", version: "v1", files: 3, bytes: 12_000_000 };
  assert.equal(artifactWords(logged), "logged dataset mnist:v1 · 3 files, 12 MB");
  const pending = { role: "logged", type: "model", name: "net", version: "", files: 1, bytes: 512 };
  assert.equal(artifactWords(pending), "logged model net (not stored yet) · 1 file, 512 B");
  const used = { role: "used", type: "dataset", name: "mnist", version: "v0", files: 2, bytes: 3400 };
  assert.equal(artifactWords(used), "used dataset mnist:v0 · 2 files, 3.4 kB");
});
