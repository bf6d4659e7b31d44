/** Pure statistics and target evaluation used by every phase of the benchmark. */

/**
 * The p-th percentile (0..100) of `samples` by the nearest-rank method: the smallest sample such that at least
 * p % of the samples are less than or equal to it. Throws on an empty set or a p outside [0, 100].
 */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of an empty sample set');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile rank out of range: ${p}`);
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** p50, p99, max and mean of a set of latencies (any unit; the harness uses milliseconds). */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1] as number;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: at(50),
    p99: at(99),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}

/** ours / reference; NaN when either side is missing or the reference is zero. */
export function ratio(ours: number | undefined, reference: number | undefined): number {
  if (ours === undefined || reference === undefined) return Number.NaN;
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference === 0) return Number.NaN;
  return ours / reference;
}

/** Megabytes (10^6 bytes) per second. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : Number.NaN;
}

/**
 * A target from the issue, stated on our figure alone, on the ratio ours/reference, or on our figure against a
 * ceiling measured on the same machine.
 * - `ratio-min`: ours / reference ≥ value (throughput: higher is better);
 * - `ratio-max`: ours / reference ≤ value (durations: lower is better);
 * - `max`: ours ≤ value (absolute, in the metric's unit);
 * - `min`: ours ≥ value;
 * - `below-reference`: ours < reference (latencies);
 * - `ceiling-min`: ours ≥ value × ceiling.
 */
export type Target =
  | { kind: 'ratio-min'; value: number }
  | { kind: 'ratio-max'; value: number }
  | { kind: 'max'; value: number }
  | { kind: 'min'; value: number }
  | { kind: 'below-reference' }
  | { kind: 'ceiling-min'; value: number; ceiling: number; ceilingName: string };

export type Verdict = 'pass' | 'miss' | 'n/a';

export interface Evaluation {
  verdict: Verdict;
  /** The target as a person reads it, e.g. "≥ 2.5× ref". */
  text: string;
}

/** Whether our figure meets `target`. A figure that was not measured (undefined/NaN) gives `n/a`, never a pass. */
export function evaluateTarget(target: Target, ours: number | undefined, reference?: number): Evaluation {
  const text = describeTarget(target);
  const known = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
  if (!known(ours)) return { verdict: 'n/a', text };
  const verdict = (ok: boolean): Evaluation => ({ verdict: ok ? 'pass' : 'miss', text });
  switch (target.kind) {
    case 'max':
      return verdict(ours <= target.value);
    case 'min':
      return verdict(ours >= target.value);
    case 'ceiling-min':
      return Number.isFinite(target.ceiling)
        ? verdict(ours >= target.value * target.ceiling)
        : { verdict: 'n/a', text };
    case 'ratio-min':
    case 'ratio-max':
    case 'below-reference': {
      if (!known(reference)) return { verdict: 'n/a', text };
      if (target.kind === 'below-reference') return verdict(ours < reference);
      const r = ratio(ours, reference);
      if (Number.isNaN(r)) return { verdict: 'n/a', text };
      return verdict(target.kind === 'ratio-min' ? r >= target.value : r <= target.value);
    }
  }
}

export function describeTarget(target: Target): string {
  switch (target.kind) {
    case 'ratio-min':
      return `≥ ${target.value}× ref`;
    case 'ratio-max':
      return `≤ ${target.value}× ref`;
    case 'max':
      return `≤ ${target.value}`;
    case 'min':
      return `≥ ${target.value}`;
    case 'below-reference':
      return '< ref';
    case 'ceiling-min':
      return `≥ ${Math.round(target.value * 100)} % of ${target.ceilingName}`;
  }
}

/**
 * A size in bytes. Sizes cross the harness in MiB (report rows) and in bytes (/proc), so functions that compare
 * sizes take this brand: a plain number, for instance a MiB figure, does not type-check where bytes are meant.
 */
export type Bytes = number & { readonly __unit: 'bytes' };

export const bytes = (n: number): Bytes => n as Bytes;
export const mebibytes = (n: number): Bytes => (n * 1024 * 1024) as Bytes;
export const toMiB = (b: Bytes): number => b / (1024 * 1024);

export interface FlatRule {
  /** Growth allowed as a fraction of the first value (0.1 = 10 %). */
  tolerance: number;
  /** Growth allowed on top of `tolerance`. */
  slack: Bytes;
}

export const FLAT_RULE: FlatRule = { tolerance: 0.1, slack: mebibytes(8) };

/**
 * Whether a series of resident-set sizes stays flat: the last value is at most `rule.tolerance` (fraction) plus
 * `rule.slack` above the first. Used for "peak RSS flat, not growing, across repeated runs".
 */
export function isFlat(series: readonly Bytes[], rule: FlatRule = FLAT_RULE): boolean {
  if (series.length < 2) return true;
  const first = series[0] as Bytes;
  const last = series[series.length - 1] as Bytes;
  return last <= first * (1 + rule.tolerance) + rule.slack;
}
