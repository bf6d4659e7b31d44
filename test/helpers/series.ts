/**
 * Pass/fail criteria over time series sampled during a load run (RSS and open descriptors of a process). Pure
 * functions, so that each criterion is shown failing on a made-up leaking series before a run is trusted.
 *
 * The criteria are fixed before a run and stated in the report; the reasoning behind the numbers the soak uses
 * is in test/integration/reliability/helpers/soak.ts (SOAK_CRITERIA) and docs/reliability.md.
 */

export interface Point {
  /** Seconds since the start of the run. */
  atS: number;
  value: number;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Least-squares slope of value over time, in value units per minute (0 with fewer than two distinct times). */
export function slopePerMinute(points: Point[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.atS / 60, 0) / n;
  const my = points.reduce((a, p) => a + p.value, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.atS / 60 - mx) * (p.value - my);
    den += (p.atS / 60 - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Three consecutive parts of equal length (the last takes the remainder). */
export function thirds<T>(items: T[]): [T[], T[], T[]] {
  const t = Math.floor(items.length / 3);
  return [items.slice(0, t), items.slice(t, 2 * t), items.slice(2 * t)];
}

export interface RssCriterion {
  /** Samples before this time are the warm-up, left out of both checks. */
  warmupS: number;
  /** Bound on the least-squares slope of RSS over the time after warm-up (MiB per minute). */
  maxSlopeMiBPerMin: number;
  /** Bound on (median of the last third − median of the middle third) / median of the middle third, after warm-up. */
  maxThirdGrowth: number;
  /** Fewer samples after warm-up than this is itself a failure: the checks would mean nothing. */
  minSamples: number;
}

export interface Verdict {
  ok: boolean;
  /** One line per criterion that failed, with the figures. */
  failures: string[];
}

export interface RssVerdict extends Verdict {
  slopeMiBPerMin: number;
  middleMedianMiB: number;
  lastMedianMiB: number;
  thirdGrowth: number;
  samples: number;
}

/** RSS is flat after warm-up: a small slope over the whole window and no step up between the middle and last thirds. */
export function judgeRss(series: Point[], c: RssCriterion): RssVerdict {
  const after = series.filter((p) => p.atS >= c.warmupS);
  const slope = slopePerMinute(after);
  const [, middle, last] = thirds(after.map((p) => p.value));
  const middleMedianMiB = median(middle);
  const lastMedianMiB = median(last);
  const thirdGrowth = (lastMedianMiB - middleMedianMiB) / middleMedianMiB;
  const failures: string[] = [];
  if (after.length < c.minSamples)
    failures.push(
      `only ${after.length} RSS samples after the ${c.warmupS} s warm-up (at least ${c.minSamples} needed)`,
    );
  else {
    if (!(slope < c.maxSlopeMiBPerMin))
      failures.push(`RSS slope after warm-up ${slope.toFixed(2)} MiB/min, bound ${c.maxSlopeMiBPerMin} MiB/min`);
    if (!(thirdGrowth <= c.maxThirdGrowth)) {
      failures.push(
        `RSS median of the last third ${lastMedianMiB} MiB is ${(thirdGrowth * 100).toFixed(1)}% over the middle third's ${middleMedianMiB} MiB, bound ${c.maxThirdGrowth * 100}%`,
      );
    }
  }
  return {
    ok: failures.length === 0,
    failures,
    slopeMiBPerMin: slope,
    middleMedianMiB,
    lastMedianMiB,
    thirdGrowth,
    samples: after.length,
  };
}

export interface FdCriterion {
  /** Samples before this time (under load) are the warm-up; their maximum is the reference level. */
  warmupS: number;
  /** The median of the run's last third may exceed the warm-up's maximum by at most this many descriptors. */
  margin: number;
  /** Fewer warm-up or last-third samples than this is itself a failure. */
  minSamples: number;
}

export interface FdVerdict extends Verdict {
  warmMax: number;
  lastThirdMedian: number;
  lastThirdMax: number;
}

/**
 * No descriptor leak under load: `series` holds only samples taken while the clients ran (descriptors counted
 * after they stopped say nothing about a leak per request). The warm-up's level is its maximum, the last
 * third's is its median, so one sample caught in a burst does not decide either way, and a steady leak does.
 */
export function judgeFds(series: Point[], c: FdCriterion): FdVerdict {
  const warm = series.filter((p) => p.atS < c.warmupS).map((p) => p.value);
  const [, , last] = thirds(series.map((p) => p.value));
  const warmMax = warm.length > 0 ? Math.max(...warm) : NaN;
  const lastThirdMedian = median(last);
  const failures: string[] = [];
  if (warm.length < c.minSamples || last.length < c.minSamples) {
    failures.push(
      `too few descriptor samples under load: ${warm.length} in the warm-up, ${last.length} in the last third (at least ${c.minSamples} each)`,
    );
  } else if (!(lastThirdMedian <= warmMax + c.margin)) {
    failures.push(
      `open descriptors under load: median of the last third ${lastThirdMedian}, warm-up maximum ${warmMax}, margin ${c.margin}`,
    );
  }
  return {
    ok: failures.length === 0,
    failures,
    warmMax,
    lastThirdMedian,
    lastThirdMax: last.length > 0 ? Math.max(...last) : NaN,
  };
}
