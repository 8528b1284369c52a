// The System section's and the compare page's media helpers (nbtrack/web/ui/system.js,
// compare_media.js): chart titles with units, series keyed by title, the query, and which image
// each run shows at a step. The drawing runs in a real browser (tests/test_ui_system_browser.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { comparedMediaKeys, entriesAt, unionSteps } from "../../nbtrack/web/ui/compare_media.js";
import { SYSTEM_X_AXES, systemLabel, systemQuery, systemSeries } from "../../nbtrack/web/ui/system.js";

test("systemLabel names what a key measures and its unit, for nbtrack's keys and W&B's", () => {
  assert.equal(systemLabel("system.cpu"), "CPU (%)");
  assert.equal(systemLabel("system.memory"), "Memory used (%)");
  assert.equal(systemLabel("system.memory_percent"), "Memory used (%)"); // W&B's spelling: the same chart
  assert.equal(systemLabel("system.disk.read_mb_s"), "Disk read (MB/s)");
  assert.equal(systemLabel("system.network.recv_mb_s"), "Network received (MB/s)");
  assert.equal(systemLabel("system.gpu.0.gpu"), "GPU 0 utilisation (%)");
  assert.equal(systemLabel("system.gpu.1.memory_mb"), "GPU 1 memory used (MB)");
  assert.equal(systemLabel("system.gpu.1.temp"), "GPU 1 temperature (°C)");
  assert.equal(systemLabel("system.cpu.3.cpu_percent"), "CPU core 3 (%)");
  assert.equal(systemLabel("system.disk./.usagePercent"), "Disk / used (%)");
  assert.equal(systemLabel("system.disk.vda.out"), "Disk vda write (MB, total)");
  assert.equal(systemLabel("system.something.new"), "something.new");
  assert.equal(systemLabel("toString"), "toString"); // no inherited property is taken for a label
  assert.deepEqual(SYSTEM_X_AXES.map(([field]) => field), ["_runtime", "_timestamp"]);
});

test("systemSeries keys a Run.systemChart answer by title, keeping keys whose titles clash apart", () => {
  const answer = JSON.stringify({
    x: "_runtime",
    series: {
      "system.cpu": [[0, 10, 10], [5, 20, 30]],
      "system.memory": [[0, 50, 50]],
      "system.memory_percent": [[0, 51, 51]],
    },
  });
  const series = systemSeries(answer);
  assert.deepEqual([...series.keys()], ["CPU (%)", "Memory used (%) [system.memory]", "Memory used (%) [system.memory_percent]"]);
  assert.deepEqual(series.get("CPU (%)"), { xs: [0, 5], lo: [10, 20], hi: [10, 30] });
});

test("systemQuery asks each run for its system chart under an alias, values as variables", () => {
  const query = systemQuery(2);
  assert.match(query, /\$r0: String!, \$r1: String!, \$x: String/);
  assert.match(query, /r1: run\(name: \$r1\) \{ eventsLineCount systemChart\(x: \$x, minX: \$minX, maxX: \$maxX\) \}/);
});

test("comparedMediaKeys lists the media keys of any run, images first", () => {
  const image = { _type: "image-file", path: "a.png" };
  const histogram = { _type: "histogram", bins: [0, 1], values: [1] };
  const keys = comparedMediaKeys([{ w: histogram, loss: 1 }, { samples: image, w: histogram, _private: image }, {}]);
  assert.deepEqual(keys, ["samples", "w"]);
});

test("entriesAt gives each run its entry at a step, or its latest before it", () => {
  const red = [{ step: 0, ref: "r0" }, { step: 4, ref: "r4" }];
  const green = [{ step: 2, ref: "g2" }];
  const none = [];
  assert.deepEqual(entriesAt([red, green, none], null).map((e) => e && e.ref), ["r4", "g2", null]);
  assert.deepEqual(entriesAt([red, green, none], 0).map((e) => e && e.ref), ["r0", null, null]);
  assert.deepEqual(entriesAt([red, green, none], 3).map((e) => e && e.ref), ["r0", "g2", null]);
  assert.deepEqual(unionSteps([red, green, none]), [0, 2, 4]);
});
