// A scatter of a project's runs over any two numeric columns (a config key, a summary metric, the
// runtime), one dot per run, drawn by the shared chart (each run a one-point series, which
// drawLineChart draws as a dot, on its axes). Clicking a dot adds its run to the selection or takes
// it out (selection.js); selected runs are drawn large, the others faded.
import { padDomain } from "../shared/chart.js";
import { drawLineChart } from "../shared/chart_svg.js";

export const SIZE = { width: 460, height: 320, margin: { top: 12, right: 16, bottom: 28, left: 56 } };

const finite = (v) => typeof v === "number" && Number.isFinite(v);

/** The columns a scatter can use: those where some run has a finite number. */
export function numericColumns(columns, runs) {
  return columns.filter((column) => column.id !== "created" && runs.some((run) => finite(column.value(run))));
}

/** The runs with a finite number in both columns, as points [{id, x, y}], and how many runs lack one. */
export function scatterPoints(runs, xColumn, yColumn) {
  const points = [];
  for (const run of runs) {
    const x = xColumn.value(run);
    const y = yColumn.value(run);
    if (finite(x) && finite(y)) points.push({ id: run.id, name: run.name, x, y });
  }
  return { points, left: runs.length - points.length };
}

/** Draws the points into svg; returns how many runs were left out for want of a number. */
export function drawScatter(svg, { runs, xColumn, yColumn, selection }) {
  const { points, left } = scatterPoints(runs, xColumn, yColumn);
  const series = points.map((p) => ({ xs: [p.x], lo: [p.y] }));
  const xs = points.map((p) => p.x);
  const xDomain = xs.length ? padDomain([Math.min(...xs), Math.max(...xs)]) : undefined;
  drawLineChart(svg, series, { ...SIZE, xDomain, yPadding: 0.05, yGrid: 4, axes: true });
  for (const dot of svg.querySelectorAll("circle.nbt-dot")) {
    const point = points[Number(dot.getAttribute("data-series"))];
    dot.setAttribute("data-run", point.id);
    const title = svg.ownerDocument.createElementNS(svg.namespaceURI, "title");
    title.textContent = point.name;
    dot.append(title);
  }
  highlightScatter(svg, selection);
  svg.dataset.dots = String(points.length);
  return left;
}

/** Marks the selected runs' dots (large, drawn on top; the others faded) without drawing again. */
export function highlightScatter(svg, selection) {
  const chosen = selection.size > 0;
  const selected = [];
  for (const dot of svg.querySelectorAll("circle[data-run]")) {
    const on = selection.has(dot.getAttribute("data-run"));
    dot.setAttribute("class", `nbt-dot scatter-dot${on ? " selected" : chosen ? " faded" : ""}`);
    dot.setAttribute("r", on ? 6 : 4.5);
    if (on) selected.push(dot);
  }
  for (const dot of selected) dot.parentNode.append(dot); // last, so they are drawn over the others
}

/** Clicks on the svg's dots toggle their runs (one listener, kept across redraws). */
export function listenForDots(svg, selection) {
  svg.addEventListener("click", (event) => {
    const dot = event.target instanceof Element ? event.target.closest("circle[data-run]") : null;
    if (dot) selection.toggle(dot.getAttribute("data-run"));
  });
}
