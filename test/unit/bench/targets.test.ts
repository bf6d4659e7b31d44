import { describe, expect, it } from 'vitest';
import { metric } from '../../../bench/lib/model.js';
import type { MetricSpec } from '../../../bench/lib/model.js';
import { PEAK_SPEC } from '../../../bench/lib/peaks.js';
import { FULL } from '../../../bench/lib/sizes.js';
import type { Target } from '../../../bench/lib/stats.js';
import { largeBlobPhase, smallBlobPhase } from '../../../bench/phases/blobs.js';
import { catalogPhase } from '../../../bench/phases/catalog.js';
import { dockerMetricSpecs } from '../../../bench/phases/docker.js';
import { manifestPhase } from '../../../bench/phases/manifests.js';
import { repeatPhase } from '../../../bench/phases/repeat.js';
import { scalePhase } from '../../../bench/phases/scale.js';
import { replicaMetricSpecs, replicaResult, s3Phase, s3ReplicaSteps } from '../../../bench/phases/s3.js';

const creds = { user: 'u', password: 'p' };
const REF = 100;
const scaleCounts = {
  repositories: FULL.scaleRepositories,
  tagsPerRepository: FULL.scaleTagsPerRepository,
  storageSample: FULL.scaleStorageSample,
  tries: FULL.scaleTries,
};
const scaleSeeded = { volume: '/nonexistent', id: 'x', healthySeconds: 0.5, seedSeconds: 1 };

/** Every metric of the report that carries a target, as the phases and the summary declare them. */
function targetedSpecs(): MetricSpec[] {
  const phases = [
    largeBlobPhase(FULL, creds, Buffer.alloc(16), () => undefined),
    manifestPhase(FULL, creds, { putTarget: true }),
    smallBlobPhase(FULL, creds, Buffer.alloc(16)),
    repeatPhase(FULL, creds, Buffer.alloc(16)),
    catalogPhase(FULL, creds, 10_000, {}),
    ...(['sqlite', 'postgres'] as const).map((kind) => scalePhase(kind, scaleCounts, creds, scaleSeeded)),
  ];
  return [...phases.flatMap((p) => p.metrics), ...dockerMetricSpecs(), PEAK_SPEC].filter(
    (m) => (m.targets ?? []).length > 0,
  );
}

/** Figures (ours, reference) that meet `t` exactly at its edge, and figures just past it. */
function edge(t: Target): { pass: [number, number]; fail: [number, number] } {
  switch (t.kind) {
    case 'min':
      return { pass: [t.value, REF], fail: [t.value > 0 ? t.value * 0.99 : t.value - 1, REF] };
    case 'max':
      return { pass: [t.value, REF], fail: [t.value * 1.01 + 0.001, REF] };
    case 'ratio-min':
      return { pass: [t.value * REF, REF], fail: [t.value * REF * 0.99, REF] };
    case 'ratio-max':
      return { pass: [t.value * REF, REF], fail: [t.value * REF * 1.01, REF] };
    case 'below-reference':
      return { pass: [REF * 0.99, REF], fail: [REF, REF] };
    case 'ceiling-min':
      return { pass: [t.value * t.ceiling, REF], fail: [t.value * t.ceiling * 0.99, REF] };
  }
}

describe('every target row of the report', () => {
  const specs = targetedSpecs();

  it('holds the targets of the issue', () => {
    const targetsOf = (id: string): Target[] => specs.filter((s) => s.id === id).flatMap((s) => s.targets ?? []);
    expect(targetsOf('pushMonoShareOfStore')).toEqual([{ kind: 'min', value: 90 }]);
    expect(targetsOf('pushChunkedShareOfStore')).toEqual([{ kind: 'min', value: 90 }]);
    expect(targetsOf('put.c16.rps')).toEqual([{ kind: 'ratio-min', value: 3 }]);
    expect(targetsOf('peakRssMiB')).toEqual([{ kind: 'max', value: 120 }]);
    expect(targetsOf('pushMBps')).toEqual([{ kind: 'ratio-min', value: 1.5 }]);
    expect(targetsOf('pullMBps')).toEqual([
      { kind: 'ratio-min', value: 1 },
      { kind: 'ratio-min', value: 1 },
    ]);
    expect(targetsOf('flat')).toEqual([{ kind: 'min', value: 1 }]);
  });

  it('holds the start-up-at-scale targets of the issue, for each metadata store', () => {
    const targetsOf = (id: string): Target[] => specs.filter((s) => s.id === id).flatMap((s) => s.targets ?? []);
    const each = (t: Target): Target[] => [t, t];
    expect(targetsOf('healthySeconds')).toEqual(each({ kind: 'max', value: 1 }));
    expect(targetsOf('vmHwmMiB')).toEqual(each({ kind: 'max', value: 120 }));
    for (const page of ['catalog.first', 'catalog.middle', 'tags'])
      for (const figure of ['median', 'max'])
        expect(targetsOf(`${page}.${figure}.ms`), `${page}.${figure}`).toEqual(each({ kind: 'max', value: 50 }));
  });

  it('seeds the start-up-at-scale phase with 100,000 repositories and 1,000,000 tags in a full run', () => {
    expect(FULL.scaleRepositories).toBe(100_000);
    expect(FULL.scaleRepositories * FULL.scaleTagsPerRepository).toBe(1_000_000);
    expect(scalePhase('postgres', scaleCounts, creds, scaleSeeded).title).toContain(
      '100,000 repositories, 1,000,000 tags',
    );
  });

  it('states the manifest PUT target only for the run at bcrypt cost 5', () => {
    const put = manifestPhase(FULL, creds, { putTarget: false }).metrics.find((m) => m.id === 'put.c16.rps');
    expect(put?.targets).toEqual([]);
  });

  it('passes at the edge of its target and misses just past it, and gives n/a, never a pass, when unmeasured', () => {
    expect(specs.length).toBeGreaterThan(15);
    for (const spec of specs) {
      for (const target of spec.targets ?? []) {
        const one = { ...spec, targets: [target] };
        const { pass, fail } = edge(target);
        expect(metric(one, ...pass).verdict, `${spec.id} ${JSON.stringify(target)} at ${pass.join('/')}`).toBe('pass');
        expect(metric(one, ...fail).verdict, `${spec.id} ${JSON.stringify(target)} at ${fail.join('/')}`).toBe('miss');
        expect(metric(one, undefined, REF).verdict, `${spec.id} unmeasured`).toBe('n/a');
      }
    }
  });
});

/**
 * A run of the replica steps that measured `rps` GETs/s through the lean client, `mbps` MB/s pulled and, through
 * the `node:http` client, `httpRps` GETs/s (or failed with `error`).
 */
function replicaRun(spec: ReturnType<typeof s3ReplicaSteps>, rps: number, mbps: number, error?: string, httpRps = 1) {
  const figures: Record<string, number> = { 'get-lean.c16.rps': rps, pullMBps: mbps, 'get.c16.rps': httpRps };
  return {
    id: spec.id,
    title: spec.title,
    description: spec.description,
    order: ['ours' as const],
    metrics: spec.metrics.flatMap((m) => (m.id in figures ? [metric(m, figures[m.id], undefined)] : [])),
    resources: {},
    errors: error ? { ours: error } : {},
  };
}

describe('every target row of the S3 phases', () => {
  const phase = s3Phase(FULL, Buffer.alloc(16), Buffer.alloc(16), {}, () => []);
  const replicaSpecs = replicaMetricSpecs().flatMap(({ specs: s }) => [
    s.one,
    s.two,
    s.loss,
    s.apart,
    s.apartLoss,
    s.coordination,
  ]);
  const specs = [...phase.metrics, ...replicaSpecs].filter((m) => (m.targets ?? []).length > 0);
  const targetsOf = (id: string): Target[] =>
    [...phase.metrics, ...replicaSpecs].find((m) => m.id === id)?.targets ?? [];

  it('holds the S3 targets of the issue, and none on the rows the issue gives none', () => {
    expect(targetsOf('pushMonoMBps')).toEqual([{ kind: 'ratio-min', value: 2 }]);
    expect(targetsOf('pushChunkedMBps')).toEqual([{ kind: 'ratio-min', value: 2 }]);
    expect(targetsOf('pullMBps')).toEqual([{ kind: 'ratio-min', value: 1 }]);
    expect(targetsOf('get.c1.rps')).toEqual([{ kind: 'ratio-min', value: 5 }]);
    expect(targetsOf('get.c16.rps')).toEqual([{ kind: 'ratio-min', value: 5 }]);
    expect(targetsOf('walk.cold.seconds')).toEqual([{ kind: 'ratio-max', value: 0.05 }]);
    expect(targetsOf('walk.warm.seconds')).toEqual([{ kind: 'ratio-max', value: 0.05 }]);
    expect(targetsOf('replicas.loss.get-lean.c16.rps')).toEqual([{ kind: 'max', value: 10 }]);
    // the node:http client takes a core of its own at this rate: its row is shown, with no target
    expect(targetsOf('replicas.loss.get.c16.rps')).toEqual([]);
    expect(targetsOf('replicas.loss.pullMBps')).toEqual([{ kind: 'max', value: 10 }]);
    for (const id of ['put.c16.rps', 'get.c16.p99', 'smallSeconds', 'smallBlobsPerSecond', 'startSeconds'])
      expect(targetsOf(id), id).toEqual([]);
    expect(phase.metrics.map((m) => m.id)).toContain('put.c16.rps');
    expect(specs).toHaveLength(9);
  });

  it('passes at the edge of each target and misses just past it, and gives n/a when unmeasured', () => {
    for (const spec of specs) {
      for (const target of spec.targets ?? []) {
        const one = { ...spec, targets: [target] };
        const { pass, fail } = edge(target);
        expect(metric(one, ...pass).verdict, `${spec.id} at ${pass.join('/')}`).toBe('pass');
        expect(metric(one, ...fail).verdict, `${spec.id} at ${fail.join('/')}`).toBe('miss');
        expect(metric(one, undefined, REF).verdict, `${spec.id} unmeasured`).toBe('n/a');
      }
    }
  });

  it('reads the catalog target as the reference taking at least 20x our time', () => {
    const walk = phase.metrics.find((m) => m.id === 'walk.cold.seconds');
    if (!walk) throw new Error('no catalog walk row');
    expect(metric(walk, 0.5, 10).verdict).toBe('pass');
    expect(metric(walk, 0.5, 9.9).verdict).toBe('miss');
    expect(metric(walk, 10, 0.5).verdict).toBe('miss');
  });

  it('reports the loss of two replicas against one, passing at 10 % and missing just past it', () => {
    const spec = s3ReplicaSteps(FULL, Buffer.alloc(16));
    const run = (rps: number, mbps: number, error?: string, httpRps?: number) =>
      replicaRun(spec, rps, mbps, error, httpRps);
    const loss = (one: ReturnType<typeof run>, two: ReturnType<typeof run>, id: string) =>
      replicaResult(spec, one, two, FULL, 5).metrics.find((m) => m.id === `replicas.loss.${id}`);
    expect(spec.metrics.map((m) => m.id).slice(0, 3)).toEqual(['get-lean.c16.rps', 'get.c16.rps', 'pullMBps']);
    const atEdge = loss(run(1000, 200), run(900, 180), 'get-lean.c16.rps');
    expect(atEdge?.ours).toBeCloseTo(10, 9);
    expect(atEdge?.verdict).toBe('pass');
    expect(loss(run(1000, 200), run(899, 180), 'get-lean.c16.rps')?.verdict).toBe('miss');
    expect(loss(run(1000, 200), run(900, 179.9), 'pullMBps')?.verdict).toBe('miss');
    expect(loss(run(1000, 200), run(900, 180), 'pullMBps')?.verdict).toBe('pass');
    // two replicas faster than one: a negative loss, a pass
    expect(loss(run(1000, 200), run(1500, 250), 'get-lean.c16.rps')?.ours).toBeCloseTo(-50, 9);
    // the node:http client's row: the loss is reported, with no verdict
    const http = loss(run(1000, 200, undefined, 800), run(900, 180, undefined, 600), 'get.c16.rps');
    expect(http?.ours).toBeCloseTo(25, 9);
    expect(http?.verdict).toBe('n/a');
    // a failed run on either side: no loss, never a pass
    const failed = replicaResult(spec, run(1000, 200), run(900, 180, 'VerifyError: lost'), FULL, 5);
    expect(failed.metrics.find((m) => m.id === 'replicas.loss.get-lean.c16.rps')?.verdict).toBe('n/a');
    expect(failed.errors.ours).toContain('two: VerifyError: lost');
  });

  it('tells what sharing the host costs from what sharing the bucket and metadata costs, by the control run', () => {
    const spec = s3ReplicaSteps(FULL, Buffer.alloc(16));
    const run = (rps: number, mbps: number, error?: string) => replicaRun(spec, rps, mbps, error);
    const rows = (apart: ReturnType<typeof run> | undefined) =>
      new Map(replicaResult(spec, run(1000, 400), run(800, 380), FULL, 5, apart).metrics.map((m) => [m.id, m]));
    // two processes sharing nothing serve 850 GETs/s: sharing the host costs 15 %, sharing the rest 5.9 %
    const got = rows(run(850, 360));
    expect(got.get('replicas.apart.get-lean.c16.rps')?.ours).toBe(850);
    expect(got.get('replicas.apartLoss.get-lean.c16.rps')?.ours).toBeCloseTo(15, 9);
    expect(got.get('replicas.coordination.get-lean.c16.rps')?.ours).toBeCloseTo(100 * (1 - 800 / 850), 9);
    // replicas faster than the control: sharing costs nothing (a negative loss)
    expect(got.get('replicas.coordination.pullMBps')?.ours).toBeCloseTo(100 * (1 - 380 / 360), 9);
    // the target row is the same with or without the control, and the control rows carry no target
    expect(got.get('replicas.loss.get-lean.c16.rps')?.ours).toBeCloseTo(20, 9);
    expect(got.get('replicas.loss.get-lean.c16.rps')?.verdict).toBe('miss');
    expect(got.get('replicas.coordination.get-lean.c16.rps')?.verdict).toBe('n/a');
    // without the control, or with a failed one, its rows are empty and the failure is reported
    expect(rows(undefined).get('replicas.coordination.get-lean.c16.rps')?.ours).toBeUndefined();
    const failed = replicaResult(spec, run(1000, 400), run(800, 380), FULL, 5, run(850, 360, 'VerifyError: lost'));
    expect(failed.metrics.find((m) => m.id === 'replicas.apartLoss.pullMBps')?.ours).toBeUndefined();
    expect(failed.errors.ours).toBe('two sharing nothing: VerifyError: lost');
  });

  it("divides each process's CPU by the GETs made and the GiB pulled on one replica, and models N replicas", () => {
    const spec = s3ReplicaSteps(FULL, Buffer.alloc(16));
    const figures: Record<string, number> = {
      'get.c16.rps': 1000,
      pullMBps: 200,
      'get.c16.requests': 10_000,
      'cpu.get.ours': 2,
      'cpu.get.postgres': 1,
      'cpu.get.s3': 0,
      // five pulls of the full run's 1 GiB blob
      'cpu.pull.ours': 10,
      'cpu.pull.postgres': 0,
      'cpu.pull.s3': 2.5,
    };
    const run = {
      id: spec.id,
      title: spec.title,
      description: spec.description,
      order: ['ours' as const],
      metrics: spec.metrics.map((m) => metric(m, figures[m.id], undefined)),
      resources: {},
      errors: {},
    };
    const rows = new Map(replicaResult(spec, run, run, FULL, 5).metrics.map((m) => [m.id, m.ours]));
    expect(rows.get('cost.get.ours')).toBeCloseTo(200, 9);
    expect(rows.get('cost.get.postgres')).toBeCloseTo(100, 9);
    expect(rows.get('cost.pull.ours')).toBeCloseTo(2, 9);
    expect(rows.get('cost.pull.s3')).toBeCloseTo(0.5, 9);
    expect(rows.get('model.get.postgresCore')).toBeCloseTo(10_000, 6);
    expect(rows.get('model.get.1')).toBeCloseTo(5_000, 6);
    expect(rows.get('model.get.4')).toBeCloseTo(20_000, 6);
    expect(rows.get('model.pull.2')).toBeCloseTo(1, 9);
    // the same figures on the two-replica side give the same unit costs there
    expect(rows.get('costTwo.get.ours')).toBeCloseTo(200, 9);
    // A run that failed measures nothing: no cost and no model.
    const failed = replicaResult(spec, { ...run, errors: { ours: 'lost' } }, run, FULL, 5);
    expect(failed.metrics.find((m) => m.id === 'model.get.4')?.ours).toBeUndefined();
  });
});
