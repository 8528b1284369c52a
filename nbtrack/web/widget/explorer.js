// The notebook's explorer (anywidget front-end): a project's runs table, or a comparison of runs
// (their config and summary side by side, one chart per shared metric with a line per run).
//
// Shipped as one module like the panel: nbtrack/extension/esm.py inlines ../shared/ and
// ./theme.js in place of the imports below. The one synced trait is `view`, made by
// nbtrack/extension/explorer_data.py, every value in it already text (formatted in Python, as the
// CLI and the static snapshot show it); the charts are drawn by chart_svg.js, as the web UI's.
// Every user string is written with textContent, never HTML.
import { SERIES_COLORS } from "../shared/vocabulary.js";
import { drawLineChart, svgNode } from "../shared/chart_svg.js";
import { themeCss } from "./theme.js";

const EXPLORER_CLASS = "nbtrack-explorer";
const COMPARE_CHART_WIDTH = 300;
const COMPARE_CHART_HEIGHT = 150;
const DIFFERS = "≠";

const EXPLORER_CSS = `${themeCss(EXPLORER_CLASS)}
.${EXPLORER_CLASS} { overflow-x: auto; }
.${EXPLORER_CLASS} .nbt-title { font-weight: 600; font-size: 1.1em; }
.${EXPLORER_CLASS} .nbt-muted { color: var(--nbt-muted); }
.${EXPLORER_CLASS} table { border-collapse: collapse; margin-top: 6px; }
.${EXPLORER_CLASS} th, .${EXPLORER_CLASS} td { padding: 2px 10px 2px 0; text-align: left; white-space: nowrap; }
.${EXPLORER_CLASS} th { color: var(--nbt-muted); font-weight: 600; border-bottom: 1px solid var(--nbt-border); }
.${EXPLORER_CLASS} th .nbt-group { font-weight: normal; }
.${EXPLORER_CLASS} td { font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, monospace); }
.${EXPLORER_CLASS} td.nbt-run-name { font-family: inherit; font-weight: 600; }
.${EXPLORER_CLASS} tr.nbt-differs td { background: color-mix(in srgb, var(--nbt-warn) 14%, transparent); }
.${EXPLORER_CLASS} .nbt-mark { color: var(--nbt-warn); font-weight: 700; margin-left: 4px; }
.${EXPLORER_CLASS} .nbt-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-top: 4px; }
.${EXPLORER_CLASS} .nbt-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; background: var(--series); }
.${EXPLORER_CLASS} .nbt-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 8px; margin-top: 8px; }
.${EXPLORER_CLASS} .nbt-card { background: var(--nbt-card); border: 1px solid var(--nbt-border); border-radius: 5px; padding: 4px 7px; min-width: 0; }
.${EXPLORER_CLASS} .nbt-key { color: var(--nbt-muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.${EXPLORER_CLASS} .nbt-compare-chart { display: block; width: 100%; height: auto; }
.${EXPLORER_CLASS} .nbt-compare-chart .nbt-line { fill: none; stroke: var(--series); stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.${EXPLORER_CLASS} .nbt-compare-chart .nbt-dot { fill: var(--series); }
.${EXPLORER_CLASS} .nbt-compare-chart .nbt-gridline { stroke: var(--nbt-grid); stroke-width: 1; }
.${EXPLORER_CLASS} .nbt-compare-chart .nbt-axis, .${EXPLORER_CLASS} .nbt-compare-chart .nbt-tickmark { stroke: var(--nbt-border); }
.${EXPLORER_CLASS} .nbt-compare-chart .nbt-tick { fill: var(--nbt-muted); font-size: 10px; }
${SERIES_COLORS.map((color, i) => `.${EXPLORER_CLASS} [data-series="${i}"] { --series: ${color}; }`).join("\n")}
`;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The runs table: a row per run, its display name first. */
function runsTable(view) {
  const parts = [];
  const head = element("div");
  const total = (view.rows || []).length + (Number(view.omitted) || 0);
  head.append(element("span", "nbt-title", String(view.title || "")), element("span", "nbt-muted", `  ${plural(total, "run")} · ${view.source || ""}`));
  parts.push(head);
  if (view.message) {
    parts.push(element("div", "nbt-message", String(view.message)));
    return parts;
  }
  const table = element("table", "nbt-runs");
  const header = element("tr");
  for (const column of view.columns || []) {
    const th = element("th");
    if (column.group) th.append(element("span", "nbt-group", `${column.group}.`));
    th.append(String(column.key));
    header.append(th);
  }
  table.append(header);
  for (const row of view.rows || []) {
    const tr = element("tr");
    tr.dataset.run = String(row.id || "");
    (row.cells || []).forEach((cell, i) => tr.append(element("td", i === 0 ? "nbt-run-name" : undefined, String(cell))));
    table.append(tr);
  }
  parts.push(table);
  if (view.omitted) parts.push(element("div", "nbt-muted", `+${view.omitted} older runs not shown`));
  return parts;
}

/** The comparison: a legend, the config and summary side by side, then a chart per metric. */
function comparison(view) {
  const runs = view.runs || [];
  const legend = element("div", "nbt-legend");
  runs.forEach((run, i) => {
    const item = element("span", "nbt-legend-run");
    const swatch = element("span", "nbt-swatch");
    swatch.dataset.series = String(i);
    item.append(swatch, String(run.name));
    item.title = String(run.path || "");
    legend.append(item);
  });
  const parts = [element("div", "nbt-title", `Comparing ${plural(runs.length, "run")}`), legend];

  const fields = view.fields || [];
  if (fields.length) {
    const table = element("table", "nbt-fields");
    const header = element("tr");
    header.append(element("th"), ...runs.map((run) => element("th", undefined, String(run.name))));
    table.append(header);
    for (const field of fields) {
      const tr = element("tr", field.differs ? "nbt-differs" : undefined);
      const key = element("td", "nbt-muted", `${field.section}.${field.key}`);
      if (field.differs) {
        const mark = element("span", "nbt-mark", DIFFERS);
        mark.title = "not the same in every run";
        key.append(mark);
      }
      tr.append(key, ...(field.values || []).map((value) => element("td", undefined, String(value))));
      table.append(tr);
    }
    parts.push(table);
  }

  const grid = element("div", "nbt-charts");
  for (const chart of view.charts || []) {
    const card = element("div", "nbt-card nbt-compare-card");
    card.dataset.key = String(chart.key);
    const title = element("div", "nbt-key", String(chart.key));
    title.title = String(chart.key);
    const svg = svgNode(document, "svg", { class: "nbt-compare-chart", role: "img", "aria-label": `${chart.key}, a line per run` });
    card.append(title, svg);
    grid.append(card);
    drawLineChart(svg, (chart.series || []).map((s) => ({ xs: s.xs, lo: s.lo, hi: s.hi })), {
      width: COMPARE_CHART_WIDTH,
      height: COMPARE_CHART_HEIGHT,
      margin: { top: 6, right: 8, bottom: 20, left: 48 },
      axes: true,
      yPadding: 0.05,
    });
  }
  parts.push(grid);
  const keys = (view.charts || []).length;
  const more = view.charts_omitted ? ` (+${view.charts_omitted} more not shown)` : "";
  parts.push(element("div", "nbt-muted", keys ? `${plural(keys, "chart")} over steps${more}` : "no metric is charted in every run"));
  return parts;
}

export default {
  render({ model, el }) {
    const style = element("style", undefined, EXPLORER_CSS);
    const root = element("div", EXPLORER_CLASS);
    el.append(style, root);
    const draw = () => {
      const view = model.get("view") || {};
      root.dataset.kind = String(view.kind || "");
      root.replaceChildren(...(view.kind === "compare" ? comparison(view) : runsTable(view)));
    };
    model.on("change:view", draw);
    draw();
    return () => {
      model.off("change:view", draw);
      root.remove();
      style.remove();
    };
  },
};
