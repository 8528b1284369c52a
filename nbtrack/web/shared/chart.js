// Pure chart helpers shared by the live panel (widget/panel.js) and the web UI (ui/), through the
// one SVG drawing module both use (chart_svg.js).
//
// No DOM access: every function takes plain numbers/arrays and returns numbers, strings or arrays,
// so node's test runner covers all of it (tests/js/chart.test.mjs).
//
// Bundling contract (nbtrack/extension/esm.py inlines this file into the widget's ESM, because
// an anywidget module is loaded from a blob URL where relative imports cannot resolve): top-level
// exports are written `export function NAME` or `export const NAME` only, and this file imports
// nothing. esm.py refuses to bundle anything else.
//
// downsampleMinMax and formatNumber/formatDuration/formatBytes follow the same rules as their
// Python twins in nbtrack/formatting.py (a parity test runs both).

/** A linear map from domain [d0, d1] to range [r0, r1]; a flat domain maps to the range's middle. */
export function linearScale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const scale = (v) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0));
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  // Pixels back to data (pointer positions): a flat range maps back to the domain's start.
  scale.invert = (p) => (r1 === r0 ? d0 : d0 + ((p - r0) / (r1 - r0)) * span);
  return scale;
}

/**
 * A log10 map from a positive domain [d0, d1] to range [r0, r1], with linearScale's shape (domain,
 * range, invert). A value <= 0 has no place on it: it maps to NaN, which callers must skip.
 */
export function logScale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const l0 = Math.log10(d0);
  const span = Math.log10(d1) - l0;
  const scale = (v) => (!(v > 0) ? NaN : span === 0 ? (r0 + r1) / 2 : r0 + ((Math.log10(v) - l0) / span) * (r1 - r0));
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  scale.invert = (p) => (r1 === r0 ? d0 : 10 ** (l0 + ((p - r0) / (r1 - r0)) * span));
  return scale;
}

/**
 * Ticks for a log axis over a positive [min, max]: powers of ten (every k-th decade when there are
 * more than `count`), or 1, 2 and 5 times them when the span holds fewer than three decades,
 * or niceTicks when even those give fewer than two. [] unless both ends are positive.
 */
export function logTicks(min, max, count = 5) {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [];
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  const eps = 1e-9; // log10(1000) is 2.9999999999999996: keep the decade
  const first = Math.ceil(Math.log10(lo) - eps);
  const last = Math.floor(Math.log10(hi) + eps);
  // Number("1e-3") is the double nearest 0.001, as a literal is: labels read "0.001", not 0.0010000000000000002.
  const power = (mantissa, e) => Number(`${mantissa}e${e}`);
  const inside = (v) => v >= lo * (1 - eps) && v <= hi * (1 + eps);
  if (last - first + 1 >= 3) {
    const every = Math.max(1, Math.ceil((last - first + 1) / Math.max(1, count)));
    const ticks = [];
    for (let e = first; e <= last; e++) if (((e % every) + every) % every === 0) ticks.push(power(1, e));
    return ticks.length >= 2 ? ticks : [power(1, first), power(1, last)];
  }
  const ticks = [];
  for (let e = first - 1; e <= last; e++) for (const m of [1, 2, 5]) if (inside(power(m, e))) ticks.push(power(m, e));
  return ticks.length >= 2 ? ticks : niceTicks(lo, hi, count).filter((t) => t > 0);
}

/** Labels for logTicks: formatNumber's between 1e-3 and 1e5 ("0.001", "20", "5000"), else "1e-6", "1e+6". */
export function formatLogTicks(ticks) {
  return ticks.map((t) => (Math.abs(t) >= 1e-3 && Math.abs(t) < 1e5 ? formatNumber(t) : exponentText(t)));
}

/**
 * A positive domain widened by `fraction` of its span in log10 units on both sides (a flat one:
 * halved and doubled), as padDomain does for a linear axis. null stays null.
 */
export function padLogDomain(domain, fraction = 0.05) {
  if (!domain) return null;
  const [lo, hi] = domain;
  if (!(hi > lo)) return [lo / 2, hi * 2];
  const factor = 10 ** ((Math.log10(hi) - Math.log10(lo)) * fraction);
  return [lo / factor, hi * factor];
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
  if (size >= 1e5 || size < 1e-3) return exponentText(v);
  const decimals = Math.min(6, Math.max(0, 3 - Math.floor(Math.log10(size))));
  return trimZeros(v.toFixed(decimals));
}

/** v in exponential form with 3 significant digits, trailing zeros trimmed: "1.23e+5", "1e-4". */
function exponentText(v) {
  const [mantissa, exponent] = v.toExponential(2).split("e");
  return `${trimZeros(mantissa)}e${Number(exponent) < 0 ? "-" : "+"}${Math.abs(Number(exponent))}`;
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

// -- what the web UI adds: pointer maths, several series, min/max bands, time axes ---------------

/**
 * The index of the value in `xs` (ascending) nearest to `x`, the earlier one on a tie; -1 when xs
 * is empty or x is not a number. A binary search: hover runs it on every pointer move.
 */
export function nearestIndex(xs, x) {
  const n = xs.length;
  if (n === 0 || typeof x !== "number" || Number.isNaN(x)) return -1;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  // lo is the first index with xs[lo] >= x (or the last one): the answer is it or its neighbour.
  if (lo > 0 && x - xs[lo - 1] <= xs[lo] - x) return lo - 1;
  return lo;
}

/**
 * The data range a drag between pointer positions p0 and p1 selects on `scale` (a linearScale over
 * pixels), in order and clamped to the scale's range, since a drag may end outside the plot;
 * null when it is narrower than minPixels, which makes it a click, not a zoom.
 */
export function zoomDomain(scale, p0, p1, minPixels = 4) {
  const [r0, r1] = scale.range;
  const left = Math.min(r0, r1);
  const right = Math.max(r0, r1);
  const a = Math.min(Math.max(Math.min(p0, p1), left), right);
  const b = Math.min(Math.max(Math.max(p0, p1), left), right);
  if (!(b - a >= minPixels)) return null;
  const x0 = scale.invert(a);
  const x1 = scale.invert(b);
  return x0 <= x1 ? [x0, x1] : [x1, x0];
}

/**
 * The x and y extents of several series, each {xs, lo, hi?} (hi present when a point is a min/max
 * band, as the server's downsampled charts are): {x, y}, each [min, max] or null.
 */
export function seriesExtent(series) {
  let x = null;
  let y = null;
  const widen = (range, next) => (next === null ? range : range === null ? next : [Math.min(range[0], next[0]), Math.max(range[1], next[1])]);
  for (const s of series) {
    x = widen(x, extent(s.xs));
    y = widen(y, extent(s.lo));
    if (s.hi) y = widen(y, extent(s.hi));
  }
  return { x, y };
}

/**
 * A domain with `fraction` of its span added on both sides, so a line does not run along the
 * plot's edge; a flat domain gets ±10% of its value (±1 around zero). null stays null.
 */
export function padDomain(domain, fraction = 0.05) {
  if (!domain) return null;
  const [lo, hi] = domain;
  if (hi > lo) return [lo - (hi - lo) * fraction, hi + (hi - lo) * fraction];
  const margin = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - margin, hi + margin];
}

/**
 * seriesPath for min/max bands: a point whose hi differs from its lo is drawn as a vertical stroke
 * from one to the other, entered from the end nearer the previous point, so a downsampled series
 * keeps every spike the raw one had. hi may be omitted (plain points).
 */
export function rangePath(xs, lo, hi, xScale, yScale) {
  const parts = [];
  let pen = "M";
  let last = null;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const a = lo[i];
    const b = hi ? hi[i] : a;
    if (!Number.isFinite(x) || !Number.isFinite(a) || !Number.isFinite(b)) {
      pen = "M";
      last = null;
      continue;
    }
    const px = round1(xScale(x));
    const [first, second] = last !== null && Math.abs(b - last) < Math.abs(a - last) ? [b, a] : [a, b];
    parts.push(`${pen}${px},${round1(yScale(first))}`);
    pen = "L";
    if (second !== first) parts.push(`L${px},${round1(yScale(second))}`);
    last = second;
  }
  return parts.join("");
}

// Tick steps for time axes, in seconds: round minutes and hours rather than decimal seconds.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/**
 * Ticks for an axis in seconds, on round times: steps from TIME_STEPS (whole days beyond), aligned
 * so that (tick + offsetSeconds) is a multiple of the step: a wall-clock axis passes the local
 * time zone's offset and ticks on local hours. Spans under `count` seconds fall back to niceTicks.
 */
export function timeTicks(min, max, count = 5, offsetSeconds = 0) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  if (hi - lo < count) return niceTicks(lo, hi, count);
  const raw = (hi - lo) / count;
  const step = TIME_STEPS.find((s) => s >= raw) ?? Math.max(1, Math.round(tickStep(0, raw / 86400, 1))) * 86400;
  const ticks = [];
  for (let i = Math.ceil((lo + offsetSeconds) / step); i * step - offsetSeconds <= hi; i++) ticks.push(i * step - offsetSeconds);
  return ticks;
}

/** An elapsed time for a runtime axis: "45s", "0.25s", "2m", "1m30s", "1h05m", "2h". */
export function formatElapsed(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const sign = seconds < 0 ? "-" : "";
  const size = Math.abs(seconds);
  if (size < 60) return `${sign}${formatNumber(size)}s`;
  const whole = Math.round(size);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h > 0) return `${sign}${h}h${m || s ? `${pad(m)}m` : ""}${s ? `${pad(s)}s` : ""}`;
  return `${sign}${m}m${s ? `${pad(s)}s` : ""}`;
}

/**
 * A unix time as local wall-clock text, as precise as a tick step needs: "14:03:27.25" below a
 * second, "14:03:27" below a minute, "14:03" below a day, "03-18" (month-day) beyond.
 * offsetMinutes is Date's getTimezoneOffset() (UTC minus local), a parameter so the tests do not
 * depend on the machine's zone.
 */
export function formatClock(seconds, step = 1, offsetMinutes = undefined) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const offset = offsetMinutes ?? new Date(seconds * 1000).getTimezoneOffset();
  const local = new Date(Math.round((seconds - offset * 60) * 1000)).toISOString(); // "YYYY-MM-DDTHH:MM:SS.sssZ"
  if (step >= 86400) return local.slice(5, 10);
  if (step >= 60) return local.slice(11, 16);
  if (step >= 1) return local.slice(11, 19);
  const decimals = Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
  return local.slice(11, 20 + decimals);
}

/** A unix time as "YYYY-MM-DD HH:MM:SS" in local time (offsetMinutes as for formatClock). */
export function formatDateTime(seconds, offsetMinutes = undefined) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  const offset = offsetMinutes ?? new Date(seconds * 1000).getTimezoneOffset();
  return new Date(Math.round((seconds - offset * 60) * 1000)).toISOString().slice(0, 19).replace("T", " ");
}
