import assert from "node:assert/strict";
import { test } from "node:test";

import {
  downsampleMinMax,
  extent,
  formatBytes,
  formatDuration,
  formatNumber,
  formatTicks,
  linearScale,
  niceTicks,
  seriesPath,
  tickStep,
} from "../chart.js";

test("linearScale maps the domain onto the range, reversed ranges included", () => {
  const y = linearScale([0, 10], [100, 0]);
  assert.equal(y(0), 100);
  assert.equal(y(10), 0);
  assert.equal(y(2.5), 75);
  assert.deepEqual(y.domain, [0, 10]);
  assert.equal(linearScale([3, 3], [0, 40])(3), 20, "a flat domain maps to the middle");
});

test("extent ignores NaN, infinities and non-numbers", () => {
  assert.deepEqual(extent([3, NaN, -1, Infinity, null, "9", 7]), [-1, 7]);
  assert.equal(extent([]), null);
  assert.equal(extent([NaN, null]), null);
});

test("ticks are round numbers inside the domain", () => {
  assert.equal(tickStep(0, 1, 5), 0.2);
  assert.equal(tickStep(0, 1000, 4), 200);
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.13, 0.97, 3), [0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(-3, 7, 2), [0, 5]);
  assert.deepEqual(niceTicks(0.1, 0.3, 2), [0.1, 0.2, 0.3], "no 0.30000000000000004");
  assert.deepEqual(niceTicks(5, 5), [5]);
  assert.deepEqual(niceTicks(NaN, 1), []);
  for (const tick of niceTicks(0.0123, 0.0456, 4)) assert.ok(tick >= 0.0123 && tick <= 0.0456);
});

test("tick labels share the step's decimals", () => {
  assert.deepEqual(formatTicks([0, 0.2, 0.4]), ["0.0", "0.2", "0.4"]);
  assert.deepEqual(formatTicks([0, 500, 1000]), ["0", "500", "1000"]);
  assert.deepEqual(formatTicks([0.0001, 0.0002]), ["1e-4", "2e-4"]);
  assert.deepEqual(formatTicks([]), []);
});

test("formatNumber: integers, 4 significant digits, exponents, non-finite", () => {
  assert.equal(formatNumber(1234), "1234");
  assert.equal(formatNumber(2.0), "2");
  assert.equal(formatNumber(0.123456), "0.1235");
  assert.equal(formatNumber(12.3456), "12.35");
  assert.equal(formatNumber(0.1), "0.1");
  assert.equal(formatNumber(-0.5), "-0.5");
  assert.equal(formatNumber(123456.7), "1.23e+5");
  assert.equal(formatNumber(0.00012345), "1.23e-4");
  assert.equal(formatNumber(100000.5), "1e+5");
  assert.equal(formatNumber(1e20), "1e+20");
  assert.equal(formatNumber(NaN), "nan");
  assert.equal(formatNumber(-Infinity), "-inf");
  assert.equal(formatNumber("text"), "text");
});

test("formatDuration and formatBytes", () => {
  assert.equal(formatDuration(12.34), "12.3 s");
  assert.equal(formatDuration(245), "4 min 05 s");
  assert.equal(formatDuration(7380), "2 h 03 min");
  assert.equal(formatDuration(-1), "");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(3400), "3.4 kB");
  assert.equal(formatBytes(12_345_678), "12 MB");
  assert.equal(formatBytes(1000), "1 kB");
});

function makeSeries(n, f) {
  const steps = Array.from({ length: n }, (_, i) => i);
  return { steps, values: steps.map(f) };
}

test("downsampleMinMax bounds the length and keeps first, last and the extremes", () => {
  const { steps, values } = makeSeries(100_000, (i) => Math.sin(i / 1000) + (i === 31_337 ? 50 : 0) - (i === 77_777 ? 60 : 0));
  for (const maxPoints of [2, 3, 10, 100, 101]) {
    const out = downsampleMinMax(steps, values, maxPoints);
    assert.ok(out.values.length <= maxPoints, `${out.values.length} > ${maxPoints}`);
    assert.equal(out.steps.length, out.values.length);
    assert.equal(out.steps[0], 0);
    assert.equal(out.steps.at(-1), 99_999);
    if (maxPoints >= 4) {
      assert.ok(out.steps.includes(31_337), "the maximum survives");
      assert.ok(out.steps.includes(77_777), "the minimum survives");
    }
    for (let i = 1; i < out.steps.length; i++) assert.ok(out.steps[i] > out.steps[i - 1], "steps stay in order");
  }
});

test("downsampleMinMax passes short series through and drops non-finite values", () => {
  assert.deepEqual(downsampleMinMax([1, 2, 3], [1, NaN, 3], 10), { steps: [1, 3], values: [1, 3] });
  assert.deepEqual(downsampleMinMax([1, 2], [5, 6], 1), { steps: [2], values: [6] });
  assert.deepEqual(downsampleMinMax([], [], 10), { steps: [], values: [] });
  const out = downsampleMinMax([0, 1, 2, 3, 4, 5, 6], [0, 9, 1, 1, 1, -9, 2], 4);
  assert.deepEqual(out, { steps: [0, 1, 5, 6], values: [0, 9, -9, 2] });
});

test("seriesPath draws through scaled points and breaks at gaps", () => {
  const x = linearScale([0, 2], [0, 100]);
  const y = linearScale([0, 1], [40, 0]);
  assert.equal(seriesPath([0, 1, 2], [0, 0.5, 1], x, y), "M0,40L50,20L100,0");
  assert.equal(seriesPath([0, 1, 2], [0, NaN, 1], x, y), "M0,40M100,0");
  assert.equal(seriesPath([0, 1], [1 / 3, 2 / 3], x, y), "M0,26.7L50,13.3");
  assert.equal(seriesPath([], [], x, y), "");
});
