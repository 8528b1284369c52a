// Logged media on a run page: the newest image, histogram and table of each key (from the run's
// summary, which keeps each key's last value: a reference such as {"_type": "image-file", "path"}).
//
// Images and tables are run files. They are fetched with the API key (api.js fetchFile) and an
// image is shown from a blob: URL (the CSP's img-src allows 'self' data: blob:), so a server with
// keys shows them too; the blob URLs are revoked when the page goes. Histograms are inline: bars
// drawn as SVG rects. Everything else is text.
import { formatNumber } from "../chart.js";
import { svgNode } from "../chart_svg.js";
import { fetchFile } from "./api.js";
import { fill, h } from "./dom.js";
import { naturalCompare } from "./model.js";

const MEDIA_TYPES = new Set(["image-file", "histogram", "table-file"]);
const TABLE_ROWS = 20; // rows of a table shown on the page
const HIST_WIDTH = 320;
const HIST_HEIGHT = 120;

/** True for a media reference as log() stores it. */
export function isMedia(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && MEDIA_TYPES.has(value._type);
}

/** [key, reference] of each media value of a summary, images first, then histograms, then tables. */
export function mediaEntries(summary) {
  const order = { "image-file": 0, histogram: 1, "table-file": 2 };
  return Object.entries(summary || {})
    .filter(([key, value]) => !key.startsWith("_") && isMedia(value))
    .sort(([a, x], [b, y]) => order[x._type] - order[y._type] || naturalCompare(a, b));
}

/** The path (under the page's origin) of a run file. */
export function runFilePath(names, path) {
  const parts = [names.entity, names.project, names.run].map(encodeURIComponent);
  return `/files/${parts.join("/")}/${String(path).split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Bars of a histogram {bins: n + 1 edges, values: n counts} in a width x height box: [{x, y, w, h,
 * count, from, to}], or [] when the shape is wrong. Counts that are not finite count as 0.
 */
export function histogramBars(histogram, width, height) {
  const edges = histogram && Array.isArray(histogram.bins) ? histogram.bins : [];
  const counts = histogram && Array.isArray(histogram.values) ? histogram.values : [];
  if (!counts.length || edges.length !== counts.length + 1) return [];
  const clean = counts.map((c) => (typeof c === "number" && Number.isFinite(c) && c > 0 ? c : 0));
  const top = Math.max(...clean) || 1;
  const w = width / counts.length;
  return clean.map((count, i) => {
    const barHeight = (count / top) * height;
    return { x: i * w, y: height - barHeight, w, h: barHeight, count, from: edges[i], to: edges[i + 1] };
  });
}

function histogramFigure(key, histogram) {
  const bars = histogramBars(histogram, HIST_WIDTH, HIST_HEIGHT);
  const svg = svgNode(document, "svg", {
    class: "histogram",
    viewBox: `0 0 ${HIST_WIDTH} ${HIST_HEIGHT}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `Histogram of ${key}`,
    "data-key": key,
    "data-bars": bars.length,
  });
  for (const bar of bars) {
    const rect = svgNode(document, "rect", { x: bar.x, y: bar.y, width: Math.max(bar.w - 1, 0.5), height: bar.h });
    const title = svgNode(document, "title");
    title.textContent = `${formatNumber(bar.from)} to ${formatNumber(bar.to)}: ${formatNumber(bar.count)}`;
    rect.append(title);
    svg.append(rect);
  }
  const edges = histogram.bins || [];
  const range = edges.length ? h("div", { class: "media-range muted" }, h("span", {}, formatNumber(edges[0])), h("span", {}, formatNumber(edges[edges.length - 1]))) : null;
  return h("figure", { class: "media-card", dataset: { key, media: "histogram" } }, h("figcaption", {}, key), svg, range);
}

/**
 * Renders the media of `summary` into slot; returns a function that revokes its blob URLs.
 * `previous` (the last call's return value, or null) lets a live page skip a render when no media
 * changed, and keep the images it has already fetched when some did.
 */
export function renderMedia(slot, summary, names, { signal, onError, previous = null } = {}) {
  const entries = mediaEntries(summary);
  const signature = JSON.stringify(entries);
  if (previous && previous.signature === signature) return previous; // a live page's tick: nothing new
  const urls = new Map(); // path -> blob URL
  const kept = previous ? previous.urls : new Map();
  slot.closest("section")?.toggleAttribute("hidden", entries.length === 0);
  const figures = entries.map(([key, ref]) => {
    if (ref._type === "histogram") return histogramFigure(key, ref);
    const caption = h("figcaption", {}, key, ref.caption ? h("span", { class: "muted" }, ` — ${ref.caption}`) : null);
    if (ref._type === "image-file") {
      const small = Number(ref.width) < 160 && Number(ref.height) < 160; // scaled up: keep pixels sharp
      const img = h("img", { alt: ref.caption || key, width: ref.width, height: ref.height, class: small ? "media-image small" : "media-image" });
      const known = kept.get(ref.path);
      if (known) {
        img.src = known;
        urls.set(ref.path, known);
      } else {
        fetchFile(runFilePath(names, ref.path), { signal })
          .then((blob) => {
            const url = URL.createObjectURL(blob);
            urls.set(ref.path, url);
            img.src = url;
          })
          .catch((error) => !(signal && signal.aborted) && onError && onError(error));
      }
      const size = h("div", { class: "muted" }, `${ref.width} × ${ref.height} ${ref.format || ""}`);
      return h("figure", { class: "media-card", dataset: { key, media: "image" } }, caption, img, size);
    }
    const body = h("div", { class: "muted" }, `${formatNumber(ref.nrows)} rows × ${formatNumber(ref.ncols)} columns`);
    const figure = h("figure", { class: "media-card wide", dataset: { key, media: "table" } }, caption, body);
    fetchFile(runFilePath(names, ref.path), { signal })
      .then((blob) => blob.text())
      .then((text) => figure.append(tablePreview(JSON.parse(text))))
      .catch((error) => !(signal && signal.aborted) && onError && onError(error));
    return figure;
  });
  fill(slot, h("div", { class: "media-grid" }, figures));
  // The previous call's images that this one no longer shows are let go now; the rest on revoke().
  for (const [path, url] of kept) if (urls.get(path) !== url) URL.revokeObjectURL(url);
  return { signature, urls, revoke: () => urls.forEach((url) => URL.revokeObjectURL(url)) };
}

function tablePreview(table) {
  const columns = Array.isArray(table.columns) ? table.columns : [];
  const rows = Array.isArray(table.data) ? table.data : [];
  const cell = (value) => (value === null || value === undefined ? "—" : typeof value === "number" ? formatNumber(value) : String(value));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "table media-table" },
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, String(name))))),
      h("tbody", {}, rows.slice(0, TABLE_ROWS).map((row) => h("tr", {}, (Array.isArray(row) ? row : []).map((value) => h("td", {}, cell(value)))))),
    ),
    rows.length > TABLE_ROWS ? h("div", { class: "muted" }, `first ${TABLE_ROWS} of ${formatNumber(rows.length)} rows`) : null,
  );
}
