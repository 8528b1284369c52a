// The live run panel (anywidget front-end).
//
// Shipped as one module: nbtrack/extension/esm.py inlines ../shared/ (vocabulary.js, chart.js,
// chart_svg.js) in place of the imports below (anywidget loads the module from a blob URL, where
// "../shared/chart.js" cannot resolve). Node's test runner imports this file directly, where the
// imports resolve normally.
// Keep top-level names distinct from those modules', and touch the DOM only inside render().
// The sparklines are drawn by chart_svg.js, the same code that draws the web UI's charts.
//
// Synced traits (see panel.py): header, state, step, rows, runtime, metrics, metrics_omitted, series,
// series_omitted, pending, notices, media, details, alerts, artifacts, artifacts_omitted. Every user string is written with textContent, never HTML;
// the one image is an inline PNG data: URL (panel_limits.py checks its shape) set as an <img> src.
import { extent, formatBytes, formatDuration, formatNumber } from "../shared/chart.js";
import { LIVE_STATES } from "../shared/vocabulary.js";
import { drawLineChart, svgNode, syncCards } from "../shared/chart_svg.js";
import { themeCss } from "./theme.js";

const PANEL_CLASS = "nbtrack-run-panel";
const TRAITS = [
  "header",
  "state",
  "step",
  "rows",
  "runtime",
  "metrics",
  "metrics_omitted",
  "series",
  "series_omitted",
  "pending",
  "notices",
  "media",
  "details",
  "alerts",
  "artifacts",
  "artifacts_omitted",
];
const MEDIA_WIDTH = 160;
const MEDIA_HEIGHT = 64;
const KNOWN_STATES = new Set(LIVE_STATES);
const CHART_WIDTH = 200;
const CHART_HEIGHT = 44;

// The theme (colours, font, frame) is theme.js's; everything is scoped under .nbtrack-run-panel.
const PANEL_CSS = `${themeCss(PANEL_CLASS)}
.${PANEL_CLASS} .nbt-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 10px; }
.${PANEL_CLASS} .nbt-name { font-weight: 600; font-size: 1.1em; overflow-wrap: anywhere; }
.${PANEL_CLASS} .nbt-id, .${PANEL_CLASS} .nbt-value, .${PANEL_CLASS} .nbt-step, .${PANEL_CLASS} .nbt-runtime {
  font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, monospace);
}
.${PANEL_CLASS} .nbt-id, .${PANEL_CLASS} .nbt-project, .${PANEL_CLASS} .nbt-muted { color: var(--nbt-muted); }
.${PANEL_CLASS} .nbt-link { color: var(--nbt-accent); text-decoration: none; margin-left: auto; }
.${PANEL_CLASS} .nbt-link:hover { text-decoration: underline; }
.${PANEL_CLASS} .nbt-details { font-size: 0.92em; margin: -4px 0 8px; }
.${PANEL_CLASS} .nbt-status { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 12px; margin: 6px 0 8px; }
.${PANEL_CLASS} .nbt-badge {
  --nbt-state: var(--nbt-neutral);
  display: inline-flex; align-items: center; gap: 5px;
  padding: 0 8px; border-radius: 10px; line-height: 18px;
  border: 1px solid var(--nbt-state); color: var(--nbt-state);
  background: transparent;
  background: color-mix(in srgb, var(--nbt-state) 12%, transparent);
  font-weight: 600;
}
.${PANEL_CLASS} .nbt-badge::before {
  content: ""; width: 7px; height: 7px; border-radius: 50%; background: var(--nbt-state);
}
.${PANEL_CLASS} .nbt-badge[data-state="running"] { --nbt-state: var(--nbt-accent); }
.${PANEL_CLASS} .nbt-badge[data-state="finishing"] { --nbt-state: var(--nbt-warn); }
.${PANEL_CLASS} .nbt-badge[data-state="offline"] { --nbt-state: var(--nbt-warn); }
.${PANEL_CLASS} .nbt-badge[data-state="retrying"] { --nbt-state: var(--nbt-warn); }
.${PANEL_CLASS} .nbt-badge[data-state="finished"] { --nbt-state: var(--nbt-ok); }
.${PANEL_CLASS} .nbt-badge[data-state="failed"] { --nbt-state: var(--nbt-err); }
.${PANEL_CLASS} .nbt-badge[data-state="crashed"] { --nbt-state: var(--nbt-err); }
.${PANEL_CLASS} .nbt-badge[data-state="running"]::before { animation: nbt-pulse 1.6s ease-in-out infinite; }
@keyframes nbt-pulse { 50% { opacity: 0.3; } }
@media (prefers-reduced-motion: reduce) {
  .${PANEL_CLASS} .nbt-badge::before { animation: none !important; }
}
.${PANEL_CLASS} .nbt-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 6px; }
.${PANEL_CLASS} .nbt-card {
  background: var(--nbt-card); border: 1px solid var(--nbt-border); border-radius: 5px;
  padding: 4px 7px; min-width: 0;
}
.${PANEL_CLASS} .nbt-key {
  color: var(--nbt-muted); font-size: 0.92em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.${PANEL_CLASS} .nbt-value { font-size: 1.15em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.${PANEL_CLASS} .nbt-chart { display: block; width: 100%; height: ${CHART_HEIGHT}px; margin-top: 2px; }
.${PANEL_CLASS} .nbt-chart .nbt-line {
  fill: none; stroke: var(--nbt-accent); stroke-width: 1.5; vector-effect: non-scaling-stroke;
  stroke-linejoin: round;
}
.${PANEL_CLASS} .nbt-chart .nbt-area { fill: var(--nbt-accent); opacity: 0.1; stroke: none; }
.${PANEL_CLASS} .nbt-chart .nbt-gridline { stroke: var(--nbt-grid); stroke-width: 1; vector-effect: non-scaling-stroke; }
.${PANEL_CLASS} .nbt-range { font-size: 0.85em; color: var(--nbt-muted); display: flex; justify-content: space-between; gap: 6px; }
.${PANEL_CLASS} .nbt-foot { margin-top: 6px; display: flex; flex-direction: column; gap: 2px; }
.${PANEL_CLASS} .nbt-notice { color: var(--nbt-warn); overflow-wrap: anywhere; }
.${PANEL_CLASS} .nbt-alert { --nbt-level: var(--nbt-accent); border-left: 3px solid var(--nbt-level); padding-left: 6px; margin-top: 4px; overflow-wrap: anywhere; }
.${PANEL_CLASS} .nbt-alert[data-level="WARN"] { --nbt-level: var(--nbt-warn); }
.${PANEL_CLASS} .nbt-alert[data-level="ERROR"] { --nbt-level: var(--nbt-err); }
.${PANEL_CLASS} .nbt-alert-level { color: var(--nbt-level); font-weight: 600; margin-right: 6px; }
.${PANEL_CLASS} .nbt-media { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; }
.${PANEL_CLASS} .nbt-media img { display: block; height: ${MEDIA_HEIGHT}px; width: auto; image-rendering: pixelated; }
.${PANEL_CLASS} .nbt-hist { display: block; width: ${MEDIA_WIDTH}px; height: ${MEDIA_HEIGHT}px; }
.${PANEL_CLASS} .nbt-hist rect { fill: var(--nbt-accent); opacity: 0.8; }
`;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One alert of the run (run.alert()): its level, title and text, each as text. */
function alertLine(alert) {
  const line = element("div", "nbt-alert");
  line.dataset.level = String(alert.level || "INFO");
  line.append(element("span", "nbt-alert-level", line.dataset.level), element("span", "nbt-alert-title", String(alert.title || "")));
  if (alert.text) line.append(element("span", "nbt-muted", ` — ${alert.text}`));
  return line;
}

/** One artifact the run logged or used, in the words of snapshot.py's artifact_words. */
export function artifactWords(artifact) {
  const name = artifact.version ? `${artifact.name}:${artifact.version}` : `${artifact.name} (not stored yet)`;
  const files = `${artifact.files} file${artifact.files === 1 ? "" : "s"}`;
  return `${artifact.role} ${artifact.type} ${name} · ${files}, ${formatBytes(artifact.bytes)}`;
}

function valueLabel(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

function isWebLink(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url);
}

function createCard(key) {
  const card = element("div", "nbt-card");
  const keyLabel = element("div", "nbt-key", key);
  keyLabel.title = key;
  const value = element("div", "nbt-value");
  const svg = svgNode(document, "svg", {
    class: "nbt-chart",
    viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
  const range = element("div", "nbt-range");
  const low = element("span");
  const high = element("span");
  range.append(low, high);
  card.append(keyLabel, value, svg, range);
  return { node: card, value, svg, range, low, high };
}

function isImageSource(src) {
  return typeof src === "string" && /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/]*={0,2}$/.test(src);
}

function drawMedia(parts, media) {
  const image = media && media.image && isImageSource(media.image.src) ? media.image : null;
  parts.imageCard.hidden = !image;
  if (image) {
    if (parts.img.getAttribute("src") !== image.src) parts.img.src = image.src;
    parts.img.alt = image.key || "image";
    parts.imageKey.textContent = image.caption ? `${image.key} — ${image.caption}` : image.key || "";
    parts.imageKey.title = parts.imageKey.textContent;
  }
  const hist = media && media.histogram;
  const counts = hist && Array.isArray(hist.values) ? hist.values.map((c) => (Number.isFinite(c) && c > 0 ? c : 0)) : [];
  parts.histCard.hidden = counts.length === 0;
  if (!counts.length) return;
  const top = Math.max(...counts) || 1;
  const width = MEDIA_WIDTH / counts.length;
  parts.histSvg.replaceChildren(
    ...counts.map((count, i) =>
      svgNode(document, "rect", { x: i * width, y: MEDIA_HEIGHT - (count / top) * MEDIA_HEIGHT, width: Math.max(width - 1, 0.5), height: (count / top) * MEDIA_HEIGHT }),
    ),
  );
  parts.histKey.textContent = hist.key || "";
  parts.histKey.title = hist.key || "";
}

function drawChart(parts, points) {
  const steps = points && Array.isArray(points.steps) ? points.steps : [];
  const values = points && Array.isArray(points.values) ? points.values : [];
  const yExtent = extent(values);
  const xExtent = extent(steps);
  const visible = values.length >= 2 && yExtent !== null && xExtent !== null;
  parts.svg.toggleAttribute("hidden", !visible);
  parts.range.hidden = !visible;
  if (!visible) return;
  drawLineChart(parts.svg, [{ xs: steps, lo: values }], {
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    margin: { top: 3, bottom: 3 },
    yGrid: 3,
    area: true,
  });
  parts.low.textContent = `min ${formatNumber(yExtent[0])}`;
  parts.high.textContent = `max ${formatNumber(yExtent[1])}`;
}

/**
 * The step as the web UI's run page means it, the last step logged, then the rows logged:
 * "step 599 · 600 rows" after steps 0-599, "no rows yet" before the first (step -1).
 * The same words as the static snapshot's (nbtrack/extension/snapshot.py step_words).
 */
export function stepText(step, rows) {
  if (typeof step !== "number" || step < 0) return "no rows yet";
  const count = Number(rows) || 0;
  if (count <= 0) return `step ${step}`;
  return `step ${step} · ${count} row${count === 1 ? "" : "s"}`;
}

export default {
  render({ model, el }) {
    const style = element("style", undefined, PANEL_CSS);
    const root = element("div", PANEL_CLASS);

    const head = element("div", "nbt-head");
    const name = element("span", "nbt-name");
    const runId = element("span", "nbt-id");
    const project = element("span", "nbt-project");
    const link = element("a", "nbt-link", "open run ↗");
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    head.append(name, runId, project, link);

    const status = element("div", "nbt-status");
    const badge = element("span", "nbt-badge");
    const step = element("span", "nbt-step");
    const runtime = element("span", "nbt-runtime nbt-muted");
    status.append(badge, step, runtime);
    const details = element("div", "nbt-details nbt-muted");

    const grid = element("div", "nbt-grid");
    const foot = element("div", "nbt-foot");
    const pending = element("div", "nbt-muted");
    const omitted = element("div", "nbt-muted");
    const notices = element("div");
    const alerts = element("div", "nbt-alerts");
    const artifacts = element("div", "nbt-artifacts");
    foot.append(pending, omitted, notices, alerts, artifacts);

    const mediaRow = element("div", "nbt-media");
    const mediaParts = { imageCard: element("div", "nbt-card"), img: element("img"), imageKey: element("div", "nbt-key"), histCard: element("div", "nbt-card"), histKey: element("div", "nbt-key") };
    mediaParts.histSvg = svgNode(document, "svg", { class: "nbt-hist", viewBox: `0 0 ${MEDIA_WIDTH} ${MEDIA_HEIGHT}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    mediaParts.imageCard.append(mediaParts.imageKey, mediaParts.img);
    mediaParts.histCard.append(mediaParts.histKey, mediaParts.histSvg);
    mediaRow.append(mediaParts.imageCard, mediaParts.histCard);

    root.append(head, status, details, grid, mediaRow, foot);
    el.append(style, root);

    const cards = new Map();
    let frame = 0; // a pending animation frame, 0 when none

    function draw() {
      frame = 0;
      const header = model.get("header") || {};
      name.textContent = header.name || "";
      // The id beside the name, unless the name is the id (shown once, then).
      runId.textContent = header.id && header.id !== header.name ? header.id : "";
      project.textContent = header.entity ? `${header.entity}/${header.project || ""}` : header.project || "";
      if (isWebLink(header.url)) {
        link.href = header.url;
        link.hidden = false;
      } else {
        link.removeAttribute("href");
        link.hidden = true;
      }

      const state = String(model.get("state") || "starting");
      badge.textContent = state;
      badge.dataset.state = KNOWN_STATES.has(state) ? state : "other";
      step.textContent = stepText(model.get("step"), model.get("rows"));
      runtime.textContent = formatDuration(model.get("runtime"));

      const metrics = model.get("metrics") || {};
      const series = model.get("series") || {};
      const keys = [...Object.keys(metrics), ...Object.keys(series).filter((k) => !(k in metrics))];
      syncCards(grid, cards, keys, createCard).forEach((parts, index) => {
        parts.value.textContent = keys[index] in metrics ? valueLabel(metrics[keys[index]]) : "";
        drawChart(parts, series[keys[index]]);
      });

      const waiting = model.get("pending") || {};
      const rows = Number(waiting.rows) || 0;
      const bytes = Number(waiting.bytes) || 0;
      pending.hidden = !((state === "finishing" || state === "retrying") && (rows || bytes));
      pending.textContent = `uploading: ${rows} rows${bytes ? `, ${formatBytes(bytes)}` : ""} pending`;

      const moreMetrics = model.get("metrics_omitted") || 0;
      const moreSeries = model.get("series_omitted") || 0;
      const more = [];
      if (moreMetrics) more.push(`${moreMetrics} more metrics not shown`);
      if (moreSeries) more.push(`${moreSeries} more charts not shown`);
      omitted.hidden = more.length === 0;
      omitted.textContent = more.join(" · ");

      drawMedia(mediaParts, model.get("media"));
      mediaRow.hidden = mediaParts.imageCard.hidden && mediaParts.histCard.hidden;

      notices.replaceChildren(...(model.get("notices") || []).map((text) => element("div", "nbt-notice", `⚠ ${text}`)));
      alerts.replaceChildren(...(model.get("alerts") || []).map(alertLine));
      const artifactLines = (model.get("artifacts") || []).map((a) => element("div", "nbt-artifact", artifactWords(a)));
      const moreArtifacts = model.get("artifacts_omitted") || 0;
      if (moreArtifacts) artifactLines.push(element("div", "nbt-muted", `+${moreArtifacts} more artifacts`));
      artifacts.replaceChildren(...artifactLines);
      const detailLines = model.get("details") || [];
      details.hidden = detailLines.length === 0;
      details.replaceChildren(...detailLines.map((text) => element("div", undefined, String(text))));
    }

    // One comm message fires several change events: draw once per animation frame.
    const requestFrame = globalThis.requestAnimationFrame
      ? (fn) => globalThis.requestAnimationFrame(fn)
      : (fn) => setTimeout(fn, 16);
    const cancelFrame = globalThis.cancelAnimationFrame
      ? (id) => globalThis.cancelAnimationFrame(id)
      : (id) => clearTimeout(id);
    const schedule = () => {
      if (!frame) frame = requestFrame(draw);
    };
    for (const trait of TRAITS) model.on(`change:${trait}`, schedule);
    draw();

    return () => {
      for (const trait of TRAITS) model.off(`change:${trait}`, schedule);
      if (frame) cancelFrame(frame);
      frame = 0;
      root.remove();
      style.remove();
    };
  },
};
