// The System section of the run and compare pages: one chart per system metric the runs sampled
// (CPU, memory, disk, network, GPUs; nbtrack's own keys and those W&B's client sends), each titled
// with what it measures and its unit, the runs overlaid (run i in colour i). The server downsamples
// the events lines (Run.systemChart, min/max groups like the history charts); the grid is charts.js's.
// Events lines have no step: the x axis is runtime or wall time, the section's own, with the same
// drag-to-zoom and double-click reset as the metric charts. The section stays hidden while no run
// has a system metric, and follows live runs every few seconds.
import { createChartGrid } from "./charts.js";
import { graphql } from "./api.js";
import { h } from "./dom.js";
import { parseJSON } from "./json.js";
import { startPolling } from "./live.js";
import { chartSeries } from "./model.js";
import { X_AXES } from "./routes.js";
import { errorBox } from "./widgets.js";

export const SYSTEM_X_AXES = X_AXES.filter(([field]) => field !== "_step");
const LIVE_MS = 5000; // system metrics are sampled every few seconds: no need to ask every second
// The grid's chart settings (charts.js): every chart shown, raw lines, a linear y axis. A project's
// chart settings are for its metrics; the machine's charts keep these.
const SETTINGS = Object.freeze({ hidden: new Set(), smoothing: 0, yScale: "linear" });

// What each key measures and its unit. nbtrack's sampler (nbtrack/internal/system_metrics.py)
// writes the first group; W&B's client the rest.
const LABELS = {
  "system.cpu": "CPU (%)",
  "system.memory": "Memory used (%)",
  "system.memory.available_mb": "Memory available (MB)",
  "system.proc.cpu": "Process CPU (%)",
  "system.proc.memory.rss_mb": "Process memory (MB)",
  "system.disk.read_mb_s": "Disk read (MB/s)",
  "system.disk.write_mb_s": "Disk write (MB/s)",
  "system.network.sent_mb_s": "Network sent (MB/s)",
  "system.network.recv_mb_s": "Network received (MB/s)",
  "system.memory_percent": "Memory used (%)",
  "system.proc.memory.rssMB": "Process memory (MB)",
  "system.proc.memory.percent": "Process memory (%)",
  "system.proc.memory.availableMB": "Memory available (MB)",
  "system.proc.cpu.threads": "Process threads",
  "system.disk.in": "Disk read (MB, total)",
  "system.disk.out": "Disk write (MB, total)",
  "system.network.sent": "Network sent (bytes, total)",
  "system.network.recv": "Network received (bytes, total)",
  "system.network.tcpRetransmits": "TCP retransmits",
};
const GPU_LABELS = {
  gpu: "utilisation (%)",
  memory: "memory (%)",
  memory_mb: "memory used (MB)",
  memoryAllocated: "memory allocated (%)",
  memoryAllocatedBytes: "memory allocated (bytes)",
  temp: "temperature (°C)",
  powerWatts: "power (W)",
  powerPercent: "power (% of limit)",
};

/** A system metric's chart title: what it measures and its unit ("CPU (%)", "GPU 0 memory used (MB)"). */
export function systemLabel(key) {
  if (Object.hasOwn(LABELS, key)) return LABELS[key];
  let found = /^system\.gpu\.(\d+)\.(\w+)$/.exec(key);
  if (found && Object.hasOwn(GPU_LABELS, found[2])) return `GPU ${found[1]} ${GPU_LABELS[found[2]]}`;
  found = /^system\.cpu\.(\d+)\.cpu_percent$/.exec(key);
  if (found) return `CPU core ${found[1]} (%)`;
  found = /^system\.disk\.(.+)\.(usagePercent|usageGB)$/.exec(key);
  if (found) return `Disk ${found[1]} used (${found[2] === "usageGB" ? "GB" : "%"})`;
  found = /^system\.disk\.(.+)\.(in|out)$/.exec(key);
  if (found) return `Disk ${found[1]} ${found[2] === "in" ? "read" : "write"} (MB, total)`;
  return key.replace(/^system\./, ""); // a key nbtrack does not know: as it is, unit unknown
}

/**
 * A Run.systemChart answer (text or parsed) as the grid's data: a Map title -> {xs, lo, hi}, titles
 * from systemLabel. Two keys of one run with the same title (a client sending both spellings) keep
 * their keys in the title, so neither hides the other.
 */
export function systemSeries(answer) {
  const byKey = chartSeries(answer);
  const counts = new Map();
  for (const key of byKey.keys()) counts.set(systemLabel(key), (counts.get(systemLabel(key)) || 0) + 1);
  const out = new Map();
  for (const [key, series] of byKey) {
    const label = systemLabel(key);
    out.set(counts.get(label) > 1 ? `${label} [${key}]` : label, series);
  }
  return out;
}

/** The query for `count` runs ($r0, $r1, ... aliased r0, r1, ...): each one's system chart. */
export function systemQuery(count) {
  const params = Array.from({ length: count }, (_, i) => `$r${i}: String!`).join(", ");
  const runs = Array.from({ length: count }, (_, i) => `r${i}: run(name: $r${i}) { eventsLineCount systemChart(x: $x, minX: $minX, maxX: $maxX) }`);
  return `query SystemCharts($entity: String, $project: String!, ${params}, $x: String, $minX: Float, $maxX: Float) {
  project(name: $project, entityName: $entity) {
    ${runs.join("\n    ")}
  }
}`;
}

/**
 * The System section of `entity`/`project`'s runs `ids` (series i is run i, named labels[i]).
 * x: the axis to start with (a page on wall time starts there; any other starts on runtime).
 * running() says whether some run may still sample (the section then refreshes every few seconds).
 * Returns {node, refresh(), follow(), destroy()}: the page places node, awaits refresh() once (it
 * may start before the page knows the run: running() is first asked by follow()), calls follow()
 * once the page is drawn, and destroy() when it goes.
 */
export function createSystemSection({ entity, project, ids, labels, x, running, signal, onError }) {
  const view = { x: x === "_timestamp" ? "_timestamp" : "_runtime", range: null };
  const toolbarSlot = h("div");
  const node = h("section", { class: "section system", "aria-labelledby": "system-title", hidden: true, dataset: { section: "system" } }, h("div", { class: "section-head" }, h("h2", { id: "system-title" }, "System"), toolbarSlot));
  const grid = createChartGrid(node, {
    labels,
    onZoom: (range) => {
      view.range = range;
      refresh();
    },
    onHide: () => {}, // hiding charts is the metric charts' menu; this section offers none (ui.css)
  });
  let latest = 0;
  let lineCounts = [];

  function renderToolbar() {
    const axes = h(
      "div",
      { class: "segmented", role: "group", "aria-label": "System x axis" },
      SYSTEM_X_AXES.map(([field, label]) =>
        h("button", { type: "button", "aria-pressed": String(field === view.x), dataset: { x: field }, on: { click: () => field !== view.x && setAxis(field) } }, label),
      ),
    );
    const reset = h("button", { type: "button", class: "button", disabled: view.range === null, on: { click: () => zoom(null) } }, "Reset zoom");
    toolbarSlot.replaceChildren(h("div", { class: "chart-toolbar" }, h("span", { class: "toolbar-label muted" }, "X axis"), axes, reset));
  }

  function setAxis(field) {
    view.x = field;
    view.range = null;
    refresh();
  }

  function zoom(range) {
    view.range = range;
    refresh();
  }

  async function fetchCharts() {
    const vars = { entity, project, x: view.x, minX: view.range ? view.range[0] : null, maxX: view.range ? view.range[1] : null };
    ids.forEach((id, i) => (vars[`r${i}`] = id));
    const data = await graphql(systemQuery(ids.length), vars, { signal });
    return ids.map((_id, i) => (data.project ? data.project[`r${i}`] : null));
  }

  /** Fetches the charts for the current view and draws them; an answer older than the latest is dropped. */
  async function refresh() {
    const request = ++latest;
    renderToolbar();
    try {
      const answers = await fetchCharts();
      if (signal.aborted || request !== latest) return;
      lineCounts = answers.map((raw) => (raw ? raw.eventsLineCount : 0));
      const charts = answers.map((raw) => (raw ? systemSeries(parseJSON(raw.systemChart)) : new Map()));
      node.hidden = !charts.some((chart) => [...chart.values()].some((s) => s.xs.length));
      grid.update(charts, { ...view }, SETTINGS);
      node.dataset.x = view.x; // what the charts drawn now are plotted against

    } catch (error) {
      if (signal.aborted) return;
      if (request === latest) toolbarSlot.append(errorBox(error));
      onError(error);
    }
  }

  /** The live check: new charts only when some run has new events lines. */
  async function tick() {
    const before = lineCounts.join(",");
    const vars = { entity, project };
    ids.forEach((id, i) => (vars[`r${i}`] = id));
    const fields = ids.map((_id, i) => `r${i}: run(name: $r${i}) { eventsLineCount }`).join(" ");
    const params = ids.map((_id, i) => `$r${i}: String!`).join(", ");
    const data = await graphql(`query SystemLines($entity: String, $project: String!, ${params}) { project(name: $project, entityName: $entity) { ${fields} } }`, vars, { signal });
    if (signal.aborted) return false;
    const now = ids.map((_id, i) => (data.project && data.project[`r${i}`] ? data.project[`r${i}`].eventsLineCount : 0)).join(",");
    if (now !== before) await refresh();
    return running();
  }

  let stopLive = null;
  return {
    node,
    refresh,
    /** Keeps the charts up to date while running() says so (from the first refresh's page on). */
    follow() {
      if (!stopLive && !signal.aborted && running()) stopLive = startPolling(tick, LIVE_MS);
    },
    destroy() {
      if (stopLive) stopLive();
      grid.destroy();
    },
  };
}
