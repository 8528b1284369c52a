// The run page's management controls: "Edit" (name, tags, notes) and "Delete" (a confirmation
// dialog that names the run; a run still running needs "its process is gone" ticked, the
// server's force). Edits go through upsertBucket with the run's id, as wandb's Run.update() sends
// them; deletes through deleteRun, as wandb's Run.delete(). The server checks the key's entity.
import { graphql } from "./api.js";
import { h } from "./dom.js";
import { projectPath } from "./routes.js";

const EDIT_RUN = `mutation EditRun($id: String!, $displayName: String, $notes: String, $tags: [String!]) {
  upsertBucket(input: {id: $id, displayName: $displayName, notes: $notes, tags: $tags}) {
    bucket { name displayName notes tags } } }`;
const DELETE_RUN = `mutation DeleteRun($id: ID!, $force: Boolean) {
  deleteRun(input: {id: $id, force: $force}) { clientMutationId } }`;

/** Tags typed as "a, b, a": trimmed, empty ones dropped, each kept once in the order typed. */
export function parseTags(text) {
  return [...new Set(String(text).split(",").map((tag) => tag.trim()).filter(Boolean))];
}

/** What the edit form asks the server to store; throws an Error naming what is wrong. */
export function editInput(names, { name, tags, notes }) {
  const displayName = String(name).trim();
  if (!displayName) throw new Error("A run needs a name.");
  return { id: `${names.entity}/${names.project}/${names.run}`, displayName, notes: String(notes), tags: parseTags(tags) };
}

function dialog(title, body, actions, onClose) {
  const heading = h("h2", { id: `dialog-title-${Math.random().toString(36).slice(2)}` }, title);
  const box = h("dialog", { class: "dialog", "aria-labelledby": heading.id }, h("form", { method: "dialog" }, heading, body, h("div", { class: "dialog-actions" }, actions)));
  box.addEventListener("close", () => {
    box.remove();
    onClose();
  });
  document.body.append(box);
  box.showModal();
  return box;
}

/**
 * The controls, as one element for the run page's head. getRun() is the run as the page shows it
 * (normalizeRun's shape); onSaved(fields) gets {name, displayName, notes, tags} once stored.
 */
export function runControls({ names, ctx, getRun, onSaved }) {
  let open = null;
  ctx.onCleanup(() => open && open.close());
  const closed = () => {
    open = null;
  };

  function edit() {
    const run = getRun();
    const name = h("input", { type: "text", name: "name", value: run.name, required: true, autocomplete: "off" });
    const tags = h("input", { type: "text", name: "tags", value: run.tags.join(", "), autocomplete: "off", placeholder: "baseline, best" });
    const notes = h("textarea", { name: "notes", rows: 5, value: run.notes || "" });
    const status = h("p", { class: "dialog-error", role: "alert" });
    const save = h("button", { type: "submit", class: "button primary", value: "save" }, "Save");
    name.addEventListener("input", () => (status.textContent = ""));
    const body = h(
      "div",
      { class: "dialog-fields" },
      h("label", {}, "Name", name),
      h("label", {}, h("span", {}, "Tags ", h("span", { class: "muted" }, "(comma-separated)")), tags),
      h("label", {}, "Notes", notes),
      status,
    );
    open = dialog(`Edit run ${names.run}`, body, [h("button", { type: "button", class: "button", on: { click: () => open.close() } }, "Cancel"), save], closed);
    save.addEventListener("click", async (event) => {
      event.preventDefault();
      status.textContent = "";
      let input;
      try {
        input = editInput(names, { name: name.value, tags: tags.value, notes: notes.value });
      } catch (error) {
        status.textContent = error.message;
        return;
      }
      save.disabled = true;
      try {
        const data = await graphql(EDIT_RUN, input, { signal: ctx.signal });
        const bucket = data.upsertBucket.bucket;
        onSaved({ name: bucket.displayName || bucket.name, displayName: bucket.displayName, notes: bucket.notes, tags: bucket.tags });
        open.close();
      } catch (error) {
        if (!ctx.signal.aborted) status.textContent = error.message;
      } finally {
        save.disabled = false;
      }
    });
  }

  function remove() {
    const run = getRun();
    const running = run.state === "running";
    const force = h("input", { type: "checkbox", name: "force" });
    const status = h("p", { class: "dialog-error", role: "alert" });
    const confirm = h("button", { type: "submit", class: "button danger", value: "delete", disabled: running }, "Delete run");
    force.addEventListener("change", () => {
      confirm.disabled = running && !force.checked;
    });
    const body = h(
      "div",
      { class: "dialog-fields" },
      h("p", {}, "Delete the run ", h("strong", { class: "dialog-run-name" }, `“${run.name}”`), ` (${names.entity}/${names.project}/${names.run})? Its history, console output, files and alerts are removed for good.`),
      running ? h("p", { class: "notice" }, "This run is still running: its process may still be sending. Delete it only if that process is gone; what it sends later is refused.") : null,
      running ? h("label", { class: "check" }, force, "Its process is gone: delete it anyway") : null,
      status,
    );
    open = dialog("Delete run", body, [h("button", { type: "button", class: "button", on: { click: () => open.close() } }, "Cancel"), confirm], closed);
    confirm.addEventListener("click", async (event) => {
      event.preventDefault();
      status.textContent = "";
      confirm.disabled = true;
      try {
        await graphql(DELETE_RUN, { id: `${names.entity}/${names.project}/${names.run}`, force: running && force.checked }, { signal: ctx.signal });
        open.close();
        ctx.navigate(projectPath(names.entity, names.project));
      } catch (error) {
        if (!ctx.signal.aborted) status.textContent = error.message;
        confirm.disabled = running && !force.checked;
      }
    });
  }

  return h(
    "div",
    { class: "run-controls" },
    h("button", { type: "button", class: "button small", on: { click: edit } }, "Edit"),
    h("button", { type: "button", class: "button small danger", on: { click: remove } }, "Delete"),
  );
}
