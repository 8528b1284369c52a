// panel.js needs a DOM to render; without one, check only that the module loads (no DOM access at
// import time) and has anywidget's shape. Rendering is covered by the real-browser test.
import assert from "node:assert/strict";
import { test } from "node:test";

import panel, { stepText } from "../../nbtrack/web/widget/panel.js";

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
