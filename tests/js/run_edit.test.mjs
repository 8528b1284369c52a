// The run page's edit form (nbtrack/web/ui/run_edit.js): what it asks the server to store. The
// dialogs themselves run in a real browser (tests/test_ui_manage_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { editInput, parseTags } from "../../nbtrack/web/ui/run_edit.js";

test("parseTags trims, drops empty tags and keeps each once, in the order typed", () => {
  assert.deepEqual(parseTags(" best, baseline,,best ,  "), ["best", "baseline"]);
  assert.deepEqual(parseTags(""), []);
});

test("editInput names the run by its id and refuses an empty name", () => {
  const names = { entity: "me", project: "p", run: "r1" };
  assert.deepEqual(editInput(names, { name: "  new  ", tags: "a, b", notes: "" }), {
    id: "me/p/r1",
    displayName: "new",
    notes: "",
    tags: ["a", "b"],
  });
  assert.throws(() => editInput(names, { name: "   ", tags: "", notes: "" }), /needs a name/);
});
