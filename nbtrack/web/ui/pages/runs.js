// "/{entity}/{project}": the project's runs as a table. Headers are buttons that sort (aria-sort
// says how); a text box and a state menu filter; checkboxes pick runs for the compare page. The
// "Columns" menu chooses the columns (kept per project: columns.js); "Group by" folds the runs into
// a row per value of a config key, with each summary column's mean and range (grouping.js). Above
// the table, parallel coordinates and a scatter (run_views.js) share the table's selection. The
// sort, the filters, the grouping and the views' axes live in the query string, so a view can be
// bookmarked. While any run is running the table refreshes every few seconds, keeping the
// selection and the focus.
import { graphql } from "../api.js";
import { fill, h } from "../dom.js";
import { loadHidden, saveHidden, shownColumns, withColumn } from "../columns.js";
import { columnMenu } from "../column_menu.js";
import { plural } from "../format.js";
import { columnStats, groupHeading, groupRuns, statsText } from "../grouping.js";
import { startPolling } from "../live.js";
import { normalizeRun } from "../model.js";
import { RUNS, RUNS_LIMIT } from "../queries.js";
import { artifactsPath, comparePath, runPath } from "../routes.js";
import { STATES, filterRuns, runColumns, sortRuns } from "../table.js";
import { runViews } from "../run_views.js";
import { createSelection } from "../selection.js";
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
    group: query.get("group") || "",
  };
  const selection = createSelection();
  const expanded = new Set(); // the keys of the groups opened to their runs
  let runs = loaded.runs.map(normalizeRun);
  let allColumns = runColumns(runs);
  let hidden = loadHidden(localStorage, entity, project);
  let columns = shownColumns(allColumns, hidden);

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
  const menuSlot = h("span", { class: "menu-slot" });
  const groupMenu = h("select", {
    "aria-label": "Group runs by",
    on: { change: () => ((view.group = groupMenu.value), expanded.clear(), update()) },
  });
  const views = runViews({ selection, initial: { metric: query.get("pc"), x: query.get("x"), y: query.get("y") }, onSettings: () => saveQuery() });
  const compare = h("button", {
    type: "button",
    class: "button primary",
    on: {
      click: () => {
        const ids = sortRuns(runs, columnOf(view.sort), view.dir).map((r) => r.id).filter((id) => selection.has(id));
        ctx.navigate(comparePath(entity, project, ids));
      },
    },
  });
  const tableWrap = h("div", { class: "table-wrap" });
  const limitNote = h("p", { class: "muted", hidden: true });
  const toolbar = h("div", { class: "toolbar" }, search, stateMenu, count, h("span", { class: "spacer" }), h("label", { class: "check" }, "Group by", groupMenu), menuSlot, compare);
  fill(main, h("div", { class: "page-head" }, h("h1", {}, project), h("span", { class: "muted" }, entity), h("span", { class: "spacer" }), navLink(artifactsPath(entity, project), "Artifacts")), views.node, toolbar, tableWrap, limitNote);

  function columnOf(id) {
    return allColumns.find((c) => c.id === id) || allColumns.find((c) => c.id === "created");
  }

  function chooseColumn(id, visible) {
    hidden = id === null ? new Set() : withColumn(hidden, id, visible);
    if (!saveHidden(localStorage, entity, project, hidden)) console.warn("nbtrack: this browser keeps no column choice (storage refused)");
    columns = shownColumns(allColumns, hidden);
    findGroupStarts();
    update();
  }

  function drawMenus() {
    const open = menuSlot.querySelector("details")?.open;
    const focused = menuSlot.contains(document.activeElement) ? document.activeElement.dataset.column : undefined;
    const menu = columnMenu(allColumns, hidden, chooseColumn);
    menu.open = Boolean(open);
    fill(menuSlot, menu);
    if (focused) menu.querySelector(`input[data-column="${CSS.escape(focused)}"]`)?.focus(); // the keyboard stays where it was
    const configs = allColumns.filter((c) => c.group === "config");
    if (view.group && !configs.some((c) => c.id === view.group)) view.group = "";
    fill(groupMenu, h("option", { value: "" }, "None"), configs.map((c) => h("option", { value: c.id }, c.label)));
    groupMenu.value = view.group;
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
    const chosen = allVisible.filter((r) => selection.has(r.id)).length;
    const selectAll = h("input", {
      type: "checkbox",
      checked: allVisible.length > 0 && chosen === allVisible.length,
      indeterminate: chosen > 0 && chosen < allVisible.length,
      "aria-label": "Select all runs shown",
      "data-focus": "select-all",
      on: {
        change: (event) => selection.mark(allVisible.map((run) => run.id), event.target.checked),
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

  function runRow(run, inGroup = false) {
    return h(
      "tr",
      { dataset: { run: run.id, state: run.state }, class: `${selection.has(run.id) ? "selected" : ""}${inGroup ? " in-group" : ""}` },
      h(
        "td",
        { class: "select" },
        h("input", {
          type: "checkbox",
          checked: selection.has(run.id),
          "aria-label": `Select run ${run.name}`,
          "data-focus": `select:${run.id}`,
          on: { change: (event) => selection.mark([run.id], event.target.checked) },
        }),
      ),
      columns.map((column) => cell(column, run)),
    );
  }

  // A group's row: its value and run count where the name goes, each summary column's statistics.
  function groupRows(rows) {
    const by = allColumns.find((c) => c.id === view.group);
    return groupRuns(rows, by).flatMap((group) => {
      const open = expanded.has(group.key);
      const toggle = h(
        "button",
        { type: "button", class: "group-toggle", "aria-expanded": open ? "true" : "false", "data-focus": `group:${group.key}`, on: { click: () => (open ? expanded.delete(group.key) : expanded.add(group.key), update()) } },
        h("span", { class: "arrow", "aria-hidden": "true" }, open ? "▾" : "▸"),
        groupHeading(by, group),
      );
      const cells = columns.map((column) => {
        if (column.id === "name") return h("td", { class: "name group-name" }, toggle);
        if (column.group !== "summary") return h("td", { class: groupStarts.has(column.id) ? "group-start" : "" });
        const text = statsText(columnStats(group.runs, column));
        return h(
          "td",
          { class: `stats${groupStarts.has(column.id) ? " group-start" : ""}`, dataset: { column: column.id } },
          h("span", { class: "stat-mean" }, text.mean),
          text.range ? h("span", { class: "stat-range muted" }, text.range) : null,
          text.note ? h("span", { class: "stat-note" }, text.note) : null,
        );
      });
      const head = h("tr", { class: "group-row", dataset: { group: group.label, count: String(group.runs.length) } }, h("td", { class: "select" }), cells);
      return open ? [head, ...group.runs.map((run) => runRow(run, true))] : [head];
    });
  }

  function saveQuery() {
    const plain = view.sort === "created" && view.dir === "desc";
    const settings = views.settings();
    ctx.setQuery({ q: view.text, state: view.state, sort: plain ? "" : view.sort, dir: plain ? "" : view.dir, group: view.group, pc: settings.metric, x: settings.x, y: settings.y });
  }

  function update() {
    const focused = document.activeElement && tableWrap.contains(document.activeElement) ? document.activeElement.getAttribute("data-focus") : null;
    drawMenus();
    const rows = visible();
    const table = h("table", { class: "table runs" }, header(), h("tbody", {}, view.group ? groupRows(rows) : rows.map((run) => runRow(run))));
    fill(tableWrap, rows.length ? table : h("p", { class: "muted empty-rows" }, runs.length ? "No run matches these filters." : "This project has no runs yet."));
    if (focused) {
      const again = [...tableWrap.querySelectorAll("[data-focus]")].find((node) => node.getAttribute("data-focus") === focused);
      if (again) again.focus();
    }
    count.textContent = rows.length === runs.length ? plural(runs.length, "run") : `${rows.length} of ${plural(runs.length, "run")}`;
    selection.keepOnly(new Set(runs.map((r) => r.id)));
    showCompare();
    limitNote.hidden = loaded.runCount <= runs.length;
    limitNote.textContent = `Showing the newest ${runs.length} of ${loaded.runCount} runs.`;
    views.node.hidden = runs.length === 0; // no run: nothing to draw, and the table says so
    views.update({ runs: rows, columns: allColumns, configColumns: columns.filter((c) => c.group === "config") });
    saveQuery();
  }

  function showCompare() {
    compare.textContent = selection.size ? `Compare ${selection.size}` : "Compare";
    compare.disabled = selection.size < 2;
    compare.title = selection.size < 2 ? "Select two runs or more to compare them" : "";
  }

  // A change of the selection alone marks the rows and the views' marks: nothing is drawn again,
  // so ticking a run stays quick in a table of a thousand.
  function showSelection() {
    for (const row of tableWrap.querySelectorAll("tr[data-run]")) {
      const on = selection.has(row.dataset.run);
      row.classList.toggle("selected", on);
      const box = row.querySelector("td.select input");
      if (box) box.checked = on;
    }
    const selectAll = tableWrap.querySelector("[data-focus='select-all']");
    if (selectAll) {
      const shown = visible();
      const chosen = shown.filter((r) => selection.has(r.id)).length;
      selectAll.checked = shown.length > 0 && chosen === shown.length;
      selectAll.indeterminate = chosen > 0 && chosen < shown.length;
    }
    showCompare();
    views.highlight();
  }

  selection.onChange(() => showSelection());
  update();
  ctx.ready();

  if (runs.some((r) => r.state === "running")) {
    const stop = startPolling(async () => {
      try {
        const next = await loadRuns(route, ctx.signal);
        if (ctx.signal.aborted || !next) return false;
        loaded = next;
        runs = next.runs.map(normalizeRun);
        allColumns = runColumns(runs);
        columns = shownColumns(allColumns, hidden);
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
