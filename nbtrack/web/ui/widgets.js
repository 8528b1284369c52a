// Small pieces several pages share: links, state badges, tags, key/value tables, messages.
import { downloadFile } from "./api.js";
import { valueText } from "./format.js";
import { h } from "./dom.js";
import { RUN_STATES } from "../shared/vocabulary.js";

const KNOWN_STATES = new Set(RUN_STATES);

/** A link to a UI page: app.js routes a click on it without reloading (data-nav). */
export function navLink(href, ...children) {
  return h("a", { href, "data-nav": "" }, ...children);
}

/** A run state as a coloured badge (the panel's look): running, finished, failed, crashed. */
export function stateBadge(state) {
  const known = KNOWN_STATES.has(state) ? state : "other";
  return h("span", { class: "badge", dataset: { state: known } }, state || "unknown");
}

export function tagList(tags) {
  return h("span", { class: "tags" }, tags.map((tag) => h("span", { class: "tag" }, tag)));
}

/** A two-column table of an object's entries (keys in the given order), or a muted line when empty. */
export function keyValueTable(entries, caption, emptyText) {
  if (entries.length === 0) return h("p", { class: "muted" }, emptyText);
  return h(
    "table",
    { class: "kv" },
    h("caption", { class: "visually-hidden" }, caption),
    h("tbody", {}, entries.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", { class: "value" }, valueText(value))))),
  );
}

/** A calm error message for a failed load. */
export function errorBox(error) {
  const message = error instanceof TypeError ? "The server could not be reached. Is `nbtrack server` still running?" : error.message || String(error);
  return h("div", { class: "notice error", role: "alert" }, message);
}

export function loading(what = "Loading…") {
  return h("p", { class: "muted loading" }, what);
}

/**
 * A button that downloads a file (run or artifact file: its signed URL) and says why when it
 * cannot; onError hears the failure too (the page's ctx.fail: the key form on a refused key).
 */
export function downloadButton(url, name, onError) {
  const status = h("span", { class: "muted file-status", role: "status" });
  const button = h("button", {
    type: "button",
    class: "button small",
    "aria-label": `Download ${name}`,
    on: {
      click: async () => {
        button.disabled = true;
        status.textContent = "";
        try {
          await downloadFile(url, name.split("/").pop());
        } catch (error) {
          status.textContent = error.message;
          onError(error);
        } finally {
          button.disabled = false;
        }
      },
    },
  }, "Download");
  return [button, status];
}
