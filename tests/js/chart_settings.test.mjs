import assert from "node:assert/strict";
import { test } from "node:test";

import { defaultChartSettings, loadChartSettings, saveChartSettings, settingsKey } from "../../nbtrack/web/ui/chart_settings.js";

function memoryStorage() {
  const items = new Map();
  return { items, getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => items.set(k, String(v)) };
}

test("chart settings are kept per project and read back", () => {
  const storage = memoryStorage();
  assert.deepEqual(loadChartSettings("local", "mnist", storage), defaultChartSettings());
  assert.equal(storage.items.size, 0, "reading writes nothing");
  const settings = { hidden: new Set(["loss", "acc"]), smoothing: 0.6, yScale: "log" };
  assert.equal(saveChartSettings("local", "mnist", settings, storage), true);
  assert.deepEqual(loadChartSettings("local", "mnist", storage), settings);
  assert.deepEqual(loadChartSettings("local", "other", storage), defaultChartSettings(), "another project");
});

test("malformed or refused storage gives the defaults, never an error", () => {
  const storage = memoryStorage();
  storage.setItem(settingsKey("e", "p"), "{not json");
  assert.deepEqual(loadChartSettings("e", "p", storage), defaultChartSettings());
  storage.setItem(settingsKey("e", "p"), JSON.stringify({ hidden: ["a", 3], smoothing: 7, yScale: "cubic" }));
  assert.deepEqual(loadChartSettings("e", "p", storage), { hidden: new Set(["a"]), smoothing: 0, yScale: "linear" });
  const refusing = { getItem: () => { throw new Error("denied"); }, setItem: () => { throw new Error("denied"); } };
  assert.deepEqual(loadChartSettings("e", "p", refusing), defaultChartSettings());
  assert.equal(saveChartSettings("e", "p", defaultChartSettings(), refusing), false);
  assert.deepEqual(loadChartSettings("e", "p", undefined), defaultChartSettings(), "no storage at all");
});
