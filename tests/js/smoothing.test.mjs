import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_WEIGHT, smoothEma, smoothSeries } from "../../nbtrack/web/ui/smoothing.js";

const close = (actual, expected, message) => {
  assert.equal(actual.length, expected.length, message);
  actual.forEach((v, i) => assert.ok(Number.isNaN(expected[i]) ? Number.isNaN(v) : Math.abs(v - expected[i]) < 1e-12, `${message}: [${i}] ${v} != ${expected[i]}`));
};

test("smoothEma is TensorBoard's debiased EMA: the first point is the first value, not pulled to 0", () => {
  // By hand, weight 0.6: ema = 0.4, 0.4*0.6 + 0.4*2 = 1.04, 1.04*0.6 + 0.4*3 = 1.824;
  // debias factors 1 - 0.6^n: 0.4, 0.64, 0.784.
  close(smoothEma([1, 2, 3], 0.6), [1, 1.04 / 0.64, 1.824 / 0.784], "weight 0.6");
  assert.equal(smoothEma([10, 0, 0], 0.9)[0], 10, "no pull towards 0 at the start");
  const drop = smoothEma([...Array(50).fill(10), 0, 0], 0.9);
  assert.ok(Math.abs(drop[49] - 10) < 1e-9 && drop[51] > 7.5, "a drop after a long plateau is followed slowly");
});

test("smoothEma: weight 0 is the raw series, a constant series stays exact, weights are clamped", () => {
  assert.deepEqual(smoothEma([3, -1, 7.5], 0), [3, -1, 7.5]);
  assert.deepEqual(smoothEma([0.1, 0.1, 0.1, 0.1], 0.95), [0.1, 0.1, 0.1, 0.1]);
  close(smoothEma([1, 2], 5), smoothEma([1, 2], MAX_WEIGHT), "above the largest weight");
  close(smoothEma([1, 2], -1), [1, 2], "below 0");
  assert.deepEqual(smoothEma([], 0.6), []);
});

test("smoothEma leaves non-finite values out of the average and marks them NaN", () => {
  const out = smoothEma([1, NaN, Infinity, 3, null], 0.5);
  // 1, then 3: ema 0.5, 0.5*0.5 + 0.5*3 = 1.75, debiased by 1 - 0.25 = 0.75.
  close(out, [1, NaN, NaN, 1.75 / 0.75, NaN], "gaps");
});

test("smoothSeries smooths a min/max band's midpoint, a plain series its values", () => {
  close(smoothSeries({ xs: [0, 1], lo: [0, 2], hi: [2, 6] }, 0), [1, 4], "midpoints");
  close(smoothSeries({ xs: [0, 1], lo: [5, 7], hi: null }, 0), [5, 7], "plain");
});

test("smoothing a 1000-point series keeps its length and stays within its range", () => {
  const values = Array.from({ length: 1000 }, (_, i) => Math.sin(i / 7) + (i % 13 === 0 ? 5 : 0));
  const out = smoothEma(values, 0.9);
  assert.equal(out.length, 1000);
  assert.ok(out.every((v) => v >= Math.min(...values) - 1e-9 && v <= Math.max(...values) + 1e-9));
  assert.ok(Math.max(...out) < Math.max(...values), "the spikes are smoothed (the raw layer keeps them)");
});
