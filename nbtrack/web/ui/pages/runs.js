// "/{entity}/{project}": the project's runs as a table. Headers are buttons that sort (aria-sort
// says how); a text box and a state menu filter; checkboxes pick runs for the compare page. The
// sort and the filters live in the query string, so a view can be bookmarked. While any run is
// running the table refreshes every few seconds, keeping the selection and the focus.
import { graphql } from "../api.js";
import { fill, h } from "../dom.js";
import { plural } from "../format.js";
import { startPolling } from "../live.js";
import { normalizeRun } from "../model.js";
import { RUNS, RUNS_LIMIT } from "../queries.js";
import { comparePath, runPath } from "../routes.js";
import { STATES, filterRuns, runColumns, sortRuns } from "../table.js";
import { navLink, stateBadge, tagList } from "../widgets.js";

const REFRESH_MS = 5000;
const GROUP_LABELS = { run: "Run", config: "Config", summary: "Summary" };
const FIRST_DESCENDING = new Set(["created", "runtime"]); // newest and longest first

async function loadRuns(route, signal) {
  const data = await graphql(RUNS, { entity: route.entity, project: route.project, first: RUNS_LIMIT }, { signal });
  return data.project;
}

export async function runsPage(main, route, ctx) {
  const { entity, project } = route;
  ctx.setTitle(project);
  ctx.setCrumbs([{ label: "Projects", href: "/" }, { label: `${entity} / ${project}` }]);
  let loaded = await loadRuns(route, ctx.signal);
  if (ctx.signal.aborted) return;
  if (!loaded) {
    fill(main, h("h1", {}, project), h("p", { class: "notice" }, `There is no project “${project}” for ${entity}.`), h("p", {}, navLink("/", "See all projects")));
    ctx.ready();
    return;
  }

  const query = route.query;
  const view = {
    text: query.get("q") || "",
    state: STATES.includes(query.get("state")) ? query.get("state") : "",
    sort: query.get("sort") || "created",
    dir: query.get("dir") === "asc" ? "asc" : query.get("dir") === "desc" ? "desc" : query.get("sort") ? "asc" : "desc",
  };
  const selected = new Set();
  let runs = loaded.runs.map(normalizeRun);
  let columns = runColumns(runs);

  const search = h("input", {
    type: "search",
    class: "filter",
    placeholder: "Filter by name, id or tag",
    value: view.text,
    "aria-label": "Filter runs by name, id or tag",
    on: { input: () => ((view.text = search.value), update()) },
  });
  const stateMenu = h(
    "select",
    { "aria-label": "Filter runs by state", on: { change: () => ((view.state = stateMenu.value), update()) } },
    h("option", { value: "" }, "All states"),
    STATES.map((state) => h("option", { value: state }, state)),
  );
  stateMenu.value = view.state;
  const count = h("span", { class: "muted count", role: "status" });
  const compare = h("button", {
    type: "button",
    class: "button primary",
    on: {
      click: () => {
        const ids = sortRuns(runs, columnOf(view.sort), view.dir).map((r) => r.id).filter((id) => selected.has(id));
        ctx.navigate(comparePath(entity, project, ids));
      },
    },
  });
  const tableWrap = h("div", { class: "table-wrap" });
  const limitNote = h("p", { class: "muted", hidden: true });
  const toolbar = h("div", { class: "toolbar" }, search, stateMenu, count, h("span", { class: "spacer" }), compare);
  fill(main, h("div", { class: "page-head" }, h("h1", {}, project), h("span", { class: "muted" }, entity)), toolbar, tableWrap, limitNote);

  function columnOf(id) {
    return columns.find((c) => c.id === id) || columns.find((c) => c.id === "created");
  }

  function sortBy(id) {
    if (view.sort === id) view.dir = view.dir === "asc" ? "desc" : "asc";
    else {
      view.sort = id;
      view.dir = FIRST_DESCENDING.has(id) ? "desc" : "asc";
    }
    update();
  }

  function header() {
    const groups = [];
    for (const column of columns) {
      const last = groups.at(-1);
      if (last && last.group === column.group) last.span++;
      else groups.push({ group: column.group, span: 1 });
    }
    const allVisible = visible();
    const chosen = allVisible.filter((r) => selected.has(r.id)).length;
    const selectAll = h("input", {
      type: "checkbox",
      checked: allVisible.length > 0 && chosen === allVisible.length,
      indeterminate: chosen > 0 && chosen < allVisible.length,
      "aria-label": "Select all runs shown",
      "data-focus": "select-all",
      on: {
        change: (event) => {
          for (const run of allVisible) {
            if (event.target.checked) selected.add(run.id);
            else selected.delete(run.id);
          }
          update();
        },
      },
    });
    return h(
      "thead",
      {},
      h("tr", { class: "groups" }, h("th", { rowspan: 2, class: "select" }, selectAll), groups.map((g) => h("th", { colspan: g.span, scope: "colgroup", class: `group-${g.group}${g.group === "run" ? "" : " group-start"}` }, GROUP_LABELS[g.group]))),
      h(
        "tr",
        {},
        columns.map((column) => {
          const sorted = column.id === view.sort;
          const arrow = sorted ? (view.dir === "asc" ? "▲" : "▼") : "";
          return h(
            "th",
            { scope: "col", "aria-sort": sorted ? (view.dir === "asc" ? "ascending" : "descending") : "none", class: `group-${column.group}${groupStarts.has(column.id) ? " group-start" : ""}`, dataset: { column: column.id } },
            h("button", { type: "button", class: "sort", title: column.label, "data-focus": `sort:${column.id}`, on: { click: () => sortBy(column.id) } }, column.label, h("span", { class: "arrow", "aria-hidden": "true" }, arrow)),
          );
        }),
      ),
    );
  }

  function cell(column, run) {
    if (column.id === "name") {
      return h("td", { class: "name" }, navLink(runPath(entity, project, run.id), run.name), run.name !== run.id ? h("span", { class: "run-id muted" }, run.id) : null);
    }
    if (column.id === "state") return h("td", {}, stateBadge(run.state));
    if (column.id === "tags") return h("td", {}, tagList(run.tags));
    const text = column.text(run);
    if (column.id === "created") return h("td", { class: "date", title: new Date(run.createdAt * 1000).toLocaleString() }, text);
    const value = column.value(run);
    return h("td", { class: `${typeof value === "number" ? "num" : "value"}${groupStarts.has(column.id) ? " group-start" : ""}`, title: text }, text);
  }

  // The first config and the first summary column get a divider, in the header and the rows.
  let groupStarts = new Set();
  function findGroupStarts() {
    groupStarts = new Set(columns.filter((c, i) => c.group !== "run" && (i === 0 || columns[i - 1].group !== c.group)).map((c) => c.id));
  }
  findGroupStarts();

  function visible() {
    return sortRuns(filterRuns(runs, view), columnOf(view.sort), view.dir);
  }

  function update() {
    const focused = document.activeElement && tableWrap.contains(document.activeElement) ? document.activeElement.getAttribute("data-focus") : null;
    const rows = visible();
    const table = h(
      "table",
      { class: "table runs" },
      header(),
      h(
        "tbody",
        {},
        rows.map((run) =>
          h(
            "tr",
            { dataset: { run: run.id, state: run.state }, class: selected.has(run.id) ? "selected" : "" },
            h(
              "td",
              { class: "select" },
              h("input", {
                type: "checkbox",
                checked: selected.has(run.id),
                "aria-label": `Select run ${run.name}`,
                "data-focus": `select:${run.id}`,
                on: {
                  change: (event) => {
                    if (event.target.checked) selected.add(run.id);
                    else selected.delete(run.id);
                    update();
                  },
                },
              }),
            ),
            columns.map((column) => cell(column, run)),
          ),
        ),
      ),
    );
    fill(tableWrap, rows.length ? table : h("p", { class: "muted empty-rows" }, runs.length ? "No run matches these filters." : "This project has no runs yet."));
    if (focused) {
      const again = [...tableWrap.querySelectorAll("[data-focus]")].find((node) => node.getAttribute("data-focus") === focused);
      if (again) again.focus();
    }
    count.textContent = rows.length === runs.length ? plural(runs.length, "run") : `${rows.length} of ${plural(runs.length, "run")}`;
    for (const id of [...selected]) if (!runs.some((r) => r.id === id)) selected.delete(id);
    compare.textContent = selected.size ? `Compare ${selected.size}` : "Compare";
    compare.disabled = selected.size < 2;
    compare.title = selected.size < 2 ? "Select two runs or more to compare them" : "";
    limitNote.hidden = loaded.runCount <= runs.length;
    limitNote.textContent = `Showing the newest ${runs.length} of ${loaded.runCount} runs.`;
    ctx.setQuery({ q: view.text, state: view.state, sort: view.sort === "created" && view.dir === "desc" ? "" : view.sort, dir: view.sort === "created" && view.dir === "desc" ? "" : view.dir });
  }

  update();
  ctx.ready();

  if (runs.some((r) => r.state === "running")) {
    const stop = startPolling(async () => {
      try {
        const next = await loadRuns(route, ctx.signal);
        if (ctx.signal.aborted || !next) return false;
        loaded = next;
        runs = next.runs.map(normalizeRun);
        columns = runColumns(runs);
        findGroupStarts();
        update();
        return runs.some((r) => r.state === "running");
      } catch (error) {
        ctx.fail(error);
        throw error;
      }
    }, REFRESH_MS);
    ctx.onCleanup(stop);
  }
}
