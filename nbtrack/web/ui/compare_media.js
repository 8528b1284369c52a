// The compare page's media: for each image, histogram or table key some run logged, one row with a
// cell per run (in the runs' colours), so two images are looked at side by side rather than told
// apart by a word. Images start at the last step each run has (its summary's value); a slider over
// the steps any run logged the key at then shows every run at that step (a run without an image
// there shows its latest before it, and says which step that is). Histograms are drawn small, the
// newest of each run; tables show their size and their first rows. Files are fetched with the key (media.js fileCache).
import { formatNumber } from "../shared/chart.js";
import { HISTOGRAM_TYPE, IMAGE_TYPE, TABLE_TYPE } from "../shared/vocabulary.js";
import { fill, h } from "./dom.js";
import { mediaText } from "./format.js";
import { fileCache, histogramFigure, imageSteps, isMedia, tablePreview } from "./media.js";
import { naturalCompare } from "./model.js";

/** Keys whose value in some run's summary is media, in natural order, images first. */
export function comparedMediaKeys(summaries) {
  const kinds = new Map();
  for (const summary of summaries) {
    for (const [key, value] of Object.entries(summary || {})) {
      if (!key.startsWith("_") && isMedia(value) && !kinds.has(key)) kinds.set(key, value._type);
    }
  }
  const rank = (type) => (type === IMAGE_TYPE ? 0 : type === HISTOGRAM_TYPE ? 1 : 2);
  return [...kinds.keys()].sort((a, b) => rank(kinds.get(a)) - rank(kinds.get(b)) || naturalCompare(a, b));
}

/**
 * Each run's entry at `step`: the last of its [{step, ref}] (ascending) at or before step, or null.
 * With step null, each run's last entry.
 */
export function entriesAt(stepsPerRun, step) {
  return stepsPerRun.map((steps) => {
    if (!steps.length) return null;
    if (step === null) return steps[steps.length - 1];
    let found = null;
    for (const entry of steps) {
      if (entry.step > step) break;
      found = entry;
    }
    return found;
  });
}

/** The steps at which any run has an entry, ascending, each once. */
export function unionSteps(stepsPerRun) {
  return [...new Set(stepsPerRun.flatMap((steps) => steps.map((entry) => entry.step)))].sort((a, b) => a - b);
}

/**
 * Draws the media of `runs` (normalized runs: id, name, summary) into `slot` and hides `section`
 * when there is none. loadHistory(runId, keys) answers the rows holding the image keys (for the
 * step slider). Returns {signature, revoke()}: a live page's next call with the same media redraws nothing.
 */
export function renderCompareMedia(slot, section, runs, { names, loadHistory, onError, previous = null }) {
  const summaries = runs.map((run) => run.summary);
  const keys = comparedMediaKeys(summaries);
  const signature = JSON.stringify([runs.map((run) => run.id), keys.map((key) => summaries.map((s) => s[key] ?? null))]);
  if (previous && previous.signature === signature) return previous;
  if (previous) previous.revoke();
  section.hidden = keys.length === 0;
  const report = (error) => onError && onError(error);
  const caches = runs.map((run) => fileCache({ ...names, run: run.id }));
  const imageRows = new Map();
  const rows = keys.map((key) => {
    const values = summaries.map((summary) => (isMedia(summary[key]) ? summary[key] : null));
    const type = values.find(Boolean)._type;
    if (type === IMAGE_TYPE) {
      const row = imageRow(key, runs, values, caches, report);
      imageRows.set(key, row);
      return row.node;
    }
    const cells = runs.map((run, i) => {
      const value = values[i];
      let body;
      if (!value) body = h("p", { class: "muted" }, "not logged");
      else if (value._type === HISTOGRAM_TYPE) body = histogramFigure(key, value, { small: true });
      else body = h("p", { class: "muted" }, mediaText(value));
      const cell = runCell(run, i, body);
      if (value && value._type === TABLE_TYPE) {
        // The table itself, under its size: two runs' tables read side by side.
        caches[i]
          .text(value.path)
          .then((text) => cell.append(tablePreview(JSON.parse(text))))
          .catch(report);
      }
      return cell;
    });
    return mediaRow(key, type, cells);
  });
  fill(slot, rows);
  if (imageRows.size) {
    const imageKeys = [...imageRows.keys()];
    Promise.all(runs.map((run) => loadHistory(run.id, imageKeys)))
      .then((histories) => {
        const perRun = histories.map((rows) => imageSteps(rows, imageKeys));
        for (const [key, row] of imageRows) row.setSteps(perRun.map((found) => found.get(key)));
      })
      .catch(report);
  }
  return { signature, revoke: () => caches.forEach((cache) => cache.revoke()) };
}

function mediaRow(key, type, cells, ...extra) {
  return h(
    "section",
    { class: "compare-media", dataset: { key, media: type } },
    h("h3", { class: "compare-media-key" }, key),
    ...extra,
    h("div", { class: "compare-media-cells" }, cells),
  );
}

function runCell(run, index, ...body) {
  return h(
    "figure",
    { class: "media-card compare-media-cell", "data-series": index, dataset: { run: run.id } },
    h("figcaption", {}, h("span", { class: "swatch", "data-series": index, "aria-hidden": "true" }), run.name),
    ...body,
  );
}

/** One image key across the runs: a cell per run and, once the history is read, a step slider. */
function imageRow(key, runs, values, caches, report) {
  const shown = runs.map((run) => {
    const img = h("img", { class: "media-image compare-thumb", alt: `${key} of ${run.name}` });
    const foot = h("div", { class: "muted media-foot" });
    return { img, foot, request: 0 };
  });
  const cells = runs.map((run, i) => (values[i] ? runCell(run, i, shown[i].img, shown[i].foot) : runCell(run, i, h("p", { class: "muted" }, "not logged"))));
  const slider = h("input", { type: "range", class: "media-step", min: "0", max: "0", step: "1", hidden: true, "aria-label": `Step of ${key}` });
  const stepLabel = h("span", { class: "muted media-step-label" });
  let perRun = runs.map(() => []);
  let steps = [];

  function show(i, entry, step) {
    const target = shown[i];
    if (!values[i]) return;
    if (!entry) {
      target.img.hidden = true;
      target.foot.textContent = `no image by step ${formatNumber(step)}`;
      return;
    }
    const ref = entry.ref;
    target.img.hidden = false;
    target.img.width = Number(ref.width) || 0;
    target.img.height = Number(ref.height) || 0;
    target.img.classList.toggle("small", Number(ref.width) < 160 && Number(ref.height) < 160);
    const at = entry.step === undefined || entry.step === null ? "" : ` · step ${formatNumber(entry.step)}`;
    target.foot.textContent = `${ref.width} × ${ref.height}${at}${ref.caption ? ` — ${ref.caption}` : ""}`;
    const mine = ++target.request;
    caches[i].url(ref.path).then((url) => mine === target.request && (target.img.src = url), report);
  }

  function showStep(step) {
    entriesAt(perRun, step).forEach((entry, i) => show(i, entry, step));
    stepLabel.textContent = step === null ? "the last step of each run" : `step ${formatNumber(step)}`;
  }

  values.forEach((value, i) => value && show(i, { step: null, ref: value }, null));
  slider.addEventListener("input", () => showStep(steps[Number(slider.value)]));
  const controls = h("div", { class: "compare-media-steps" }, slider, stepLabel);
  return {
    node: mediaRow(key, IMAGE_TYPE, cells, controls),
    setSteps(found) {
      perRun = found.map((list) => list || []);
      steps = unionSteps(perRun);
      if (steps.length < 2) return;
      slider.max = String(steps.length - 1);
      slider.value = String(steps.length - 1);
      slider.hidden = false;
      stepLabel.textContent = "the last step of each run";
      // Each run's own last image stays until a step is chosen; the feet now name their steps.
      entriesAt(perRun, null).forEach((entry, i) => entry && show(i, entry, null));
    },
  };
}
