// A grid of line charts, one per metric, each with one series per run: the run page shows one run,
// the compare page several (series i is run i, and takes colour i). Drawing is chart_svg.js's, the
// same as the notebook panel's; this module adds what a page needs around it: axes for step,
// runtime or wall time, a linear or log y axis, smoothing (the smoothed line over the faint raw one),
// hover (the values at the nearest x), drag-to-zoom and double-click to reset, and hiding charts.
// createChartSection is what a page uses: it holds the view (axis, zoomed range), the project's
// chart settings (chart_settings.js: kept across reloads) and the toolbar (chart_toolbar.js), and
// calls the page's loader for the view's data; the grid itself never fetches.
import {
  formatDateTime,
  formatDuration,
  formatElapsed,
  formatClock,
  formatNumber,
  formatTicks,
  nearestIndex,
  niceTicks,
  timeTicks,
  zoomDomain,
} from "../shared/chart.js";
import { drawLineChart, svgNode, syncCards } from "../shared/chart_svg.js";
import { defaultChartSettings, loadChartSettings, saveChartSettings } from "./chart_settings.js";
import { createChartToolbar } from "./chart_toolbar.js";
import { h } from "./dom.js";
import { smoothSeries } from "./smoothing.js";
import { errorBox } from "./widgets.js";
import { naturalCompare } from "./model.js";

const HEIGHT = 210;
const MARGIN = { top: 10, right: 14, bottom: 24, left: 54 };

/** How an x field is ticked and labelled. */
export function xScheme(field) {
  if (field === "_runtime") {
    return {
      name: "runtime",
      ticks: (lo, hi, count) => timeTicks(lo, hi, count),
      labels: (ticks) => ticks.map(formatElapsed),
      hover: (x) => `runtime ${formatDuration(x)}`,
    };
  }
  if (field === "_timestamp") {
    // Ticks on local round times: timeTicks aligns (t + offset) to the step.
    const offset = (t) => -new Date(t * 1000).getTimezoneOffset() * 60;
    return {
      name: "wall time",
      ticks: (lo, hi, count) => timeTicks(lo, hi, count, offset(lo)),
      labels: (ticks) => ticks.map((t) => formatClock(t, ticks.length > 1 ? ticks[1] - ticks[0] : 1)),
      hover: (x) => formatDateTime(x),
    };
  }
  if (field === "_step" || field === undefined) {
    return { name: "step", ticks: stepTicks, labels: formatTicks, hover: (x) => `step ${formatNumber(x)}` };
  }
  // A step metric the run declared ("trainer/global_step"): plain numbers, named in the tooltip.
  return { name: field, ticks: niceTicks, labels: formatTicks, hover: (x) => `${field} ${formatNumber(x)}` };
}

/** Steps are whole numbers: no "0.5" tick on a run of three steps (unless zoomed between two). */
function stepTicks(lo, hi, count) {
  const ticks = niceTicks(lo, hi, count);
  const whole = ticks.filter(Number.isInteger);
  return whole.length >= 2 ? whole : ticks;
}

function valueLabel(series, i) {
  const lo = series.lo[i];
  const hi = series.hi ? series.hi[i] : lo;
  const raw = hi === lo || (Number.isNaN(lo) && Number.isNaN(hi)) ? formatNumber(lo) : `${formatNumber(lo)} … ${formatNumber(hi)}`;
  return series.smooth && Number.isFinite(series.smooth[i]) ? `${formatNumber(series.smooth[i])} (raw ${raw})` : raw;
}

/** What a card says under its chart when the log axis could not show everything. */
function scaleNote(layout, asked) {
  if (asked !== "log" || !layout) return "";
  if (layout.yScale !== "log") return "No value above 0: drawn on a linear scale.";
  if (layout.offScale > 0) return `${layout.offScale} point${layout.offScale === 1 ? "" : "s"} ≤ 0 left off the log scale.`;
  return "";
}

/**
 * A chart grid in `container`. labels: one per run (the tooltip's row names; a single run's tooltip
 * names the metric instead). onZoom(range | null) is called when the user zooms or resets, onHide(key)
 * when a card's "Hide" button is pressed. Returns {update(data, view, settings), keys(), destroy()}
 * where data is one Map key -> {xs, lo, hi} per run, view is {x: "_step" | "_runtime" |
 * "_timestamp" | a step metric, range: [min, max] | null} and settings chart_settings.js's {hidden, smoothing,
 * yScale}; keys() are the keys that have a chart, hidden or not.
 */
function createChartGrid(container, { labels, onZoom, onHide }) {
  const grid = h("div", { class: "chart-grid" });
  const empty = h("p", { class: "muted empty-charts", hidden: true });
  container.append(empty, grid);
  const cards = new Map(); // key -> card
  let data = [];
  let allKeys = [];
  let view = { x: "_step", range: null };
  let settings = defaultChartSettings();

  function card(key) {
    const svg = svgNode(document, "svg", { class: "chart", "data-key": key, role: "img", "aria-label": `Chart of ${key}` });
    const overlay = svgNode(document, "g", { class: "chart-overlay" });
    const cursor = svgNode(document, "line", { class: "chart-cursor", visibility: "hidden" });
    const brush = svgNode(document, "rect", { class: "chart-brush", visibility: "hidden", height: 0, width: 0 });
    const dots = svgNode(document, "g", {});
    overlay.append(cursor, dots, brush);
    svg.append(overlay);
    const tip = h("div", { class: "chart-tip", hidden: true, role: "status" });
    const title = h("h3", { class: "chart-title", title: key }, key);
    const hide = h("button", { type: "button", class: "chart-hide", title: "Hide this chart (Charts menu shows it again)", "aria-label": `Hide chart ${key}`, on: { click: () => onHide(key) } }, "×");
    const box = h("div", { class: "chart-box" }, svg, tip);
    const note = h("p", { class: "chart-note muted", hidden: true, role: "note" });
    const node = h("section", { class: "chart-card", dataset: { key } }, h("div", { class: "chart-head" }, title, hide), box, note);
    const parts = { key, node, svg, overlay, cursor, brush, dots, tip, box, note, layout: null, series: [] };
    wire(parts);
    return parts;
  }

  function pointerX(parts, event) {
    const rect = parts.svg.getBoundingClientRect();
    const width = Number(parts.svg.viewBox.baseVal.width) || rect.width;
    return ((event.clientX - rect.left) * width) / (rect.width || 1);
  }

  function hideHover(parts) {
    parts.cursor.setAttribute("visibility", "hidden");
    parts.dots.replaceChildren();
    parts.tip.hidden = true;
  }

  function showHover(parts, px) {
    const { layout, series } = parts;
    if (!layout) return;
    const x = layout.x.invert(px);
    // Snap to the nearest point of any series; each series then shows its own nearest point.
    let snapped = null;
    for (const s of series) {
      const i = nearestIndex(s.xs, x);
      if (i >= 0 && (snapped === null || Math.abs(s.xs[i] - x) < Math.abs(snapped - x))) snapped = s.xs[i];
    }
    if (snapped === null) return hideHover(parts);
    const sx = layout.x(snapped);
    if (sx < layout.plot.left - 1 || sx > layout.plot.right + 1) return hideHover(parts);
    parts.cursor.setAttribute("x1", sx);
    parts.cursor.setAttribute("x2", sx);
    parts.cursor.setAttribute("y1", layout.plot.top);
    parts.cursor.setAttribute("y2", layout.plot.bottom);
    parts.cursor.setAttribute("visibility", "visible");
    const rows = [];
    const dots = [];
    series.forEach((s, runIndex) => {
      const i = nearestIndex(s.xs, snapped);
      if (i < 0) return;
      // The dot sits on the line drawn on top: the smoothed one when smoothing is on.
      const cy = layout.y(s.smooth ? s.smooth[i] : s.lo[i]);
      if (Number.isFinite(cy)) {
        dots.push(svgNode(document, "circle", { class: "chart-dot", "data-series": runIndex, cx: layout.x(s.xs[i]), cy, r: 3 }));
      }
      const name = labels.length > 1 ? labels[runIndex] : parts.key;
      rows.push(h("div", { class: "tip-row" }, h("span", { class: "swatch", "data-series": runIndex }), h("span", { class: "tip-name" }, name), h("span", { class: "tip-value" }, valueLabel(s, i))));
    });
    parts.dots.replaceChildren(...dots);
    parts.tip.replaceChildren(h("div", { class: "tip-x" }, xScheme(view.x).hover(snapped)), ...rows);
    parts.tip.hidden = false;
    // Beside the cursor, on whichever side has room.
    const boxWidth = parts.box.clientWidth;
    const tipWidth = parts.tip.offsetWidth;
    const left = sx + 12 + tipWidth > boxWidth ? sx - 12 - tipWidth : sx + 12;
    parts.tip.style.left = `${Math.max(0, left)}px`;
  }

  function wire(parts) {
    let dragFrom = null;
    parts.svg.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !parts.layout) return;
      dragFrom = pointerX(parts, event);
      parts.svg.setPointerCapture(event.pointerId);
      event.preventDefault(); // no text selection while dragging
    });
    parts.svg.addEventListener("pointermove", (event) => {
      const px = pointerX(parts, event);
      if (dragFrom === null) return showHover(parts, px);
      hideHover(parts);
      const { plot } = parts.layout;
      const a = Math.max(plot.left, Math.min(dragFrom, px));
      const b = Math.min(plot.right, Math.max(dragFrom, px));
      parts.brush.setAttribute("x", a);
      parts.brush.setAttribute("width", Math.max(0, b - a));
      parts.brush.setAttribute("y", plot.top);
      parts.brush.setAttribute("height", plot.bottom - plot.top);
      parts.brush.setAttribute("visibility", "visible");
    });
    const endDrag = (event, apply) => {
      if (dragFrom === null) return;
      const range = apply ? zoomDomain(parts.layout.x, dragFrom, pointerX(parts, event)) : null;
      dragFrom = null;
      parts.brush.setAttribute("visibility", "hidden");
      if (range) onZoom(range);
    };
    parts.svg.addEventListener("pointerup", (event) => endDrag(event, true));
    parts.svg.addEventListener("pointercancel", (event) => endDrag(event, false));
    parts.svg.addEventListener("pointerleave", () => dragFrom === null && hideHover(parts));
    parts.svg.addEventListener("dblclick", () => view.range && onZoom(null));
  }

  function draw(parts) {
    const width = Math.max(160, Math.floor(parts.box.clientWidth));
    // The viewBox is the box's size in pixels (CSS scales the svg to the box's width), so labels
    // keep their size and pointer maths stays 1:1.
    parts.series = data.map((run) => {
      const s = run.get(parts.key) || { xs: [], lo: [], hi: null };
      return settings.smoothing > 0 ? { ...s, smooth: smoothSeries(s, settings.smoothing) } : s;
    });
    parts.layout = drawLineChart(parts.svg, parts.series, {
      width,
      height: HEIGHT,
      margin: MARGIN,
      xDomain: view.range || undefined,
      yPadding: 0.05,
      yGrid: 4,
      axes: true,
      xTicks: xScheme(view.x),
      xTickCount: Math.max(2, Math.floor(width / 110)),
      yScale: settings.yScale,
    });
    const note = scaleNote(parts.layout, settings.yScale);
    parts.note.textContent = note;
    parts.note.hidden = !note;
    hideHover(parts);
  }

  function update(nextData, nextView, nextSettings) {
    data = nextData;
    view = nextView;
    settings = nextSettings;
    const keys = new Set();
    for (const run of data) {
      for (const [key, s] of run) if (s.xs.length) keys.add(key);
    }
    allKeys = [...keys].sort(naturalCompare);
    syncCards(grid, cards, allKeys.filter((key) => !settings.hidden.has(key)), card);
    // Drawn after every card is in place: each measures its own width.
    for (const parts of cards.values()) draw(parts);
    empty.hidden = cards.size > 0;
    empty.textContent = allKeys.length ? `All ${allKeys.length} charts are hidden: choose them in the Charts menu.` : "No metrics logged yet.";
    grid.dataset.charts = String(cards.size);
  }

  // The charts' widths follow the page's: redraw when the grid is resized (not on every update).
  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    if (grid.clientWidth === lastWidth) return;
    lastWidth = grid.clientWidth;
    for (const parts of cards.values()) draw(parts);
  });
  resize.observe(grid);

  return {
    update,
    keys: () => allKeys,
    destroy() {
      resize.disconnect();
      grid.remove();
      empty.remove();
    },
  };
}

/**
 * A page's charts: the grid, its toolbar, the view they share ({x, range}, changed in place) and the
 * chart settings of the project `scope` ([entity, project]; none: defaults, not kept).
 * load(view) fetches the charts for a view (one series map per run, chartSeries' shape) or returns
 * null when the page went away. refresh(loader = load) fetches and draws; an answer to a request
 * older than the latest (a previous zoom, axis or poll) is dropped, so a slow answer never
 * overwrites a newer one. onAxis(x) lets the page keep the axis in its URL; a failed fetch shows
 * in the toolbar and goes to onError(error), unless signal says the page went away. Settings
 * (hidden charts, smoothing, y scale) redraw what is loaded, without a fetch.
 * stepMetrics() are the runs' declared step metrics, offered as x axes besides X_AXES.
 * Returns {draw(charts), refresh(loader?), charts(), destroy()}.
 */
export function createChartSection(container, toolbarSlot, { labels, view, load, onAxis, onError, signal, scope = null, stepMetrics = () => [] }) {
  let latest = 0;
  let current = [];
  const settings = scope ? loadChartSettings(...scope) : defaultChartSettings();
  const grid = createChartGrid(container, {
    labels,
    onZoom: (range) => {
      view.range = range;
      refresh();
    },
    onHide: (key) => {
      settings.hidden.add(key);
      changed();
    },
  });

  /** The user changed a setting: keep it for the project and redraw what is loaded. */
  function changed() {
    if (scope) saveChartSettings(...scope, settings);
    redraw();
  }

  const toolbar = createChartToolbar({
    onX: (x) => {
      view.x = x;
      view.range = null;
      onAxis(x);
      refresh();
    },
    onReset: () => {
      view.range = null;
      refresh();
    },
    onYScale: (scale) => {
      settings.yScale = scale;
      changed();
    },
    onSmoothing: (weight) => {
      settings.smoothing = weight;
      changed();
    },
    onShow: (key, shown) => {
      if (shown) settings.hidden.delete(key);
      else settings.hidden.add(key);
      changed();
    },
    onShowAll: () => {
      settings.hidden.clear();
      changed();
    },
  });
  toolbarSlot.replaceChildren(toolbar.node);

  function renderToolbar() {
    toolbar.update({ x: view.x, axes: stepMetrics(), zoomed: view.range !== null, yScale: settings.yScale, smoothing: settings.smoothing, keys: grid.keys(), hidden: settings.hidden });
  }

  function redraw() {
    grid.update(current, { ...view }, settings);
    renderToolbar();
  }

  function draw(charts) {
    current = charts;
    redraw();
  }

  async function refresh(loader = load) {
    const request = ++latest;
    toolbar.showError(null);
    renderToolbar();
    try {
      const charts = await loader({ ...view });
      if (charts !== null && request === latest) draw(charts);
    } catch (error) {
      if (signal.aborted) return;
      if (request === latest) toolbar.showError(errorBox(error));
      onError(error);
    }
  }

  renderToolbar();
  return {
    draw,
    refresh,
    charts: () => current,
    destroy() {
      toolbar.destroy();
      grid.destroy();
    },
  };
}

/** The grid alone, for a section that keeps its own controls and x axis (ui/system.js). */
export { createChartGrid };
