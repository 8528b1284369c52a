// Smoothing for the charts: TensorBoard's exponential moving average, debiased (pure: node's
// tests cover it). The web UI draws the smoothed line over the raw one, which stays faint behind
// it with its min/max bands, so smoothing never hides a spike.

/** The weights the slider offers: 0 (off) to MAX_WEIGHT; 0.99 already averages ~100 points. */
export const MAX_WEIGHT = 0.99;

/**
 * The exponential moving average of `values` with `weight` in [0, MAX_WEIGHT]:
 * ema_i = weight * ema_{i-1} + (1 - weight) * v_i, started at 0 and divided by (1 - weight^n)
 * after n finite values, so the first point is the first value and the start is not pulled
 * towards 0. A non-finite value is left out of the average and gets NaN (the smoothed line breaks
 * there, as the raw one does). A constant series stays exactly constant. Returns a new array.
 */
export function smoothEma(values, weight) {
  const w = Math.min(MAX_WEIGHT, Math.max(0, Number(weight) || 0));
  const out = new Array(values.length);
  let average = 0;
  let decay = 1; // weight ** (finite values so far), kept by multiplying: no pow per point
  let first = null;
  let constant = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      out[i] = NaN;
      continue;
    }
    if (first === null) first = v;
    else if (v !== first) constant = false;
    average = average * w + (1 - w) * v;
    decay *= w;
    // Debiased; a run of equal values is kept exact (no 0.30000000000000004 from the division).
    out[i] = constant ? v : average / (1 - decay);
  }
  return out;
}

/**
 * The smoothed line of a chart series {xs, lo, hi?}: the EMA of each point's value, a min/max
 * band's midpoint standing for its bucket (the server's downsampled charts). Aligned with xs.
 */
export function smoothSeries(series, weight) {
  const { lo, hi } = series;
  const values = hi ? lo.map((a, i) => (a + hi[i]) / 2) : lo;
  return smoothEma(values, weight);
}
