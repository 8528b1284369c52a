// Parallel coordinates of a project's runs: one vertical axis per chosen config key (numbers, or
// categories for anything else), the last one a summary metric, one line per run colored by that
// metric. Dragging along an axis brushes a range; the runs inside every brush are the selection
// (selection.js), and the selected runs are drawn on top, the others faded.
//
// The axes are pure (axisOf, runPositions, metricColor: node's tests cover them); drawParallel
// draws them with the shared chart code's scales, ticks and number format (shared/chart.js).
import { extent, formatLogTicks, formatTicks, linearScale, logScale, logTicks, niceTicks } from "../shared/chart.js";
import { svgNode } from "../shared/chart_svg.js";
import { jsonText, valueText } from "./format.js";
import { idsWithin } from "./selection.js";
import { compareValues } from "./table.js";

export const LAYOUT = { width: 960, height: 340, top: 28, bottom: 300, left: 70, right: 890, missingGap: 26, brushMin: 3, hitMargin: 10 };
const LOG_RATIO = 100; // positive numbers spanning two decades or more get a log axis (learning rates)
const MAX_CATEGORY_LABEL = 14;
// Colors from low to high metric values (a colorblind-safe ramp, viridis-like), interpolated.
const RAMP = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

const isNumber = (v) => typeof v === "number";

/**
 * The axis of one column over runs, drawn from y = top (high values) to y = bottom: {id, label,
 * kind: "linear" | "log" | "category", domain, position(run) -> y, ticks: [{y, text}], missing}.
 * A column whose values are all numbers is numeric; NaN, infinities and runs without a value sit
 * on a "no value" mark below the axis (missing says whether any run does). Anything else is one
 * category per distinct value (by JSON), in compareValues' order.
 */
export function axisOf(column, runs, { top = LAYOUT.top, bottom = LAYOUT.bottom, missingGap = LAYOUT.missingGap } = {}) {
  const values = runs.map((run) => column.value(run));
  const present = values.filter((v) => v !== undefined && v !== null);
  const missingY = bottom + missingGap;
  let missing = false;
  const axis = { id: column.id, label: column.label, missingY };
  if (present.length > 0 && present.every(isNumber)) {
    const domain = extent(present) ?? [0, 1];
    const log = domain[0] > 0 && domain[1] / domain[0] >= LOG_RATIO;
    const scale = (log ? logScale : linearScale)(domain, [bottom, top]);
    const ticks = (log ? logTicks : niceTicks)(domain[0], domain[1], 5);
    const labels = log ? formatLogTicks(ticks) : formatTicks(ticks);
    const position = (run) => {
      const v = column.value(run);
      return isNumber(v) && Number.isFinite(v) ? scale(v) : missingY;
    };
    missing = values.some((v) => !(isNumber(v) && Number.isFinite(v)));
    Object.assign(axis, { kind: log ? "log" : "linear", domain, position, ticks: ticks.map((t, i) => ({ y: scale(t), text: labels[i] })) });
  } else {
    const byKey = new Map();
    for (const v of present) byKey.set(jsonText(v), v);
    const categories = [...byKey.entries()].sort((a, b) => compareValues(a[1], b[1]));
    const place = linearScale([0, Math.max(1, categories.length - 1)], [bottom, top]);
    const at = new Map(categories.map(([key], i) => [key, categories.length === 1 ? (top + bottom) / 2 : place(i)]));
    const position = (run) => {
      const v = column.value(run);
      return v === undefined || v === null ? missingY : at.get(jsonText(v));
    };
    missing = values.length > present.length;
    const ticks = categories.map(([key, v]) => ({ y: at.get(key), text: shorten(valueText(v)) }));
    Object.assign(axis, { kind: "category", domain: categories.map(([, v]) => v), position, ticks });
  }
  axis.missing = missing;
  return axis;
}

function shorten(text) {
  return text.length > MAX_CATEGORY_LABEL ? `${text.slice(0, MAX_CATEGORY_LABEL - 1)}…` : text;
}

/** Each run's y on each axis: [{id, at: {axisId: y}}], what brushing (idsWithin) reads. */
export function runPositions(runs, axes) {
  return runs.map((run) => ({ id: run.id, at: Object.fromEntries(axes.map((axis) => [axis.id, axis.position(run)])) }));
}

/** The ramp's color at t in [0, 1] ("rgb(r, g, b)"); null (no metric value) for null or a non-finite t. */
export function metricColor(t) {
  if (t === null || !Number.isFinite(t)) return null;
  const at = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(at));
  const f = at - i;
  const mix = RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * f));
  return `rgb(${mix.join(", ")})`;
}

/** Where a run's metric sits in the metric's range, 0 (lowest) to 1, or null without a finite value. */
export function metricShare(metricColumn, runs) {
  const domain = extent(runs.map((run) => metricColumn.value(run)));
  return (run) => {
    const v = metricColumn.value(run);
    if (!isNumber(v) || !Number.isFinite(v) || !domain) return null;
    return domain[1] === domain[0] ? 0.5 : (v - domain[0]) / (domain[1] - domain[0]);
  };
}

/**
 * Draws the runs into svg over the config columns and the metric column (the last axis), and makes
 * its axes brushable. view: {brushes: Map axisId -> [y0, y1]} kept by the caller across redraws;
 * selection (selection.js) is read for the highlight and set when a brush changes.
 */
export function drawParallel(svg, { runs, configColumns, metricColumn, selection, view }) {
  const doc = svg.ownerDocument;
  const columns = metricColumn ? [...configColumns, metricColumn] : configColumns;
  const axes = columns.map((column) => axisOf(column, runs));
  for (const id of [...view.brushes.keys()]) if (!axes.some((axis) => axis.id === id)) view.brushes.delete(id);
  svg.setAttribute("viewBox", `0 0 ${LAYOUT.width} ${LAYOUT.height}`);
  svg.dataset.lines = String(runs.length);
  const step = axes.length > 1 ? (LAYOUT.right - LAYOUT.left) / (axes.length - 1) : 0;
  const xOf = (i) => (axes.length > 1 ? LAYOUT.left + i * step : (LAYOUT.left + LAYOUT.right) / 2);
  const share = metricColumn ? metricShare(metricColumn, runs) : () => null;

  const lines = svgNode(doc, "g", { class: "pc-lines" });
  const positions = runPositions(runs, axes);
  lines.append(
    ...runs.map((run, r) => {
      const d = axes.map((axis, i) => `${i ? "L" : "M"}${xOf(i).toFixed(1)},${positions[r].at[axis.id].toFixed(1)}`).join("");
      const color = metricColor(share(run));
      const attributes = { class: "pc-line", d, "data-run": run.id };
      if (color) attributes.stroke = color;
      const path = svgNode(doc, "path", attributes);
      const title = svgNode(doc, "title");
      title.textContent = run.name;
      path.append(title);
      return path;
    }),
  );
  const axisNodes = axes.map((axis, i) => axisGroup(doc, axis, xOf(i), view, positions, selection));
  svg.replaceChildren(lines, ...axisNodes);
  highlightParallel(svg, selection);
}

/**
 * Marks the selected runs' lines (drawn on top, the others faded) without drawing anything again:
 * what a change of the selection alone needs.
 */
export function highlightParallel(svg, selection) {
  const group = svg.querySelector("g.pc-lines");
  if (!group) return;
  const chosen = selection.size > 0;
  const selected = [];
  for (const path of group.children) {
    const on = selection.has(path.getAttribute("data-run"));
    path.setAttribute("class", `pc-line${on ? " selected" : chosen ? " faded" : ""}`);
    if (on) selected.push(path);
  }
  group.append(...selected); // last, so they are drawn over the others
}

function axisGroup(doc, axis, x, view, positions, selection) {
  const group = svgNode(doc, "g", { class: `pc-axis pc-${axis.kind}`, "data-axis": axis.id, "data-kind": axis.kind });
  if (axis.kind !== "category") {
    group.dataset.min = String(axis.domain[0]);
    group.dataset.max = String(axis.domain[1]);
  }
  const label = svgNode(doc, "text", { class: "pc-label", x, y: LAYOUT.top - 12, "text-anchor": "middle" });
  label.textContent = axis.label;
  group.append(label, svgNode(doc, "line", { class: "pc-rule", x1: x, x2: x, y1: LAYOUT.top, y2: LAYOUT.bottom }));
  for (const tick of axis.ticks) {
    const text = svgNode(doc, "text", { class: "pc-tick", x: x - 6, y: tick.y, "text-anchor": "end", "dominant-baseline": "middle" });
    text.textContent = tick.text;
    group.append(svgNode(doc, "line", { class: "pc-rule", x1: x - 3, x2: x, y1: tick.y, y2: tick.y }), text);
  }
  if (axis.missing) {
    const none = svgNode(doc, "text", { class: "pc-tick pc-none", x: x - 6, y: axis.missingY, "text-anchor": "end", "dominant-baseline": "middle" });
    none.textContent = "no value";
    group.append(none);
  }
  const brush = svgNode(doc, "rect", { class: "pc-brush", x: x - 8, width: 16, y: 0, height: 0 });
  const showBrush = () => {
    const range = view.brushes.get(axis.id);
    brush.setAttribute("y", range ? Math.min(...range) : 0);
    brush.setAttribute("height", range ? Math.abs(range[1] - range[0]) : 0);
  };
  showBrush();
  // The strip along the axis takes the drags: from a little above its top (a brush may start past
  // the highest value) down to the "no value" mark, so that can be brushed too.
  const top = LAYOUT.top - LAYOUT.hitMargin;
  const bottom = (axis.missing ? axis.missingY : LAYOUT.bottom) + LAYOUT.hitMargin;
  const hit = svgNode(doc, "rect", { class: "pc-hit", x: x - 14, width: 28, y: top, height: bottom - top, "data-axis": axis.id });
  hit.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    const svg = hit.ownerSVGElement;
    const start = toSvgY(svg, event);
    hit.setPointerCapture(event.pointerId);
    const move = (e) => {
      view.brushes.set(axis.id, [start, toSvgY(svg, e)]);
      showBrush();
    };
    const up = (e) => {
      hit.removeEventListener("pointermove", move);
      hit.removeEventListener("pointerup", up);
      const end = toSvgY(svg, e);
      if (Math.abs(end - start) < LAYOUT.brushMin) view.brushes.delete(axis.id); // a click clears it
      else view.brushes.set(axis.id, [start, end]);
      showBrush();
      selection.set(idsWithin(positions, view.brushes));
    };
    hit.addEventListener("pointermove", move);
    hit.addEventListener("pointerup", up);
  });
  group.append(brush, hit);
  return group;
}

/** A pointer event's y in the svg's own units (its viewBox), whatever size it is drawn at. */
function toSvgY(svg, event) {
  const box = svg.getBoundingClientRect();
  return ((event.clientY - box.top) / box.height) * LAYOUT.height;
}
