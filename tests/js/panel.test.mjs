// panel.js needs a DOM to render; without one, check only that the module loads (no DOM access at
// import time) and has anywidget's shape. Rendering is covered by the real-browser test.
import assert from "node:assert/strict";
import { test } from "node:test";

import panel from "../../nbtrack/web/widget/panel.js";

test("panel.js loads without a DOM and exports anywidget's render", () => {
  assert.equal(typeof panel.render, "function");
});
