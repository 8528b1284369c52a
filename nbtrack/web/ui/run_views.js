// The views of a project's runs above its table: parallel coordinates (parallel.js) over the
// config columns the table shows, ending in a chosen summary metric, and a scatter (scatter.js) of
// two chosen columns. Both draw the runs the table shows and share its selection (selection.js).
// The choices live in the query string with the table's sort and filters (pc, x, y).
import { h, fill } from "./dom.js";
import { plural } from "./format.js";
import { drawParallel, highlightParallel } from "./parallel.js";
import { drawScatter, highlightScatter, listenForDots, numericColumns } from "./scatter.js";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

function picker(label, onPick) {
  const select = h("select", { "aria-label": label, on: { change: () => onPick(select.value) } });
  return select;
}

function setOptions(select, columns, value) {
  fill(select, columns.map((column) => h("option", { value: column.id }, column.group === "run" ? column.label : `${column.group}: ${column.label}`)));
  select.value = value;
}

/**
 * The views' section: {node, update({runs, columns, configColumns}), highlight(), settings()}. runs are the
 * rows the table shows, columns every column, configColumns the config columns shown.
 */
export function runViews({ selection, initial, onSettings }) {
  const settings = { metric: initial.metric || "", x: initial.x || "", y: initial.y || "" };
  const view = { brushes: new Map() };
  let state = null;
  const metricPicker = picker("Parallel coordinates metric", (id) => ((settings.metric = id), view.brushes.clear(), draw(), onSettings()));
  const xPicker = picker("Scatter x axis", (id) => ((settings.x = id), draw(), onSettings()));
  const yPicker = picker("Scatter y axis", (id) => ((settings.y = id), draw(), onSettings()));
  const parallelSvg = document.createElementNS(SVG_NAMESPACE, "svg");
  parallelSvg.setAttribute("class", "chart parallel");
  parallelSvg.setAttribute("role", "img");
  parallelSvg.setAttribute("aria-label", "Parallel coordinates of the runs");
  const scatterSvg = document.createElementNS(SVG_NAMESPACE, "svg");
  scatterSvg.setAttribute("class", "chart scatter");
  scatterSvg.setAttribute("role", "img");
  scatterSvg.setAttribute("aria-label", "Scatter of the runs");
  listenForDots(scatterSvg, selection);
  const parallelNote = h("p", { class: "muted view-note" });
  const scatterNote = h("p", { class: "muted view-note" });
  const node = h(
    "div",
    { class: "run-views" },
    h(
      "section",
      { class: "section view parallel-view" },
      h("div", { class: "section-head" }, h("h2", {}, "Parallel coordinates"), h("span", { class: "spacer" }), h("label", { class: "check" }, "Metric ", metricPicker)),
      parallelSvg,
      parallelNote,
    ),
    h(
      "section",
      { class: "section view scatter-view" },
      h("div", { class: "section-head" }, h("h2", {}, "Scatter"), h("span", { class: "spacer" }), h("label", { class: "check" }, "x ", xPicker), h("label", { class: "check" }, "y ", yPicker)),
      scatterSvg,
      scatterNote,
    ),
  );

  function draw() {
    if (!state) return;
    const { runs, columns, configColumns } = state;
    const byId = (id) => columns.find((c) => c.id === id);
    const metrics = columns.filter((c) => c.group === "summary");
    const metric = byId(settings.metric) || metrics[0] || null;
    setOptions(metricPicker, metrics, metric ? metric.id : "");
    metricPicker.disabled = metrics.length === 0;
    drawParallel(parallelSvg, { runs, configColumns, metricColumn: metric, selection, view });
    const axes = configColumns.length + (metric ? 1 : 0);
    parallelNote.textContent = axes
      ? `${plural(runs.length, "run")}. Drag along an axis to select the runs in a range; a click on it clears that range.`
      : "Show a config column in the table to give the runs an axis.";

    const numeric = numericColumns(columns, runs);
    const firstConfig = numeric.find((c) => c.group === "config");
    const x = byId(settings.x) || firstConfig || numeric[0];
    const y = byId(settings.y) || metric || numeric.find((c) => c !== x);
    setOptions(xPicker, numeric, x ? x.id : "");
    setOptions(yPicker, numeric, y ? y.id : "");
    if (x && y && numeric.includes(x) && numeric.includes(y)) {
      const left = drawScatter(scatterSvg, { runs, xColumn: x, yColumn: y, selection });
      scatterNote.textContent = left ? `${plural(left, "run")} without a number for both columns not shown.` : "Click a dot to select its run.";
    } else {
      scatterSvg.replaceChildren();
      scatterNote.textContent = "No column holds numbers to plot.";
    }
  }

  return {
    node,
    update(next) {
      state = next;
      draw();
    },
    /** The selection changed, nothing else: the marks change, nothing is drawn again. */
    highlight() {
      highlightParallel(parallelSvg, selection);
      highlightScatter(scatterSvg, selection);
    },
    settings: () => ({ ...settings }),
  };
}
