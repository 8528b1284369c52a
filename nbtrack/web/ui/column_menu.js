// The runs table's "Columns" menu: a checkbox per column, by group (run fields, config, summary),
// with "Show all". It reports each change; pages/runs.js keeps the choice (columns.js).
import { h } from "./dom.js";
import { ALWAYS_SHOWN } from "./columns.js";

const GROUP_TITLES = { run: "Run", config: "Config", summary: "Summary" };

/** A <details> menu over columns; onChange(id, visible) per checkbox, onChange(null, true) for "Show all". */
export function columnMenu(columns, hidden, onChange) {
  const groups = Object.keys(GROUP_TITLES).map((group) => {
    const members = columns.filter((c) => c.group === group);
    if (members.length === 0) return null;
    return h(
      "fieldset",
      { class: "menu-group" },
      h("legend", {}, GROUP_TITLES[group]),
      members.map((column) =>
        h(
          "label",
          { class: "check" },
          h("input", {
            type: "checkbox",
            checked: column.id === ALWAYS_SHOWN || !hidden.has(column.id),
            disabled: column.id === ALWAYS_SHOWN,
            dataset: { column: column.id },
            on: { change: (event) => onChange(column.id, event.target.checked) },
          }),
          column.label,
        ),
      ),
    );
  });
  const shownCount = columns.filter((c) => c.id === ALWAYS_SHOWN || !hidden.has(c.id)).length;
  return h(
    "details",
    { class: "menu column-menu" },
    h("summary", { class: "button" }, `Columns (${shownCount} of ${columns.length})`),
    h(
      "div",
      { class: "menu-body", role: "group", "aria-label": "Columns shown" },
      h("button", { type: "button", class: "link-button", disabled: hidden.size === 0, on: { click: () => onChange(null, true) } }, "Show all"),
      groups,
    ),
  );
}
