import { describe, expect, it } from 'vitest';
import { metric } from '../../../bench/lib/model.js';
import type { MetricSpec, PhaseResult } from '../../../bench/lib/model.js';
import { PeakLedger } from '../../../bench/lib/peaks.js';
import { variant, withReferenceOf } from '../../../bench/lib/phase.js';
import type { PhaseSpec } from '../../../bench/lib/phase.js';

const MiB = 1024 * 1024;
const specs: MetricSpec[] = [
  { id: 'rps', label: 'PUT requests/s', unit: 'req/s', better: 'higher', targets: [{ kind: 'ratio-min', value: 3 }] },
];
const phase: PhaseSpec = {
  id: 'manifests',
  title: 'Manifests: PUT, GET, HEAD',
  description: 'd.',
  steps: [],
  metrics: specs,
};

const result = (
  ours: number | undefined,
  ref: number | undefined,
  errors: PhaseResult['errors'] = {},
): PhaseResult => ({
  id: 'x',
  title: 'x',
  description: '',
  order: ['ours', 'ref'],
  metrics: specs.map((m) => metric(m, ours, ref)),
  resources: {},
  errors,
});

describe('phase variants', () => {
  it('names the conditions in the title before the colon and suffixes the id', () => {
    const v = variant(phase, {
      idSuffix: 'nocache',
      conditions: 'bcrypt cost 5, our credential cache off',
      keepTargets: false,
      note: 'Why.',
    });
    expect(v.id).toBe('manifests-nocache');
    expect(v.title).toBe('Manifests (bcrypt cost 5, our credential cache off): PUT, GET, HEAD');
    expect(v.description).toBe('d. Why.');
    expect(v.metrics[0]?.targets).toBeUndefined();
    const same = variant(phase, { idSuffix: '', conditions: 'bcrypt cost 5', keepTargets: true });
    expect(same.id).toBe('manifests');
    expect(same.metrics[0]?.targets).toEqual([{ kind: 'ratio-min', value: 3 }]);
  });

  it('gives a run of ours alone the reference figures of its twin, and no figure of ours when ours failed', () => {
    const twin = result(900, 100);
    const alone = result(50, undefined, { ref: 'not run' });
    const merged = withReferenceOf(
      alone,
      twin,
      specs.map(({ targets: _t, ...m }) => m),
    );
    expect(merged.metrics[0]).toMatchObject({ ours: 50, ref: 100, ratio: 0.5 });
    expect(merged.errors).toEqual({});
    expect(merged.order).toEqual(['ours']);
    const failed = withReferenceOf(result(50, undefined, { ours: 'VerifyError: lost' }), twin, specs);
    expect(failed.metrics[0]?.ours).toBeUndefined();
    expect(failed.errors.ours).toBe('VerifyError: lost');
  });
});

describe('PeakLedger', () => {
  it('reports the highest lifetime peak of the default configuration only', () => {
    const ledger = new PeakLedger();
    ledger.add('ours', 'default', 'registry phases', 90 * MiB);
    ledger.add('ours', 'credential cache off', 'registry phases', 200 * MiB);
    ledger.add('ours', 'default', 'start on 10,000 repositories', 110 * MiB);
    ledger.add('ref', 'default', 'registry phases', 60 * MiB);
    expect(ledger.highest('ours')).toEqual({
      server: 'ours',
      config: 'default',
      where: 'start on 10,000 repositories',
      peakMiB: 110,
    });
    expect(ledger.highest('ref')?.peakMiB).toBe(60);
    expect(ledger.entries).toHaveLength(4);
  });
});
