import { describe, expect, it } from 'vitest';
import { metric } from '../../../bench/lib/model.js';
import type { ProcSample } from '../../../bench/lib/proc.js';
import { FULL } from '../../../bench/lib/sizes.js';
import { RssSeries, repeatPhase } from '../../../bench/phases/repeat.js';

const MiB = 1024 * 1024;

/** A /proc sample as the phase gets it: sizes in bytes. */
const sample = (rssMiB: number): ProcSample => ({ rssBytes: rssMiB * MiB, peakRssBytes: rssMiB * MiB, cpuSeconds: 0 });

/** The phase's verdict on a series of VmRSS values (MiB), through the phase's own recording and its target row. */
function judge(seriesMiB: number[]): { flat: number; growthMiB: number; verdict: string } {
  const series = new RssSeries();
  for (const v of seriesMiB) series.record('ours', sample(v));
  const figures = series.verdict('ours');
  const spec = repeatPhase(FULL, { user: 'u', password: 'p' }, Buffer.alloc(16)).metrics.find((m) => m.id === 'flat');
  if (!spec) throw new Error('the repeat phase has no flat row');
  return { ...figures, verdict: metric(spec, figures.flat, undefined).verdict };
}

describe('repeat phase verdict (resident set flat across rounds)', () => {
  it('fails a resident set that grows by 40 MiB a round', () => {
    expect(judge([60, 100, 140])).toEqual({ flat: 0, growthMiB: 80, verdict: 'miss' });
  });

  it('fails growth just past 10 % + 8 MiB', () => {
    expect(judge([100, 110, 119]).verdict).toBe('miss');
  });

  it('passes a flat series and noise within 10 % + 8 MiB', () => {
    expect(judge([80, 81, 80])).toEqual({ flat: 1, growthMiB: 0, verdict: 'pass' });
    expect(judge([100, 112, 118]).verdict).toBe('pass');
  });

  it('keeps the registries apart', () => {
    const series = new RssSeries();
    series.record('ours', sample(60));
    series.record('ref', sample(60));
    series.record('ours', sample(200));
    series.record('ref', sample(61));
    expect(series.verdict('ours').flat).toBe(0);
    expect(series.verdict('ref').flat).toBe(1);
  });
});
