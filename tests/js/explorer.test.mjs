// explorer.js needs a DOM to render; without one, check that the module loads (no DOM access at
// import time) and exports anywidget's render. The browser test (tests/test_explorer_browser.py)
// renders it in JupyterLab.
import assert from "node:assert/strict";
import { test } from "node:test";
import explorer from "../../nbtrack/web/widget/explorer.js";

test("explorer.js loads without a DOM and exports anywidget's render", () => {
  assert.equal(typeof explorer.render, "function");
});
