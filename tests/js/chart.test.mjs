import assert from "node:assert/strict";
import { test } from "node:test";

import {
  downsampleMinMax,
  extent,
  formatBytes,
  formatClock,
  formatDateTime,
  formatDuration,
  formatElapsed,
  formatNumber,
  formatTicks,
  linearScale,
  nearestIndex,
  niceTicks,
  padDomain,
  rangePath,
  seriesExtent,
  seriesPath,
  tickStep,
  timeTicks,
  zoomDomain,
} from "../../nbtrack/web/shared/chart.js";

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

// -- what the web UI adds ---------------------------------------------------------------------------

test("linearScale.invert maps pixels back to data", () => {
  const x = linearScale([100, 200], [40, 440]);
  assert.equal(x.invert(40), 100);
  assert.equal(x.invert(240), 150);
  assert.equal(x.invert(x(173)), 173);
  assert.equal(linearScale([5, 9], [10, 10]).invert(10), 5, "a flat range maps back to the domain's start");
});

test("nearestIndex finds the nearest x by binary search, the earlier one on a tie", () => {
  const xs = [0, 10, 20, 30];
  assert.equal(nearestIndex(xs, 14), 1);
  assert.equal(nearestIndex(xs, 16), 2);
  assert.equal(nearestIndex(xs, 15), 1, "a tie goes to the earlier point");
  assert.equal(nearestIndex(xs, -100), 0);
  assert.equal(nearestIndex(xs, 1e9), 3);
  assert.equal(nearestIndex(xs, 20), 2);
  assert.equal(nearestIndex([], 3), -1);
  assert.equal(nearestIndex(xs, NaN), -1);
  assert.equal(nearestIndex([7], 1000), 0);
  const big = Array.from({ length: 100_001 }, (_, i) => i * 2);
  assert.equal(nearestIndex(big, 12_345.2), 6173, "12346 is nearer than 12344");
  assert.equal(nearestIndex([1, 1, 1, 5], 4), 3, "repeated x values");
});

test("zoomDomain turns a drag into an ordered data range, clamped to the plot; a click is null", () => {
  const x = linearScale([0, 1000], [50, 550]);
  assert.deepEqual(zoomDomain(x, 100, 300), [100, 500]);
  assert.deepEqual(zoomDomain(x, 300, 100), [100, 500], "dragging leftwards");
  assert.deepEqual(zoomDomain(x, 500, 9999), [900, 1000], "a drag that leaves the plot stops at its edge");
  assert.deepEqual(zoomDomain(x, -20, 60), [0, 20]);
  assert.equal(zoomDomain(x, 200, 202), null, "narrower than minPixels is a click");
  assert.deepEqual(zoomDomain(x, 200, 202, 1), [300, 304]);
  assert.equal(zoomDomain(x, 600, 700), null, "entirely outside the plot");
  assert.equal(zoomDomain(x, NaN, 300), null);
});

test("seriesExtent spans several series, min/max bands and gaps", () => {
  const series = [
    { xs: [0, 1, 2], lo: [1, NaN, 3], hi: null },
    { xs: [5, 6], lo: [-2, 0], hi: [4, 10] },
    { xs: [], lo: [] },
  ];
  assert.deepEqual(seriesExtent(series), { x: [0, 6], y: [-2, 10] });
  assert.deepEqual(seriesExtent([]), { x: null, y: null });
  assert.deepEqual(seriesExtent([{ xs: [1], lo: [Infinity] }]), { x: [1, 1], y: null });
});

test("padDomain adds room around a span, and some around a flat domain", () => {
  assert.deepEqual(padDomain([0, 10]), [-0.5, 10.5]);
  assert.deepEqual(padDomain([0, 10], 0), [0, 10]);
  assert.deepEqual(padDomain([5, 5]), [4.5, 5.5]);
  assert.deepEqual(padDomain([0, 0]), [-1, 1]);
  assert.equal(padDomain(null), null);
});

test("rangePath draws bands as vertical strokes entered from the nearer end, and breaks at gaps", () => {
  const x = linearScale([0, 2], [0, 100]);
  const y = linearScale([0, 10], [100, 0]);
  assert.equal(rangePath([0, 1, 2], [0, 5, 10], null, x, y), "M0,100L50,50L100,0", "no bands: a plain line");
  // The band at x=1 spans 2..8; coming from 9 it is entered at 8, then goes down to 2.
  assert.equal(rangePath([0, 1, 2], [9, 2, 3], [9, 8, 3], x, y), "M0,10L50,20L50,80L100,70");
  assert.equal(rangePath([0, 1, 2], [1, NaN, 3], null, x, y), "M0,90M100,70");
  assert.equal(rangePath([0, 1], [1, 2], [1, Infinity], x, y), "M0,90", "a non-finite max is a gap too");
  assert.equal(rangePath([], [], null, x, y), "");
});

test("timeTicks: round seconds, minutes and hours; local alignment for wall time", () => {
  assert.deepEqual(timeTicks(0, 100, 5), [0, 30, 60, 90]);
  assert.deepEqual(timeTicks(0, 4000, 5), [0, 900, 1800, 2700, 3600]);
  assert.deepEqual(timeTicks(10, 14, 5), [10, 11, 12, 13, 14], "short spans: niceTicks");
  assert.deepEqual(timeTicks(0, 0.5, 5), [0, 0.1, 0.2, 0.3, 0.4, 0.5]);
  // With a +1 h zone (offset 3600 s), hourly ticks land on local hours: t + 3600 divisible by 3600*2.
  const hourly = timeTicks(0, 6 * 3600, 4, 3600);
  for (const t of hourly) assert.equal((t + 3600) % 7200, 0);
  assert.ok(hourly.every((t) => t >= 0 && t <= 6 * 3600));
  assert.deepEqual(timeTicks(NaN, 1), []);
  const days = timeTicks(0, 40 * 86400, 4);
  assert.ok(days.length >= 3 && days.every((t) => t % 86400 === 0), "whole days beyond a day");
});

test("formatElapsed, formatClock and formatDateTime", () => {
  assert.deepEqual([0, 0.25, 45, 60, 90, 600, 3600, 3900, 7230].map(formatElapsed), ["0s", "0.25s", "45s", "1m", "1m30s", "10m", "1h", "1h05m", "2h00m30s"]);
  assert.equal(formatElapsed(-90), "-1m30s");
  assert.equal(formatElapsed(NaN), "");
  const t = Date.UTC(2024, 2, 18, 14, 3, 27) / 1000;
  assert.equal(formatClock(t, 1, 0), "14:03:27");
  assert.equal(formatClock(t, 300, 0), "14:03");
  assert.equal(formatClock(t, 86400, 0), "03-18");
  assert.equal(formatClock(t + 0.25, 0.05, 0), "14:03:27.25", "sub-second ticks show the fraction");
  assert.equal(formatClock(t + 0.2, 0.1, 0), "14:03:27.2");
  assert.equal(formatClock(t, 1, -60), "15:03:27", "UTC+1: getTimezoneOffset() is -60");
  assert.equal(formatDateTime(t, 0), "2024-03-18 14:03:27");
  assert.equal(formatDateTime(t, 300), "2024-03-18 09:03:27");
  assert.equal(formatClock(Infinity), "");
});
