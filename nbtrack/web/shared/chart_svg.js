// The one SVG line chart of nbtrack: the live panel's sparklines (widget/panel.js) and the web
// UI's charts (ui/charts.js) are both drawn by drawLineChart, in grids of cards both keep with
// syncCards.
//
// It draws into an <svg> it is given, with that element's own document (a notebook's output area,
// the UI page, or any DOM), in three layers of its own (grid, axes, lines) that each call redraws;
// other children of the svg are left alone (the UI keeps its hover and zoom overlay there).
// Labels are numbers, set with textContent like everything else.
//
// Bundling contract (esm.py inlines it into the widget's module after chart.js): one
// `import { ... } from "./chart.js";` and only `export function NAME` / `export const NAME`.
import { formatLogTicks, formatTicks, linearScale, logScale, logTicks, niceTicks, padDomain, padLogDomain, rangePath, seriesExtent, seriesPath } from "./chart.js";

const SVG_NAMESPACE = "http://www.w3.org/2000/svg";
const LAYERS = ["grid", "axes", "lines"];
const layerCache = new WeakMap(); // svg -> {grid, axes, lines}: found again without a query

/** An SVG element with string attributes, created in `doc`. */
export function svgNode(doc, tag, attributes = {}) {
  const node = doc.createElementNS(SVG_NAMESPACE, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function chartLayers(svg) {
  const cached = layerCache.get(svg);
  if (cached && LAYERS.every((name) => cached[name].parentNode === svg)) return cached;
  const doc = svg.ownerDocument;
  const layers = {};
  // Inserted first, so that anything the caller keeps in the svg is drawn above the lines.
  let before = svg.firstChild;
  for (const name of LAYERS) {
    // "nbt-layer-*": the panel's CSS already has an .nbt-grid (its card grid).
    layers[name] = svgNode(doc, "g", { class: `nbt-layer-${name}` });
    svg.insertBefore(layers[name], before);
    before = layers[name].nextSibling;
  }
  layerCache.set(svg, layers);
  return layers;
}

/**
 * Keep `grid`'s children one card per key, in the order of `keys`: cards of keys that are gone are
 * removed, missing ones made by create(key), the rest moved into place. A card is an object whose
 * `node` is its element; `cards` (a Map, key -> card) is kept in step. Returns the cards in order.
 */
export function syncCards(grid, cards, keys, create) {
  const wanted = new Set(keys);
  for (const [key, card] of cards) {
    if (!wanted.has(key)) {
      card.node.remove();
      cards.delete(key);
    }
  }
  return keys.map((key, index) => {
    let card = cards.get(key);
    if (!card) {
      card = create(key);
      cards.set(key, card);
    }
    if (grid.children[index] !== card.node) grid.insertBefore(card.node, grid.children[index] || null);
    return card;
  });
}

/**
 * Draws `series` into `svg` and returns the layout ({x, y, plot}; x and y are linearScales from data
 * to svg units, plot is {left, top, right, bottom}), or null when there is no finite point.
 *
 * series: [{xs, lo, hi?, smooth?}]: x values ascending, and y values (or per-point min/max bands
 *   when hi is given). Series i's path has class "nbt-line" and data-series="i"; CSS gives it its
 *   colour. With `smooth` (values aligned with xs) that path is the raw layer (also "nbt-raw",
 *   drawn faint by CSS, bands and all) and the smoothed values are a "nbt-smooth" path above it.
 * options:
 *   width, height   the svg's size in its own units (its viewBox is set to them)
 *   margin          {top, right, bottom, left}, room for axis labels (default 0 on every side)
 *   xDomain         [min, max] to show (a zoomed range); default: the series' x extent
 *   yDomain         default: the y extent, padded by yPadding (default 0) of its span
 *   yScale          "linear" (default) or "log": a log axis over the positive values, with ticks on
 *                   powers of ten; a point <= 0 is left off (a band reaching below 0 is drawn down to
 *                   the plot's bottom) and counted, and a chart without a positive value is drawn
 *                   linear. The layout and the svg (data-y-scale, data-off-scale) say which it got.
 *   yGrid           about how many horizontal gridlines (default 3; 0 for none)
 *   axes            draw tick labels (default false: a sparkline)
 *   xTicks          {ticks(min, max, count), labels(ticks)} for the x axis (default niceTicks/formatTicks)
 *   xTickCount      about how many x ticks (default 5)
 *   area            fill under a single unbroken series (the panel's sparkline)
 * The svg gets data-points (the points drawn, a count tests and benchmarks wait on) and
 * data-series-count (the number of series drawn). The layout also has yScale ("linear" | "log")
 * and offScale (the points a log axis left off).
 */
export function drawLineChart(svg, series, options = {}) {
  const doc = svg.ownerDocument;
  const width = options.width ?? 300;
  const height = options.height ?? 150;
  const margin = { top: 0, right: 0, bottom: 0, left: 0, ...options.margin };
  const layers = chartLayers(svg);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const found = seriesExtent(series);
  const xDomain = options.xDomain ?? found.x;
  const positive = options.yScale === "log" ? seriesExtent(series.map(positiveOnly)).y : null;
  const log = positive !== null;
  const yDomain = options.yDomain ?? (log ? padLogDomain(positive, options.yPadding ?? 0) : padDomain(found.y, options.yPadding ?? 0));
  const points = series.reduce((sum, s) => sum + s.xs.length, 0);
  svg.dataset.points = String(points);
  svg.dataset.seriesCount = String(series.length);
  svg.dataset.yScale = log ? "log" : "linear";
  let offScale = 0;
  if (log) {
    const bottom = yDomain[0];
    series = series.map((s) => {
      const drawn = onLogAxis(s, bottom);
      offScale += drawn.offScale;
      return drawn;
    });
  }
  svg.dataset.offScale = String(offScale);
  if (!xDomain || !yDomain) {
    for (const name of LAYERS) layers[name].replaceChildren();
    return null;
  }
  const plot = { left: margin.left, top: margin.top, right: width - margin.right, bottom: height - margin.bottom };
  const x = linearScale(xDomain, [plot.left, plot.right]);
  const y = (log ? logScale : linearScale)(yDomain, [plot.bottom, plot.top]);

  const yTicks = (options.yGrid ?? 3) > 0 ? (log ? logTicks : niceTicks)(yDomain[0], yDomain[1], options.yGrid ?? 3) : [];
  layers.grid.replaceChildren(
    ...yTicks.map((tick) =>
      svgNode(doc, "line", { class: "nbt-gridline", x1: plot.left, x2: plot.right, y1: y(tick), y2: y(tick) }),
    ),
  );

  const axisNodes = [];
  if (options.axes) {
    const yLabels = log ? formatLogTicks(yTicks) : formatTicks(yTicks);
    yTicks.forEach((tick, i) => {
      const label = svgNode(doc, "text", { class: "nbt-tick", x: plot.left - 6, y: y(tick), "text-anchor": "end", "dominant-baseline": "middle" });
      label.textContent = yLabels[i];
      axisNodes.push(label);
    });
    const scheme = options.xTicks ?? { ticks: niceTicks, labels: formatTicks };
    const xTicks = scheme.ticks(xDomain[0], xDomain[1], options.xTickCount ?? 5);
    const xLabels = scheme.labels(xTicks);
    xTicks.forEach((tick, i) => {
      const px = x(tick);
      axisNodes.push(svgNode(doc, "line", { class: "nbt-tickmark", x1: px, x2: px, y1: plot.bottom, y2: plot.bottom + 4 }));
      const label = svgNode(doc, "text", { class: "nbt-tick", x: px, y: plot.bottom + 6, "text-anchor": "middle", "dominant-baseline": "hanging" });
      label.textContent = xLabels[i];
      axisNodes.push(label);
    });
    axisNodes.push(svgNode(doc, "line", { class: "nbt-axis", x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
  }
  layers.axes.replaceChildren(...axisNodes);

  // Zoomed in, lines would run past the plot: clip them to it (an id per svg, as ids are global).
  let clip = null;
  if (options.xDomain) {
    if (!svg.dataset.clipId) svg.dataset.clipId = `nbt-clip-${Math.random().toString(36).slice(2)}`;
    clip = svgNode(doc, "clipPath", { id: svg.dataset.clipId });
    clip.append(svgNode(doc, "rect", { x: plot.left, y: plot.top - 2, width: plot.right - plot.left, height: plot.bottom - plot.top + 4 }));
  }
  const paths = series.map((s, i) => {
    const attributes = { class: s.smooth ? "nbt-line nbt-raw" : "nbt-line", "data-series": i, d: rangePath(s.xs, s.lo, s.hi, x, y) };
    if (clip) attributes["clip-path"] = `url(#${svg.dataset.clipId})`;
    return svgNode(doc, "path", attributes);
  });
  // The smoothed lines above every raw layer, so no run's raw line covers another's smoothed one.
  const smoothed = [];
  series.forEach((s, i) => {
    if (!s.smooth) return;
    const attributes = { class: "nbt-smooth", "data-series": i, d: seriesPath(s.xs, s.smooth, x, y) };
    if (clip) attributes["clip-path"] = `url(#${svg.dataset.clipId})`;
    smoothed.push(svgNode(doc, "path", attributes));
  });
  // A series with a single point has no line to draw: a dot shows it.
  const dots = [];
  series.forEach((s, i) => {
    let only = -1;
    let count = 0;
    for (let j = 0; j < s.xs.length && count < 2; j++) {
      if (Number.isFinite(s.xs[j]) && Number.isFinite(s.lo[j])) {
        only = j;
        count++;
      }
    }
    if (count !== 1) return;
    const attributes = { class: "nbt-dot", "data-series": i, cx: x(s.xs[only]), cy: y(s.lo[only]), r: 2.5 };
    if (clip) attributes["clip-path"] = `url(#${svg.dataset.clipId})`;
    dots.push(svgNode(doc, "circle", attributes));
  });
  const area = [];
  if (options.area && paths.length === 1) {
    const d = paths[0].getAttribute("d");
    const first = d.match(/^M([-\d.]+),/);
    const last = d.match(/L([-\d.]+),[-\d.]+$/);
    if (first && last && !d.includes("M", 1)) {
      area.push(svgNode(doc, "path", { class: "nbt-area", d: `${d}L${last[1]},${height}L${first[1]},${height}Z` }));
    }
  }
  layers.lines.replaceChildren(...(clip ? [clip] : []), ...area, ...paths, ...smoothed, ...dots);
  return { x, y, plot, yScale: log ? "log" : "linear", offScale };
}

/** A series with every value <= 0 made NaN: what a log axis can show, for its extent. */
function positiveOnly(s) {
  const keep = (v) => (v > 0 ? v : NaN);
  return { xs: s.xs, lo: s.lo.map(keep), hi: s.hi ? s.hi.map(keep) : null };
}

/**
 * A series as a log axis draws it: a point <= 0 becomes NaN (the line breaks there), a band from
 * <= 0 up to a positive value reaches down to `bottom` (the axis' lowest value), a smoothed value
 * <= 0 breaks the smoothed line. offScale counts the points that did not fit whole.
 */
function onLogAxis(s, bottom) {
  let offScale = 0;
  const lo = [];
  const hi = [];
  for (let i = 0; i < s.xs.length; i++) {
    const a = s.lo[i];
    const b = s.hi ? s.hi[i] : a;
    if (a > 0 && b > 0) {
      lo.push(a);
      hi.push(b);
      continue;
    }
    if (Number.isFinite(a)) offScale += 1; // a NaN or an infinity is not the log axis' doing
    if (b > 0) {
      lo.push(bottom);
      hi.push(b);
    } else {
      lo.push(NaN);
      hi.push(NaN);
    }
  }
  const smooth = s.smooth ? s.smooth.map((v) => (v > 0 ? v : NaN)) : undefined;
  return { xs: s.xs, lo, hi, ...(smooth ? { smooth } : {}), offScale };
}
