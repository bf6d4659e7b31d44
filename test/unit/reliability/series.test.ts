import { describe, expect, it } from 'vitest';
import { judgeFds, judgeRss, median, slopePerMinute, type Point } from '../../helpers/series.js';
import { SOAK_CRITERIA } from '../../integration/reliability/helpers/soak.js';
import { Rng } from '../../integration/reliability/helpers/rng.js';

/** A 30-minute run sampled every 5 s, value = f(t in seconds) plus the noise of `noise`. */
function series(f: (s: number) => number, noise: (rng: Rng) => number = () => 0, seed = 7): Point[] {
  const rng = new Rng(seed);
  return Array.from({ length: 361 }, (_, i) => ({ atS: i * 5, value: Math.round((f(i * 5) + noise(rng)) * 10) / 10 }));
}

/** V8's sawtooth: the heap climbs for a minute or two, then a collection drops it; ±15 MiB around the level. */
const sawtooth = (s: number) => ((s % 97) / 97) * 30 - 15;
const warmUp = (s: number) => (s < 240 ? 60 + (72 * s) / 240 : 132);

describe('series helpers', () => {
  it('median and slope', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(
      slopePerMinute([
        { atS: 0, value: 10 },
        { atS: 60, value: 12 },
        { atS: 120, value: 14 },
      ]),
    ).toBeCloseTo(2);
  });
});

describe('RSS criterion (SOAK_CRITERIA.rss)', () => {
  const c = SOAK_CRITERIA.rss;

  it('passes a flat, noisy series after a warm-up climb', () => {
    const v = judgeRss(
      series(
        (s) => warmUp(s) + sawtooth(s),
        (r) => r.int(-8, 8),
      ),
      c,
    );
    expect(v.failures).toEqual([]);
    expect(Math.abs(v.slopeMiBPerMin)).toBeLessThan(0.5);
  });

  it('fails a series that keeps growing by 2 MiB/min after warm-up', () => {
    const v = judgeRss(
      series(
        (s) => warmUp(s) + (2 * s) / 60 + sawtooth(s),
        (r) => r.int(-8, 8),
      ),
      c,
    );
    expect(v.ok).toBe(false);
    expect(v.failures.join('\n')).toMatch(/slope/);
  });

  it('fails a late step up of 20% that the slope alone would let through', () => {
    const v = judgeRss(
      series((s) => (s < 1500 ? 140 : 168) + sawtooth(s)),
      c,
    );
    expect(v.failures.some((f) => f.includes('last third'))).toBe(true);
  });

  it('fails a run too short to judge instead of passing it', () => {
    const v = judgeRss(series(() => 100).slice(0, 70), c);
    expect(v.failures).toEqual([expect.stringMatching(/only \d+ RSS samples/)]);
  });
});

describe('descriptor criterion (SOAK_CRITERIA.fds)', () => {
  const c = SOAK_CRITERIA.fds;

  it('passes descriptors that move with the load but do not grow', () => {
    const v = judgeFds(
      series(
        () => 100,
        (r) => r.int(-15, 15) + (r.chance(0.1) ? 16 : 0),
      ),
      c,
    );
    expect(v.failures).toEqual([]);
  });

  it('fails a leak of three descriptors a minute (one per 10,000 requests at 500/s)', () => {
    const v = judgeFds(
      series(
        (s) => 100 + (3 * s) / 60,
        (r) => r.int(-15, 15),
      ),
      c,
    );
    expect(v.ok).toBe(false);
    expect(v.failures[0]).toMatch(/median of the last third/);
  });

  it('fails when there are no samples under load to judge', () => {
    expect(judgeFds([], c).ok).toBe(false);
  });
});
