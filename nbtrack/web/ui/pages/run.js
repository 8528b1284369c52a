// "/{entity}/{project}/runs/{run}": one run. Its header (state, runtime, step, tags), its alerts
// (run.alert(), newest first), one chart per metric (the server downsamples: Run.chart), its system
// metrics (system.js), config and summary, console output and files.
// The notebook panel links here (run.url). A running run polls every second while the tab is
// visible: new points, console lines and summary values appear without a reload, and when the run
// ends the page reads it once more (files are often saved at the end) and stops.
import { formatBytes, formatDuration, formatNumber } from "../../shared/chart.js";
import { graphql } from "../api.js";
import { createChartSection } from "../charts.js";
import { fill, h } from "../dom.js";
import { formatAgo, plural, summaryText } from "../format.js";
import { parseJSON } from "../json.js";
import { startPolling } from "../live.js";
import { MEDIA_STEPS, fileCache, isMedia, renderMedia } from "../media.js";
import { chartSeries, consoleLine, naturalCompare, normalizeRun, stepMetrics } from "../model.js";
import { MEDIA_HISTORY, OUTPUT_PAGE, RUN, RUN_CHART, RUN_LIVE, RUN_OUTPUT } from "../queries.js";
import { projectPath, xAxisOf } from "../routes.js";
import { runArtifactsSection } from "../run_artifacts.js";
import { runControls } from "../run_edit.js";
import { createSystemSection } from "../system.js";
import { downloadButton, errorBox, keyValueTable, navLink, stateBadge, tagList } from "../widgets.js";

const LIVE_MS = 1000;

/**
 * The metric entries of a summary, in natural key order, without the _step/_runtime bookkeeping;
 * a summary kept by define_metric as its text ("max 0.9894").
 */
function summaryEntries(summary) {
  return Object.entries(summary)
    .filter(([key, value]) => !key.startsWith("_") && !isMedia(value)) // media: their own section
    .sort(([a], [b]) => naturalCompare(a, b))
    .map(([key, value]) => [key, summaryText(value)]);
}

/** A chart's series names: the run's name, or one per attempt of a notebook's run. */
function attemptLabels(attempts, name) {
  return attempts > 1 ? Array.from({ length: attempts }, (_, a) => `attempt ${a + 1}`) : [name];
}

export async function runPage(main, route, ctx) {
  const { entity, project } = route;
  const names = { entity, project, run: route.run };
  const view = { x: xAxisOf(route.query), range: null };
  ctx.setCrumbs([{ label: "Projects", href: "/" }, { label: `${entity} / ${project}`, href: projectPath(entity, project) }, { label: route.run }]);
  ctx.setTitle(route.run, project);

  // The System section's query goes out with the run's own (running() is asked once run is known).
  const system = createSystemSection({ entity, project, ids: [route.run], labels: [route.run], x: view.x, running: () => run.state === "running", signal: ctx.signal, onError: (error) => ctx.fail(error) });
  ctx.onCleanup(() => system.destroy());
  const systemDrawn = system.refresh();
  const artifactsLoaded = runArtifactsSection(names, ctx.signal);
  artifactsLoaded.catch(() => {}); // awaited below; a run that does not exist ends the page first
  const first = await graphql(RUN, { ...names, x: view.x, outputLimit: OUTPUT_PAGE }, { signal: ctx.signal });
  if (ctx.signal.aborted) return;
  const raw = first.project && first.project.run;
  if (!raw) {
    fill(main, h("h1", {}, route.run), h("p", { class: "notice" }, `There is no run “${route.run}” in ${entity} / ${project}.`), h("p", {}, navLink(projectPath(entity, project), "See the project's runs")));
    ctx.ready();
    return;
  }
  let run = normalizeRun(raw);
  let lineCount = raw.historyLineCount;
  // The run's declared step metrics are x axes too; an x the URL names that the run did not
  // declare falls back to _step (its chart, fetched with the run, is fetched again).
  const declared = stepMetrics(raw);
  const settledX = xAxisOf(route.query, declared);
  const refetchCharts = settledX !== view.x;
  view.x = settledX;
  // An x no run offers ("?x=_cell", a step metric none declared) leaves the address too.
  if (route.query.has("x") && route.query.get("x") !== settledX) ctx.setQuery({ x: settledX === "_step" ? "" : settledX });
  ctx.setTitle(run.name, project);

  // -- layout -------------------------------------------------------------------------------
  const head = h("div", { class: "run-head" });
  const controls = runControls({ names, ctx, getRun: () => run, onSaved: (fields) => ((run = { ...run, ...fields }), renderHead(), ctx.setTitle(run.name, project)) });
  const toolbarSlot = h("div");
  const chartsSection = h("section", { class: "section", "aria-labelledby": "charts-title" }, h("div", { class: "section-head" }, h("h2", { id: "charts-title" }, "Charts"), toolbarSlot));
  const configSlot = h("div");
  const summarySlot = h("div");
  const consoleText = h("pre", { class: "console", tabindex: "0", "aria-label": "Console output" });
  const consoleInfo = h("span", { class: "muted" });
  const moreOutput = h("button", { type: "button", class: "button", hidden: true, on: { click: () => loadOutput() } }, "Show more");
  const filesSlot = h("div");
  const artifactsSlot = h("div");
  const alertsSlot = h("div");
  const alertsSection = h("section", { class: "section", "aria-labelledby": "alerts-title", hidden: true }, h("h2", { id: "alerts-title" }, "Alerts"), alertsSlot);
  const mediaSlot = h("div");
  let media = null; // what renderMedia drew last
  const files = fileCache(names, { signal: ctx.signal });
  ctx.onCleanup(() => files.revoke());
  const loadHistory = async (keys) => {
    const data = await graphql(MEDIA_HISTORY, { ...names, keys, samples: MEDIA_STEPS }, { signal: ctx.signal });
    return data.project && data.project.run ? parseJSON(data.project.run.history) : [];
  };
  fill(
    main,
    head,
    alertsSection,
    chartsSection,
    system.node,
    h("section", { class: "section", "aria-labelledby": "media-title", hidden: true }, h("h2", { id: "media-title" }, "Media"), mediaSlot),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "section", "aria-labelledby": "config-title" }, h("h2", { id: "config-title" }, "Config"), configSlot),
      h("section", { class: "section", "aria-labelledby": "summary-title" }, h("h2", { id: "summary-title" }, "Summary"), summarySlot),
    ),
    h("section", { class: "section", "aria-labelledby": "console-title" }, h("div", { class: "section-head" }, h("h2", { id: "console-title" }, "Console output"), consoleInfo, moreOutput), consoleText),
    artifactsSlot,
    h("section", { class: "section", "aria-labelledby": "files-title" }, h("h2", { id: "files-title" }, "Files"), filesSlot),
  );

  function renderHead() {
    const facts = [
      ["Created", formatAgo(run.createdAt), new Date(run.createdAt * 1000).toLocaleString()],
      ["Runtime", formatDuration(run.runtime)],
      ["Step", run.lastStep === null || run.lastStep === undefined ? "—" : formatNumber(run.lastStep)],
      ["Rows", formatNumber(run.historyLineCount)],
      run.exitCode !== null && run.exitCode !== undefined ? ["Exit code", String(run.exitCode)] : null,
      run.group ? ["Group", run.group] : null,
      run.jobType ? ["Job type", run.jobType] : null,
      run.host ? ["Host", run.host] : null,
      // A notebook's run records its notebook's path (sdk/start_records.py): say so.
      run.program ? [/\.ipynb$/i.test(run.program) ? "Notebook" : "Program", run.program] : null,
    ].filter(Boolean);
    fill(
      head,
      h("div", { class: "title-row" }, h("h1", {}, run.name), stateBadge(run.state), h("span", { class: "run-id muted" }, run.id), controls),
      h("dl", { class: "facts" }, facts.map(([term, value, title]) => h("div", {}, h("dt", {}, term), h("dd", { title }, value)))),
      run.tags.length ? tagList(run.tags) : null,
      run.notes ? h("p", { class: "notes" }, run.notes) : null,
    );
  }

  function renderAlerts(alerts) {
    alertsSection.hidden = !alerts.length;
    fill(
      alertsSlot,
      h(
        "ul",
        { class: "alerts" },
        [...alerts].reverse().map((alert) => {
          const level = String(alert.severity).toLowerCase();
          const when = new Date(alert.createdAt * 1000);
          return h(
            "li",
            { class: `alert alert-${level}`, dataset: { level } },
            h("span", { class: `alert-level alert-level-${level}` }, alert.severity),
            h("strong", { class: "alert-title" }, alert.title),
            h("time", { class: "muted", datetime: when.toISOString(), title: when.toLocaleString() }, formatAgo(alert.createdAt)),
            alert.text ? h("p", { class: "alert-text" }, alert.text) : null,
          );
        }),
      ),
    );
  }

  function renderTables() {
    fill(configSlot, keyValueTable(Object.entries(run.config).sort(([a], [b]) => naturalCompare(a, b)), "Config", "No config."));
    fill(summarySlot, keyValueTable(summaryEntries(run.summary), "Summary", "No summary yet."));
    const onError = (error) => !ctx.signal.aborted && ctx.fail(error);
    media = renderMedia(mediaSlot, run.summary, { cache: files, loadHistory, onError, previous: media });
  }

  function renderFiles(files) {
    if (!files.length) return fill(filesSlot, h("p", { class: "muted" }, "No files saved with run.save()."));
    fill(
      filesSlot,
      h(
        "table",
        { class: "table files" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Updated"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Download")))),
        h(
          "tbody",
          {},
          [...files]
            .sort((a, b) => naturalCompare(a.name, b.name))
            .map((file) => {
              return h("tr", { dataset: { file: file.name } }, h("td", { class: "value" }, file.name), h("td", { class: "num" }, formatBytes(file.sizeBytes)), h("td", {}, formatAgo(file.updatedAt)), h("td", {}, downloadButton(file.url, file.name, ctx.fail)));
            }),
        ),
      ),
    );
  }

  // -- console output: always the lines [0, seen) of the run's output ---------------------------
  let seen = 0;
  let outputComplete = false;

  function appendOutput(lines) {
    if (!lines.length) return;
    const atBottom = consoleText.scrollTop + consoleText.clientHeight >= consoleText.scrollHeight - 4;
    const parts = [];
    lines.forEach((stored, i) => {
      const line = consoleLine(stored);
      if (seen + i > 0) parts.push("\n");
      // The cell that printed it (a notebook's run) in the gutter; stderr marked for the eye.
      if (line.cell !== null) parts.push(h("span", { class: "console-cell", title: `printed by cell [${line.cell}]` }, `[${line.cell}] `));
      parts.push(line.stream === "stderr" ? h("span", { class: "console-stderr" }, line.text) : line.text);
    });
    consoleText.append(...parts);
    seen += lines.length;
    if (atBottom) consoleText.scrollTop = consoleText.scrollHeight;
  }

  function renderOutputInfo() {
    consoleInfo.textContent = seen ? plural(seen, "line") + (outputComplete ? "" : " so far") : "";
    consoleText.hidden = seen === 0;
    moreOutput.hidden = outputComplete || run.state === "running";
    if (seen === 0) consoleInfo.textContent = run.state === "running" ? "Nothing printed yet." : "Nothing was printed.";
  }

  function takeOutput(lines) {
    appendOutput(lines);
    outputComplete = lines.length < OUTPUT_PAGE;
    renderOutputInfo();
  }

  async function loadOutput() {
    const data = await graphql(RUN_OUTPUT, { ...names, offset: seen, limit: OUTPUT_PAGE }, { signal: ctx.signal });
    if (!ctx.signal.aborted && data.project && data.project.run) takeOutput(data.project.run.output);
  }

  // -- charts ---------------------------------------------------------------------------------
  // A notebook's run whose re-run cell went back in steps has attempts: each is drawn as a series
  // of its own ("attempt 1", "attempt 2", ...), as the compare page draws runs.
  let attempts = raw.attempts || 1;
  const labels = attemptLabels(attempts, run.name);
  const charts = createChartSection(chartsSection, toolbarSlot, {
    labels,
    view,
    scope: [entity, project],
    signal: ctx.signal,
    stepMetrics: () => declared,
    onAxis: (x) => ctx.setQuery({ x: x === "_step" ? "" : x }),
    onError: (error) => ctx.fail(error),
    load: async ({ x, range }) => {
      const [minX, maxX] = range || [null, null];
      const each = attempts > 1 ? Array.from({ length: attempts }, (_, a) => a) : [null];
      const answers = await Promise.all(
        each.map((attempt) => graphql(RUN_CHART, { ...names, x, minX, maxX, attempt }, { signal: ctx.signal })),
      );
      const found = answers.map((data) => data.project && data.project.run);
      return ctx.signal.aborted || !found.every(Boolean) ? null : found.map((r) => chartSeries(parseJSON(r.chart)));
    },
  });
  ctx.onCleanup(() => charts.destroy());
  const legend = h("ul", { class: "legend", "aria-label": "Attempts" });
  chartsSection.firstChild.after(legend); // between the section's head and its charts
  function setAttempts(count) {
    attempts = count || 1;
    labels.splice(0, labels.length, ...attemptLabels(attempts, run.name));
    legend.hidden = attempts < 2;
    fill(legend, attempts < 2 ? [] : labels.map((label, i) => h("li", {}, h("span", { class: "swatch", "data-series": i, "aria-hidden": "true" }), label)));
  }
  setAttempts(attempts);
  const drawCharts = (chartText) => (attempts > 1 || refetchCharts ? charts.refresh() : charts.draw([chartSeries(parseJSON(chartText))]));

  renderHead();
  renderAlerts(raw.alerts || []);
  renderTables();
  renderFiles(raw.files || []);
  takeOutput(raw.output || []);
  const [, , artifactsSection] = await Promise.all([drawCharts(raw.chart), systemDrawn, artifactsLoaded]);
  if (ctx.signal.aborted) return;
  artifactsSlot.replaceWith(artifactsSection);
  ctx.ready();
  system.follow();

  // -- live -----------------------------------------------------------------------------------
  if (run.state !== "running") return;
  const tick = async () => {
    try {
      const data = await graphql(RUN_LIVE, { ...names, outputFrom: seen, outputLimit: OUTPUT_PAGE }, { signal: ctx.signal });
      const live = data.project && data.project.run;
      if (ctx.signal.aborted || !live) return false;
      run = { ...run, ...live, summary: normalizeRun({ summaryMetrics: live.summaryMetrics }).summary };
      appendOutput(live.output);
      renderAlerts(live.alerts || []);
      if (live.state !== "running") {
        // The end: read everything once more (final summary, files saved at the end, all lines).
        const last = await graphql(RUN, { ...names, x: view.x, minX: view.range?.[0], maxX: view.range?.[1], outputLimit: 0 }, { signal: ctx.signal });
        const final = last.project && last.project.run;
        if (ctx.signal.aborted || !final) return false;
        run = normalizeRun(final);
        renderFiles(final.files || []);
        setAttempts(final.attempts);
        await drawCharts(final.chart);
        outputComplete = false;
        await loadOutput();
      } else if (live.historyLineCount !== lineCount) {
        setAttempts(live.attempts);
        await charts.refresh();
      }
      lineCount = live.historyLineCount;
      renderHead();
      renderTables();
      renderOutputInfo();
      return run.state === "running";
    } catch (error) {
      ctx.fail(error);
      throw error;
    }
  };
  ctx.onCleanup(startPolling(tick, LIVE_MS));
}
