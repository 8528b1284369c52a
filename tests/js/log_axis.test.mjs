import assert from "node:assert/strict";
import { test } from "node:test";

import { formatLogTicks, logScale, logTicks, padLogDomain } from "../../nbtrack/web/shared/chart.js";

test("logTicks: powers of ten over several decades, written as a person reads them", () => {
  assert.deepEqual(logTicks(0.001, 1, 5), [0.001, 0.01, 0.1, 1]);
  assert.deepEqual(formatLogTicks(logTicks(0.001, 1, 5)), ["0.001", "0.01", "0.1", "1"]);
  assert.deepEqual(logTicks(0.0005, 2, 5), [0.001, 0.01, 0.1, 1], "the decades inside the range");
  assert.deepEqual(logTicks(1, 1000, 5), [1, 10, 100, 1000]);
  assert.deepEqual(formatLogTicks([1e-6, 1e-4, 1, 1e4, 1e6]), ["1e-6", "1e-4", "1", "10000", "1e+6"]);
});

test("logTicks thins many decades to about `count`, on every k-th power", () => {
  const ticks = logTicks(1e-10, 1e5, 4);
  assert.deepEqual(ticks, [1e-8, 1e-4, 1, 1e4]);
  assert.deepEqual(formatLogTicks(ticks), ["1e-8", "1e-4", "1", "10000"]);
});

test("logTicks under three decades uses 1, 2 and 5 times the powers, or linear ticks", () => {
  assert.deepEqual(logTicks(1, 10, 4), [1, 2, 5, 10]);
  assert.deepEqual(logTicks(0.01, 0.5, 4), [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]);
  assert.deepEqual(logTicks(0.3, 0.45, 4), [0.3, 0.35, 0.4, 0.45], "within one 1-2-5 step: niceTicks");
});

test("logTicks refuses a range that is not positive", () => {
  assert.deepEqual(logTicks(0, 1), []);
  assert.deepEqual(logTicks(-1, 10), []);
  assert.deepEqual(logTicks(NaN, 10), []);
});

test("logScale maps decades to equal distances and has no place for values <= 0", () => {
  const y = logScale([0.001, 1], [300, 0]);
  assert.equal(y(0.001), 300);
  assert.equal(y(1), 0);
  assert.ok(Math.abs(y(0.01) - 200) < 1e-9 && Math.abs(y(0.1) - 100) < 1e-9);
  assert.ok(Number.isNaN(y(0)) && Number.isNaN(y(-2)));
  assert.ok(Math.abs(y.invert(150) - Math.sqrt(0.001)) < 1e-12);
  assert.equal(logScale([5, 5], [0, 40])(5), 20, "a flat domain maps to the middle");
});

test("padLogDomain pads in log units; a flat domain is halved and doubled", () => {
  const [lo, hi] = padLogDomain([0.01, 100], 0.25);
  assert.ok(Math.abs(lo - 0.001) < 1e-12 && Math.abs(hi - 1000) < 1e-9);
  assert.deepEqual(padLogDomain([4, 4]), [2, 8]);
  assert.equal(padLogDomain(null), null);
});
