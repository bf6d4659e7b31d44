import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { metric } from '../../../bench/lib/model.js';
import { formatNumber, formatRatio, metricTable } from '../../../bench/lib/report.js';
import {
  bytes,
  describeTarget,
  evaluateTarget,
  isFlat,
  mebibytes,
  percentile,
  ratio,
  summarize,
} from '../../../bench/lib/stats.js';

describe('percentile (nearest rank)', () => {
  it('picks the nearest-rank sample of 1..100', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile(samples, 100)).toBe(100);
    expect(percentile(samples, 0)).toBe(1);
  });

  it('handles small sets: p99 of ten samples is the largest, p50 the fifth', () => {
    const samples = [7, 3, 9, 1, 5, 2, 8, 4, 6, 10];
    expect(percentile(samples, 99)).toBe(10);
    expect(percentile(samples, 50)).toBe(5);
    expect(percentile([42], 50)).toBe(42);
  });

  it('rejects an empty set and ranks outside 0..100', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it('always returns a member of the set, monotone in p, and does not reorder its input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 99 }),
        (xs, p) => {
          const copy = [...xs];
          const a = percentile(xs, p);
          const b = percentile(xs, p + 1);
          expect(xs).toContain(a);
          expect(b).toBeGreaterThanOrEqual(a);
          expect(xs).toEqual(copy);
        },
      ),
    );
  });
});

describe('summarize', () => {
  it('gives count, p50, p99, max and mean', () => {
    const s = summarize([4, 1, 3, 2]);
    expect(s).toEqual({ count: 4, p50: 2, p99: 4, max: 4, mean: 2.5 });
  });

  it('gives NaN figures for no samples rather than throwing', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    expect(Number.isNaN(s.p99)).toBe(true);
  });
});

describe('ratio', () => {
  it('is ours over the reference', () => {
    expect(ratio(750, 150)).toBe(5);
  });

  it('is NaN when a side is missing, not finite, or the reference is zero', () => {
    expect(ratio(undefined, 1)).toBeNaN();
    expect(ratio(1, undefined)).toBeNaN();
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(Number.NaN, 1)).toBeNaN();
  });
});

describe('evaluateTarget', () => {
  it('ratio-min: 2.5× the reference passes at exactly 2.5 and misses below', () => {
    expect(evaluateTarget({ kind: 'ratio-min', value: 2.5 }, 400, 160).verdict).toBe('pass');
    expect(evaluateTarget({ kind: 'ratio-min', value: 2.5 }, 399, 160).verdict).toBe('miss');
  });

  it('ratio-max: at most half the reference time', () => {
    expect(evaluateTarget({ kind: 'ratio-max', value: 0.5 }, 5, 10).verdict).toBe('pass');
    expect(evaluateTarget({ kind: 'ratio-max', value: 0.5 }, 5.1, 10).verdict).toBe('miss');
  });

  it('max and min are absolute', () => {
    expect(evaluateTarget({ kind: 'max', value: 1 }, 0.99).verdict).toBe('pass');
    expect(evaluateTarget({ kind: 'max', value: 1 }, 1.01).verdict).toBe('miss');
    expect(evaluateTarget({ kind: 'min', value: 1 }, 0).verdict).toBe('miss');
  });

  it('below-reference compares latencies strictly', () => {
    expect(evaluateTarget({ kind: 'below-reference' }, 3, 300).verdict).toBe('pass');
    expect(evaluateTarget({ kind: 'below-reference' }, 300, 300).verdict).toBe('miss');
  });

  it('ceiling-min: 90 % of a measured ceiling', () => {
    const t = { kind: 'ceiling-min', value: 0.9, ceiling: 1000, ceilingName: 'loopback' } as const;
    expect(evaluateTarget(t, 900).verdict).toBe('pass');
    expect(evaluateTarget(t, 899).verdict).toBe('miss');
    expect(evaluateTarget({ ...t, ceiling: Number.NaN }, 950).verdict).toBe('n/a');
  });

  it('never passes an unmeasured figure: a missing side gives n/a', () => {
    expect(evaluateTarget({ kind: 'max', value: 1 }, undefined).verdict).toBe('n/a');
    expect(evaluateTarget({ kind: 'ratio-min', value: 10 }, 500, undefined).verdict).toBe('n/a');
    expect(evaluateTarget({ kind: 'below-reference' }, 1, Number.NaN).verdict).toBe('n/a');
  });

  it('describes targets for the report', () => {
    expect(describeTarget({ kind: 'ratio-min', value: 10 })).toBe('≥ 10× ref');
    expect(describeTarget({ kind: 'ceiling-min', value: 0.9, ceiling: 1, ceilingName: 'loopback' })).toBe(
      '≥ 90 % of loopback',
    );
  });
});

describe('metric', () => {
  const spec = {
    id: 'pull',
    label: 'Pull',
    unit: 'MB/s',
    better: 'higher' as const,
    targets: [
      { kind: 'ratio-min' as const, value: 1 },
      { kind: 'ceiling-min' as const, value: 0.9, ceiling: 1000, ceilingName: 'loopback' },
    ],
  };

  it('passes only when every target passes', () => {
    expect(metric(spec, 950, 600).verdict).toBe('pass');
    expect(metric(spec, 800, 600).verdict).toBe('miss');
    expect(metric(spec, 950, 1200).verdict).toBe('miss');
  });

  it('reports a miss even when another target is n/a, and n/a when nothing was measured', () => {
    expect(metric(spec, 800, undefined).verdict).toBe('miss');
    expect(metric(spec, undefined, 600).verdict).toBe('n/a');
  });

  it('carries the ratio and no verdict for a metric without targets', () => {
    const m = metric({ id: 'x', label: 'x', unit: 's', better: 'lower' }, 2, 8);
    expect(m.ratio).toBe(0.25);
    expect(m.verdict).toBe('n/a');
  });
});

describe('isFlat', () => {
  it('accepts noise within 10 % + 8 MiB and rejects steady growth', () => {
    expect(isFlat([60, 63, 65].map(mebibytes))).toBe(true);
    expect(isFlat([60, 80, 100].map(mebibytes))).toBe(false);
    expect(isFlat([mebibytes(60)])).toBe(true);
  });

  it('takes the slack in bytes: 8 MiB of growth on 100 MiB is within 10 % + 8 MiB, 19 MiB is not', () => {
    expect(isFlat([mebibytes(100), mebibytes(118)])).toBe(true);
    expect(isFlat([mebibytes(100), mebibytes(119)])).toBe(false);
    expect(isFlat([mebibytes(100), mebibytes(101)], { tolerance: 0, slack: bytes(1024 * 1024) })).toBe(true);
    expect(isFlat([mebibytes(100), bytes(101 * 1024 * 1024 + 1)], { tolerance: 0, slack: mebibytes(1) })).toBe(false);
  });
});

describe('report formatting', () => {
  it('formats numbers by magnitude and ratios with ×', () => {
    expect(formatNumber(1234.5)).toBe('1,235');
    expect(formatNumber(12.345)).toBe('12.3');
    expect(formatNumber(0.1234)).toBe('0.123');
    expect(formatNumber(10)).toBe('10');
    expect(formatNumber(undefined)).toBe('—');
    expect(formatNumber(1, 'bool')).toBe('yes');
    expect(formatRatio(12.34)).toBe('12.3×');
    expect(formatRatio(0.5)).toBe('0.50×');
    expect(formatRatio(Number.NaN)).toBe('—');
  });
});

describe('metricTable', () => {
  it('renders ours, reference, ratio, target and verdict, with the phase column when asked', () => {
    const m = metric(
      { id: 'push', label: 'Push', unit: 'MB/s', better: 'higher', targets: [{ kind: 'ratio-min', value: 2.5 }] },
      300,
      150,
    );
    const table = metricTable([m], ['Large blob']);
    const row = table.split('\n')[2];
    expect(row).toBe('| Large blob | Push | MB/s | 300 | 150 | 2.00× | ≥ 2.5× ref | **MISS** |');
  });

  it('escapes pipes in labels and shows a note next to the verdict', () => {
    const m = metric(
      {
        id: 'x',
        label: 'a | b',
        unit: 's',
        better: 'lower',
        targets: [{ kind: 'max', value: 1 }],
        note: 'not measured',
      },
      undefined,
      undefined,
    );
    const row = metricTable([m]).split('\n')[2];
    expect(row).toBe('| a \\| b | s | — | — | — | ≤ 1 | n/a not measured |');
  });
});
