// Logged media on a run page: the newest image, histogram and table of each key (from the run's
// summary, which keeps each key's last value: a reference such as {"_type": "image-file", "path"}).
//
// Images and tables are run files. They are fetched with the API key (api.js fetchFile) and an
// image is shown from a blob: URL (the CSP's img-src allows 'self' data: blob:), so a server with
// keys shows them too; the blob URLs are revoked when the page goes. An image logged at several
// steps gets a slider over them (at most MEDIA_STEPS, from Run.history(keys:, samples:)).
// Histograms are inline: bars drawn as SVG rects. Everything else is text.
import { formatNumber } from "../shared/chart.js";
import { svgNode } from "../shared/chart_svg.js";
import { HISTOGRAM_TYPE, IMAGE_TYPE, TABLE_TYPE } from "../shared/vocabulary.js";
import { fetchFile } from "./api.js";
import { fill, h } from "./dom.js";
import { naturalCompare } from "./model.js";

const MEDIA_TYPES = new Set([IMAGE_TYPE, HISTOGRAM_TYPE, TABLE_TYPE]);
const TABLE_ROWS = 20; // rows of a table shown on the page
export const MEDIA_STEPS = 500; // steps an image's slider offers at most
const HIST_WIDTH = 320;
const HIST_HEIGHT = 120;

/** True for a media reference as log() stores it. */
export function isMedia(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && MEDIA_TYPES.has(value._type);
}

/** [key, reference] of each media value of a summary, images first, then histograms, then tables. */
export function mediaEntries(summary) {
  const order = { [IMAGE_TYPE]: 0, [HISTOGRAM_TYPE]: 1, [TABLE_TYPE]: 2 };
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

/** A histogram's figure: its bars and range; `small` draws it in a compare page's cell. */
export function histogramFigure(key, histogram, { small = false } = {}) {
  const bars = histogramBars(histogram, HIST_WIDTH, HIST_HEIGHT);
  const svg = svgNode(document, "svg", {
    class: small ? "histogram small" : "histogram",
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
  if (small) return h("div", { class: "histogram-small", dataset: { key, media: "histogram" } }, svg, range);
  return h("figure", { class: "media-card", dataset: { key, media: "histogram" } }, h("figcaption", {}, key), svg, range);
}

const CACHE_LIMIT = 100; // blob URLs kept; the oldest are let go (an <img> that shows one keeps it)

/** Fetches run files once each and hands out blob: URLs for them. */
export function fileCache(names, { signal } = {}) {
  const urls = new Map(); // path -> Promise of a blob URL
  return {
    url(path) {
      let url = urls.get(path);
      if (!url) {
        url = fetchFile(runFilePath(names, path), { signal }).then((blob) => URL.createObjectURL(blob));
        url.catch(() => urls.delete(path)); // a failed fetch is tried again next time
        urls.set(path, url);
        for (const [old, oldUrl] of urls) {
          if (urls.size <= CACHE_LIMIT) break;
          urls.delete(old);
          oldUrl.then((u) => URL.revokeObjectURL(u), () => {});
        }
      }
      return url;
    },
    /** A file's text, fetched each time (a blob: URL is no use to fetch: connect-src is 'self'). */
    text(path) {
      return fetchFile(runFilePath(names, path), { signal }).then((blob) => blob.text());
    },
    revoke() {
      for (const url of urls.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
      urls.clear();
    },
  };
}

/** An image's figure; figure.setSteps([{step, ref}]) adds a slider over the image's earlier steps. */
function imageFigure(key, ref, cache, report) {
  const captionText = h("span", { class: "muted" });
  const img = h("img", { class: "media-image" });
  const size = h("div", { class: "muted" });
  const stepLabel = h("span", { class: "muted media-step-label" });
  const slider = h("input", { type: "range", class: "media-step", min: "0", max: "0", step: "1", hidden: true, "aria-label": `Step of ${key}` });
  let request = 0;
  let steps = [];
  function show(shown, step) {
    captionText.textContent = shown.caption ? ` — ${shown.caption}` : "";
    size.textContent = `${shown.width} × ${shown.height} ${shown.format || ""}`;
    img.alt = shown.caption || key;
    img.width = Number(shown.width) || 0;
    img.height = Number(shown.height) || 0;
    img.classList.toggle("small", Number(shown.width) < 160 && Number(shown.height) < 160); // scaled up: sharp pixels
    stepLabel.textContent = step === undefined || step === null ? "" : `step ${formatNumber(step)}`;
    const mine = ++request;
    cache.url(shown.path).then((url) => mine === request && (img.src = url), report);
  }
  slider.addEventListener("input", () => {
    const chosen = steps[Number(slider.value)];
    if (chosen) show(chosen.ref, chosen.step);
  });
  show(ref);
  const figure = h("figure", { class: "media-card", dataset: { key, media: "image" } }, h("figcaption", {}, key, captionText), img, h("div", { class: "media-foot" }, size, stepLabel), slider);
  figure.setSteps = (found) => {
    steps = found;
    if (steps.length < 2) return;
    slider.max = String(steps.length - 1);
    slider.value = String(steps.length - 1);
    slider.hidden = false;
    stepLabel.textContent = `step ${formatNumber(steps[steps.length - 1].step)}`;
  };
  return figure;
}

/**
 * The [{step, ref}] of each image key in history rows (a Run.history(keys:) answer), by key.
 */
export function imageSteps(rows, keys) {
  const found = new Map(keys.map((key) => [key, []]));
  for (const row of Array.isArray(rows) ? rows : []) {
    for (const key of keys) {
      const ref = row && row[key];
      if (isMedia(ref) && ref._type === IMAGE_TYPE) found.get(key).push({ step: row._step, ref });
    }
  }
  return found;
}

/**
 * Renders the media of `summary` into slot. `previous` (the last call's return value, or null)
 * lets a live page skip a render when no media changed. `cache` is a fileCache; `loadHistory(keys)`
 * (optional) answers the rows holding the image keys, for a slider over each image's steps.
 */
export function renderMedia(slot, summary, { cache, loadHistory, onError, previous = null } = {}) {
  const entries = mediaEntries(summary);
  const signature = JSON.stringify(entries);
  if (previous && previous.signature === signature) return previous; // a live page's tick: nothing new
  const report = (error) => onError && onError(error);
  slot.closest("section")?.toggleAttribute("hidden", entries.length === 0);
  const images = new Map();
  const figures = entries.map(([key, ref]) => {
    if (ref._type === HISTOGRAM_TYPE) return histogramFigure(key, ref);
    if (ref._type === IMAGE_TYPE) {
      const figure = imageFigure(key, ref, cache, report);
      images.set(key, figure);
      return figure;
    }
    const caption = h("figcaption", {}, key);
    const body = h("div", { class: "muted" }, `${formatNumber(ref.nrows)} rows × ${formatNumber(ref.ncols)} columns`);
    const figure = h("figure", { class: "media-card wide", dataset: { key, media: "table" } }, caption, body);
    cache
      .text(ref.path)
      .then((text) => figure.append(tablePreview(JSON.parse(text))))
      .catch(report);
    return figure;
  });
  fill(slot, h("div", { class: "media-grid" }, figures));
  if (loadHistory && images.size) {
    loadHistory([...images.keys()])
      .then((rows) => {
        for (const [key, steps] of imageSteps(rows, [...images.keys()])) images.get(key).setSteps(steps);
      })
      .catch(report);
  }
  return { signature };
}

/** A logged table's first TABLE_ROWS rows (a note says how many more there are). */
export function tablePreview(table) {
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
