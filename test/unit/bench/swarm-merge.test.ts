/**
 * The swarm phase's arithmetic (the one-replica figure is the mean of the runs before and after three; the change
 * is three against that mean) and `--merge` (a phase measured later replaces the saved one of the same id, is
 * marked with its own run, and the page says so).
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mergeIntoSaved } from '../../../bench/lib/merge.js';
import type { BenchReport, PhaseResult } from '../../../bench/lib/model.js';
import { renderMarkdown } from '../../../bench/lib/report.js';
import { swarmMetrics } from '../../../bench/phases/swarm.js';

const phase = (id: string, value: number): PhaseResult => ({
  id,
  title: `Phase ${id}`,
  description: `what ${id} does`,
  order: ['ours'],
  metrics: [
    {
      id: `${id}.x`,
      label: 'x',
      unit: 'MB/s',
      better: 'higher',
      ours: value,
      targets: [],
      evaluations: [],
      verdict: 'n/a',
    },
  ],
  resources: {},
  errors: {},
});

const report = (phases: PhaseResult[], at: string, commit: string): BenchReport =>
  ({
    generatedAt: at,
    mode: 'full',
    durationSeconds: 10,
    machine: {
      cpuModel: 'cpu',
      cores: 2,
      memoryGiB: 24,
      kernel: 'k',
      disk: 'd',
      loadAverageAtStart: [0.1, 0.2, 0.3],
      loadAverageAtEnd: [1.5, 1, 0.5],
      otherWork: 'none',
    },
    versions: { node: 'v20', regctl: '0.1.0', gitCommit: commit, dockerRegistry: '2.8.2' },
    commands: ['old command'],
    settings: {},
    ceilings: [],
    phases,
    summary: [],
  }) as unknown as BenchReport;

describe('swarm phase figures', () => {
  it('compares three replicas with the mean of the one-replica runs before and after', () => {
    const m = swarmMetrics({
      one: { pull: 100, manifest: 1000 },
      three: { pull: 90, manifest: 1320 },
      oneAgain: { pull: 80, manifest: 1200 },
    });
    const by = Object.fromEntries(m.map((x) => [x.id, x.ours]));
    expect(by['swarm.one.pull']).toBe(90);
    expect(by['swarm.three.pull']).toBe(90);
    expect(by['swarm.change.pull']).toBe(0);
    expect(by['swarm.one.manifest']).toBe(1100);
    expect(by['swarm.change.manifest']).toBeCloseTo(20, 10);
    expect(m.find((x) => x.id === 'swarm.one.pull')?.note).toContain('100.0 before, 80.0 after');
  });

  it('leaves a row empty when a run is missing instead of comparing with half the data', () => {
    const m = swarmMetrics({ one: { pull: 100, manifest: 1000 }, three: { pull: 90, manifest: 900 } });
    const by = Object.fromEntries(m.map((x) => [x.id, x.ours]));
    expect(by['swarm.one.pull']).toBeUndefined();
    expect(by['swarm.change.pull']).toBeUndefined();
    expect(by['swarm.three.pull']).toBe(90);
  });
});

describe('bench --merge', () => {
  let root: string | undefined;
  afterEach(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('replaces the saved phase of the same id, appends new ones, keeps the rest, and marks each merged one', async () => {
    root = await mkdtemp(join(tmpdir(), 'regctl-merge-'));
    await mkdir(join(root, 'docs'));
    const saved = report([phase('a', 1), phase('swarm', 2)], '2026-01-01T00:00:00Z', 'old1234');
    await writeFile(join(root, 'docs/benchmarks.json'), JSON.stringify(saved));
    const run = report([phase('swarm', 3), phase('new', 4)], '2026-02-02T00:00:00Z', 'new5678');
    run.commands = ['old command', 'swarm command'];
    const merged = await mergeIntoSaved(run, root);
    expect(merged.generatedAt).toBe('2026-01-01T00:00:00Z');
    expect(merged.phases.map((p) => [p.id, p.metrics[0]?.ours, p.run?.gitCommit])).toEqual([
      ['a', 1, undefined],
      ['swarm', 3, 'new5678'],
      ['new', 4, 'new5678'],
    ]);
    expect(merged.commands).toEqual(['old command', 'swarm command']);
    const page = renderMarkdown(merged, '');
    expect(page).toContain('except the phases marked as measured in a separate run (swarm, new)');
    expect(page).toContain('Measured in a separate `--merge` run (full) on 2026-02-02T00:00:00Z, commit new5678');
    // An unmerged report claims one run and marks nothing.
    const single = renderMarkdown(saved, '');
    expect(single).not.toContain('separate');
  });

  it("replaces the saved lifetime peak of each process the run started again, and appends the run's new ones", async () => {
    root = await mkdtemp(join(tmpdir(), 'regctl-merge-'));
    await mkdir(join(root, 'docs'));
    const saved = report([phase('s3', 1)], '2026-01-01T00:00:00Z', 'old1234');
    saved.lifetimePeaks = [
      { server: 'ours', config: 'default', where: 'registry phases', peakMiB: 100 },
      { server: 'ours', config: 'S3, no auth', where: 'S3 storage', peakMiB: 230 },
      { server: 'ref', config: 'S3, no auth', where: 'S3 storage', peakMiB: 150 },
    ];
    await writeFile(join(root, 'docs/benchmarks.json'), JSON.stringify(saved));
    const run = report([phase('s3', 2)], '2026-02-02T00:00:00Z', 'new5678');
    run.lifetimePeaks = [
      { server: 'ours', config: 'S3, no auth', where: 'S3 storage', peakMiB: 210 },
      { server: 'ref', config: 'S3, no auth', where: 'S3 storage', peakMiB: 160 },
      { server: 'ours', config: 'S3, no auth', where: 'control process 1', peakMiB: 140 },
    ];
    const merged = await mergeIntoSaved(run, root);
    expect(merged.lifetimePeaks?.map((p) => [p.server, p.where, p.peakMiB])).toEqual([
      ['ours', 'registry phases', 100],
      ['ours', 'S3 storage', 210],
      ['ref', 'S3 storage', 160],
      ['ours', 'control process 1', 140],
    ]);
  });
});
