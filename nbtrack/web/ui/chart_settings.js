// How a project's charts are shown, remembered across reloads in the browser's localStorage (one
// entry per project, shared by its run pages and comparisons, as W&B keeps a workspace): the
// charts hidden, the smoothing weight and the y scale. Pure but for the storage it is given, so
// node's tests cover it with a Map-backed one. Nothing is written until the user changes something.
import { MAX_WEIGHT } from "./smoothing.js";

const PREFIX = "nbtrack.charts:";
export const Y_SCALES = ["linear", "log"];

/** The defaults: every chart shown, no smoothing, a linear y axis. */
export function defaultChartSettings() {
  return { hidden: new Set(), smoothing: 0, yScale: "linear" };
}

/** The key a project's settings are kept under. */
export function settingsKey(entity, project) {
  return `${PREFIX}${JSON.stringify([entity, project])}`;
}

/**
 * The settings kept for a project, or the defaults for anything missing or malformed (an entry
 * written by another version, a storage the browser refuses: private windows may throw).
 */
export function loadChartSettings(entity, project, storage = globalThis.localStorage) {
  const settings = defaultChartSettings();
  let kept = null;
  try {
    const text = storage ? storage.getItem(settingsKey(entity, project)) : null;
    kept = text ? JSON.parse(text) : null;
  } catch {
    return settings;
  }
  if (kept === null || typeof kept !== "object") return settings;
  if (Array.isArray(kept.hidden)) settings.hidden = new Set(kept.hidden.filter((key) => typeof key === "string"));
  if (typeof kept.smoothing === "number" && kept.smoothing >= 0 && kept.smoothing <= MAX_WEIGHT) settings.smoothing = kept.smoothing;
  if (Y_SCALES.includes(kept.yScale)) settings.yScale = kept.yScale;
  return settings;
}

/** Keeps a project's settings; false when the storage refused (the page still uses them). */
export function saveChartSettings(entity, project, settings, storage = globalThis.localStorage) {
  const kept = { hidden: [...settings.hidden].sort(), smoothing: settings.smoothing, yScale: settings.yScale };
  try {
    storage.setItem(settingsKey(entity, project), JSON.stringify(kept));
    return true;
  } catch {
    return false;
  }
}
