// Pure chart helpers shared by the live panel (panel.js) and, later, the web UI.
//
// No DOM access: every function takes plain numbers/arrays and returns numbers, strings or arrays,
// so node's test runner covers all of it (js/test/chart.test.mjs).
//
// Bundling contract (nbtrack/extension/panel.py inlines this file into the widget's ESM, because
// an anywidget module is loaded from a blob URL where relative imports cannot resolve): top-level
// exports are written `export function NAME` or `export const NAME` only, and this file imports
// nothing. panel.py refuses to bundle anything else.
//
// downsampleMinMax and formatNumber/formatDuration/formatBytes follow the same rules as their
// Python twins in panel.py (a parity test runs both).

/** A linear map from domain [d0, d1] to range [r0, r1]; a flat domain maps to the range's middle. */
export function linearScale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const scale = (v) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0));
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  return scale;
}

/** [min, max] of the finite numbers in `values`, or null when there are none. */
export function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

/** The step between ticks: 1, 2 or 5 times a power of ten, giving about `count` ticks over the span. */
export function tickStep(min, max, count = 5) {
  const span = Math.abs(max - min);
  if (!Number.isFinite(span) || span === 0 || count < 1) return 0;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const ratio = raw / power;
  const nice = ratio >= 7.5 ? 10 : ratio >= 3.5 ? 5 : ratio >= 1.5 ? 2 : 1;
  return nice * power;
}

/** Round tick values (multiples of tickStep) inside [min, max]; [min] for a flat domain. */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  const step = tickStep(lo, hi, count);
  if (step === 0) return [lo];
  // i * step, not a running sum (no accumulated error); rounding to the step's decimals turns
  // 0.30000000000000004 into 0.3.
  const decimals = Math.min(20, Math.max(0, -Math.floor(Math.log10(step))));
  const ticks = [];
  const eps = 1e-9; // 0.3 / 0.1 is 2.9999999999999996: do not lose the last tick to it
  for (let i = Math.ceil(lo / step - eps); i <= Math.floor(hi / step + eps); i++) {
    ticks.push(Number((i * step).toFixed(decimals)));
  }
  return ticks;
}

/** Labels for ticks that share one step: the same number of decimals on every label. */
export function formatTicks(ticks) {
  if (ticks.length === 0) return [];
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 0;
  const biggest = Math.max(...ticks.map((t) => Math.abs(t)));
  if (biggest >= 1e6 || (biggest > 0 && biggest < 1e-3)) return ticks.map((t) => formatNumber(t));
  const decimals = step > 0 ? Math.max(0, -Math.floor(Math.log10(step))) : 0;
  return ticks.map((t) => t.toFixed(Math.min(decimals, 6)));
}

function trimZeros(text) {
  // "1.2300" -> "1.23", "2.000" -> "2", "1.50e+5" -> "1.5e+5"
  return text.replace(/(\.\d*?)0+(?=$|e)/, "$1").replace(/\.(?=$|e)/, "");
}

/**
 * A short label for a metric value: integers as they are (below 1e15), 4 significant digits in
 * [1e-3, 1e5), otherwise exponential with 3 significant digits ("1.23e+5"); trailing zeros trimmed.
 */
export function formatNumber(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const size = Math.abs(v);
  if (size >= 1e5 || size < 1e-3) {
    const [mantissa, exponent] = v.toExponential(2).split("e");
    return `${trimZeros(mantissa)}e${Number(exponent) < 0 ? "-" : "+"}${Math.abs(Number(exponent))}`;
  }
  const decimals = Math.min(6, Math.max(0, 3 - Math.floor(Math.log10(size))));
  return trimZeros(v.toFixed(decimals));
}

/** A duration in seconds: "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.floor(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")} min`;
}

/** A byte count with a decimal unit: "512 B", "3.4 kB", "12 MB". */
export function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value < 10 ? trimZeros(value.toFixed(1)) : String(Math.round(value))} ${units[unit]}`;
}

/**
 * At most `maxPoints` points of a series, keeping its shape: the first and last finite points, and
 * for each of floor((maxPoints - 2) / 2) equal buckets of the points between them, the bucket's
 * minimum and maximum (first occurrence, in step order). The global extremes are therefore always
 * kept. Non-finite values are dropped. Returns {steps, values}.
 */
export function downsampleMinMax(steps, values, maxPoints) {
  const xs = [];
  const ys = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === "number" && Number.isFinite(v)) {
      xs.push(steps[i]);
      ys.push(v);
    }
  }
  const n = ys.length;
  if (n <= maxPoints) return { steps: xs, values: ys };
  if (maxPoints < 2) return maxPoints === 1 ? { steps: [xs[n - 1]], values: [ys[n - 1]] } : { steps: [], values: [] };
  const buckets = Math.floor((maxPoints - 2) / 2);
  const inner = n - 2;
  const outSteps = [xs[0]];
  const outValues = [ys[0]];
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * inner) / buckets);
    const end = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (start >= end) continue;
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (ys[i] < ys[lo]) lo = i;
      if (ys[i] > ys[hi]) hi = i;
    }
    for (const i of lo === hi ? [lo] : lo < hi ? [lo, hi] : [hi, lo]) {
      outSteps.push(xs[i]);
      outValues.push(ys[i]);
    }
  }
  outSteps.push(xs[n - 1]);
  outValues.push(ys[n - 1]);
  return { steps: outSteps, values: outValues };
}

/**
 * An SVG path ("M x,y L x,y ...") through the points, mapped by the two scales; a non-finite value
 * breaks the line (the next point starts a new "M"). Coordinates are rounded to 0.1.
 */
export function seriesPath(steps, values, xScale, yScale) {
  const parts = [];
  let pen = "M";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const s = steps[i];
    if (typeof v !== "number" || !Number.isFinite(v) || typeof s !== "number" || !Number.isFinite(s)) {
      pen = "M";
      continue;
    }
    parts.push(`${pen}${round1(xScale(s))},${round1(yScale(v))}`);
    pen = "L";
  }
  return parts.join("");
}

function round1(v) {
  const r = Math.round(v * 10) / 10;
  return Object.is(r, -0) ? 0 : r;
}
