// "/{entity}/{project}/compare?runs=a,b": runs side by side. Each metric's chart overlays the runs
// (run i in colour i, named in the legend); the config and summary tables have one column per run,
// and the keys whose values differ are highlighted (and can be shown alone). The runs' system
// metrics are overlaid the same way (system.js), and their logged images and histograms are shown
// side by side (compare_media.js) rather than in the tables. Live runs refresh every second, as on
// a run's own page.
import { graphql } from "../api.js";
import { createChartSection } from "../charts.js";
import { comparedMediaKeys, renderCompareMedia } from "../compare_media.js";
import { fill, h } from "../dom.js";
import { plural, summaryText, summaryValue, valueText } from "../format.js";
import { parseJSON } from "../json.js";
import { startPolling } from "../live.js";
import { chartSeries, comparisonRows, normalizeRun, stepMetrics } from "../model.js";
import { MEDIA_STEPS } from "../media.js";
import { COMPARE_FIELDS, COMPARE_LIVE_FIELDS, MEDIA_HISTORY, compareQuery } from "../queries.js";
import { projectPath, runPath, xAxisOf } from "../routes.js";
import { createSystemSection } from "../system.js";
import { navLink, stateBadge } from "../widgets.js";

// Runs beyond this many are not compared: the palette (ui.css) has ten distinct colours.
const MAX_RUNS = 10;
const LIVE_MS = 1000;

export async function compareView(main, route, ctx) {
  const { entity, project } = route;
  const ids = route.runs.slice(0, MAX_RUNS);
  const view = { x: xAxisOf(route.query), range: null };
  ctx.setCrumbs([{ label: "Projects", href: "/" }, { label: `${entity} / ${project}`, href: projectPath(entity, project) }, { label: "Compare" }]);
  ctx.setTitle("Compare", project);
  if (ids.length === 0) {
    fill(main, h("h1", {}, "Compare runs"), h("p", {}, "No runs were chosen. Select runs in ", navLink(projectPath(entity, project), "the project's table"), " and press Compare."));
    ctx.ready();
    return;
  }

  /** The runs' fields (and charts, for the current view) with one query; one answer per id, or null. */
  async function fetchRuns(list, fields, chart) {
    const vars = { entity, project };
    if (chart) Object.assign(vars, { x: view.x, minX: view.range ? view.range[0] : null, maxX: view.range ? view.range[1] : null });
    list.forEach((id, i) => (vars[`r${i}`] = id));
    const data = await graphql(compareQuery(list.length, fields, chart), vars, { signal: ctx.signal });
    return list.map((_id, i) => (data.project ? data.project[`r${i}`] : null));
  }

  const answers = await fetchRuns(ids, COMPARE_FIELDS, true);
  if (ctx.signal.aborted) return;
  const found = ids.map((id, i) => ({ id, raw: answers[i] }));
  const missing = found.filter((f) => !f.raw).map((f) => f.id);
  const present = found.filter((f) => f.raw);
  // Colours and tables follow the runs that exist, in the order the URL gives.
  let runs = present.map((f) => normalizeRun(f.raw));
  // The step metrics any of the runs declared are x axes too (a run without one has no line on
  // them); an x the URL names that none declared falls back to _step, fetched again.
  const declared = [...new Set(present.flatMap((f) => stepMetrics(f.raw)))];
  const settledX = xAxisOf(route.query, declared);
  const refetchCharts = settledX !== view.x;
  view.x = settledX;
  // An x no run offers ("?x=_cell", a step metric none declared) leaves the address too.
  if (route.query.has("x") && route.query.get("x") !== settledX) ctx.setQuery({ runs: route.runs.join(","), x: settledX === "_step" ? "" : settledX });
  const initialCharts = present.map((f) => chartSeries(parseJSON(f.raw.chart)));
  const presentIds = present.map((f) => f.id);

  const legend = h("ul", { class: "legend", "aria-label": "Runs compared" });
  const toolbarSlot = h("div");
  const chartsSection = h("section", { class: "section", "aria-labelledby": "charts-title" }, h("div", { class: "section-head" }, h("h2", { id: "charts-title" }, "Charts"), toolbarSlot));
  const onlyDiff = h("input", { type: "checkbox", id: "only-diff", on: { change: () => renderTables() } });
  const tablesSlot = h("div");
  const system = createSystemSection({ entity, project, ids: presentIds, labels: runs.map((r) => r.name), x: view.x, running: () => runs.some((r) => r.state === "running"), signal: ctx.signal, onError: (error) => ctx.fail(error) });
  ctx.onCleanup(() => system.destroy());
  const mediaSlot = h("div");
  const mediaSection = h("section", { class: "section", "aria-labelledby": "media-title", hidden: true }, h("h2", { id: "media-title" }, "Media"), mediaSlot);
  let media = null; // what renderCompareMedia drew last
  ctx.onCleanup(() => media && media.revoke());
  const loadHistory = async (run, keys) => {
    const data = await graphql(MEDIA_HISTORY, { entity, project, run, keys, samples: MEDIA_STEPS }, { signal: ctx.signal });
    return data.project && data.project.run ? parseJSON(data.project.run.history) : [];
  };
  fill(
    main,
    h("div", { class: "page-head" }, h("h1", {}, `Compare ${plural(runs.length, "run")}`), h("span", { class: "muted" }, `${entity} / ${project}`)),
    missing.length ? h("p", { class: "notice" }, `Not found in this project: ${missing.join(", ")}`) : null,
    route.runs.length > MAX_RUNS ? h("p", { class: "notice" }, `Only the first ${MAX_RUNS} of the ${route.runs.length} runs chosen are compared.`) : null,
    legend,
    chartsSection,
    system.node,
    mediaSection,
    h(
      "section",
      { class: "section", "aria-labelledby": "tables-title" },
      h("div", { class: "section-head" }, h("h2", { id: "tables-title" }, "Config and summary"), h("label", { class: "check" }, onlyDiff, " Only keys that differ")),
      tablesSlot,
    ),
  );

  function renderLegend() {
    fill(
      legend,
      runs.map((run, i) => h("li", { dataset: { run: run.id } }, h("span", { class: "swatch", "data-series": i, "aria-hidden": "true" }), navLink(runPath(entity, project, run.id), run.name), stateBadge(run.state))),
    );
  }

  /** title: "Config" or "Summary"; a summary's kept values read as "max 0.9894". */
  function table(title, rows) {
    const text = title === "Summary" ? summaryText : valueText;
    const number = title === "Summary" ? summaryValue : (value) => value;
    const shown = onlyDiff.checked ? rows.filter((row) => row[2]) : rows;
    const empty = rows.length === 0 ? `No ${title.toLowerCase()}.` : "No key differs.";
    return h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table compare", dataset: { table: title.toLowerCase() } },
        h("caption", {}, title),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), runs.map((run, i) => h("th", { scope: "col" }, h("span", { class: "swatch", "data-series": i, "aria-hidden": "true" }), run.name)))),
        h(
          "tbody",
          {},
          shown.length
            ? shown.map(([key, values, differs]) =>
                h(
                  "tr",
                  { class: differs ? "differs" : "", dataset: { key } },
                  h("th", { scope: "row" }, key, differs ? h("span", { class: "visually-hidden" }, " (differs)") : null),
                  values.map((value) => h("td", { class: typeof number(value) === "number" ? "num" : "value", title: text(value) }, value === undefined ? "—" : text(value))),
                ),
              )
            : h("tr", {}, h("td", { colspan: runs.length + 1, class: "muted" }, empty)),
        ),
      ),
    );
  }

  function renderTables() {
    // Media keys have their own section, where they are seen rather than described.
    const mediaKeys = new Set(comparedMediaKeys(runs.map((r) => r.summary)));
    fill(
      tablesSlot,
      table("Config", comparisonRows(runs.map((r) => r.config))),
      table("Summary", comparisonRows(runs.map((r) => r.summary), (key) => key.startsWith("_") || mediaKeys.has(key))),
    );
    const onError = (error) => !ctx.signal.aborted && ctx.fail(error);
    media = renderCompareMedia(mediaSlot, mediaSection, runs, { names: { entity, project }, loadHistory, onError, previous: media });
  }

  const lineCounts = present.map((f) => f.raw.historyLineCount);
  const charts = createChartSection(chartsSection, toolbarSlot, {
    labels: runs.map((r) => r.name),
    view,
    scope: [entity, project],
    signal: ctx.signal,
    stepMetrics: () => declared,
    onAxis: (x) => ctx.setQuery({ runs: route.runs.join(","), x: x === "_step" ? "" : x }),
    onError: (error) => ctx.fail(error),
    // All runs, for a new axis or range; a run that vanished keeps its last chart.
    load: async () => {
      const fresh = await fetchRuns(presentIds, "historyLineCount", true);
      if (ctx.signal.aborted) return null;
      const previous = charts.charts();
      return fresh.map((raw, i) => (raw ? chartSeries(parseJSON(raw.chart)) : previous[i]));
    },
  });
  ctx.onCleanup(() => charts.destroy());

  /** The poll: states and summaries of all runs, and new charts for those that grew. */
  async function poll() {
    try {
      const fresh = await fetchRuns(presentIds, COMPARE_LIVE_FIELDS, false);
      if (ctx.signal.aborted) return false;
      runs = runs.map((run, i) => (fresh[i] ? { ...run, ...fresh[i], summary: normalizeRun({ summaryMetrics: fresh[i].summaryMetrics }).summary } : run));
      const grown = presentIds.filter((_id, i) => fresh[i] && fresh[i].historyLineCount !== lineCounts[i]);
      if (grown.length) {
        // New charts for the runs that grew only; the others keep theirs.
        await charts.refresh(async () => {
          const answers = await fetchRuns(grown, "historyLineCount", true);
          if (ctx.signal.aborted) return null;
          const next = charts.charts().slice();
          grown.forEach((id, j) => {
            const i = presentIds.indexOf(id);
            if (answers[j]) {
              next[i] = chartSeries(parseJSON(answers[j].chart));
              lineCounts[i] = answers[j].historyLineCount;
            }
          });
          return next;
        });
      }
      renderLegend();
      renderTables();
      return runs.some((r) => r.state === "running");
    } catch (error) {
      if (!ctx.signal.aborted) ctx.fail(error);
      throw error;
    }
  }

  renderLegend();
  renderTables();
  if (refetchCharts) await charts.refresh();
  else charts.draw(initialCharts);
  await system.refresh();
  if (ctx.signal.aborted) return;
  ctx.ready();
  system.follow();
  if (runs.some((r) => r.state === "running")) ctx.onCleanup(startPolling(poll, LIVE_MS));
}
