import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

import type { BenchReport } from '../../bench/lib/model.js';
import { peerAvailable } from '../helpers/peers.js';

/**
 * `npm run bench -- --quick` end to end, against our registry and the reference: every registry phase runs for
 * both, and verifies what it gets on the way (status codes, Docker-Content-Digest, pulled bytes hashed, the
 * layouts skopeo writes); a failed verification makes the run exit non-zero. No speed is checked here: the
 * figures belong to `npm run bench` and docs/benchmarks.md. This keeps the harness itself working.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The quick run holds two bcrypt passes and the cache-off runs: a few minutes on a quiet machine, more under load.
describe.skipIf(!peerAvailable('docker-registry') || !peerAvailable('skopeo'))('bench harness, quick run', () => {
  it('runs every registry phase against both registries and reports a figure for each of them', async () => {
    expect(existsSync(join(ROOT, 'dist/cli/main.js')), 'run `npm run build` first').toBe(true);
    const tsc = await execa(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'bench/tsconfig.json'], {
      cwd: ROOT,
      reject: false,
      all: true,
    });
    expect(tsc.exitCode, tsc.all).toBe(0);

    const only = 'ceilings,large-blob,manifests,small-blobs,skopeo,repeat,catalog';
    const run = await execa(process.execPath, ['bench/out/build/run.js', '--quick', '--no-write', '--only', only], {
      cwd: ROOT,
      reject: false,
      env: { NO_COLOR: '1' },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    const workDir = /work dir (\S+),/.exec(run.stderr)?.[1];
    expect(workDir, run.stderr).toBeDefined();
    try {
      const report = JSON.parse(await readFile(join(workDir as string, 'report.json'), 'utf8')) as BenchReport;
      expect(report.mode).toBe('quick');
      expect(report.ceilings.map((c) => c.id)).toEqual(
        expect.arrayContaining([
          'sha256',
          'loopback.upload.discard',
          'loopback.upload.hash',
          'loopback.upload.store',
          'loopback.download.hash',
        ]),
      );
      for (const c of report.ceilings) expect(c.value, c.id).toBeGreaterThan(0);

      // The headline pass (bcrypt cost 5) with the cache-off runs of ours, the auth-bound phases again at cost 10,
      // then one catalog phase per repository count of the quick sizes.
      expect(report.phases.map((p) => p.id)).toEqual([
        'large-blob',
        'manifests',
        'manifests-nocache',
        'small-blobs',
        'small-blobs-nocache',
        'skopeo',
        'repeat',
        'large-blob-bcrypt10',
        'manifests-bcrypt10',
        'manifests-nocache-bcrypt10',
        'small-blobs-bcrypt10',
        'small-blobs-nocache-bcrypt10',
        'catalog-200',
        'catalog-1000',
      ]);
      for (const phase of report.phases) {
        expect(phase.errors, phase.id).toEqual({});
        expect(phase.metrics.length, phase.id).toBeGreaterThan(0);
        for (const m of phase.metrics) {
          expect(Number.isFinite(m.ours), `${phase.id}/${m.id}: ours`).toBe(true);
          expect(Number.isFinite(m.ref), `${phase.id}/${m.id}: reference`).toBe(true);
        }
        expect(phase.resources.ours?.peakRssMiB, phase.id).toBeGreaterThan(0);
        expect(phase.resources.ref?.peakRssMiB, phase.id).toBeGreaterThan(0);
      }

      // The figures held against ceilings measured beside them are there for both registries.
      const large = report.phases.find((p) => p.id === 'large-blob');
      const largeIds = large?.metrics.map((m) => m.id) ?? [];
      expect(largeIds).toEqual(
        expect.arrayContaining(['pullShareOfCeiling', 'pullCeilingMBps', 'pushMonoShareOfStore', 'storeCeilingMBps']),
      );
      // The lifetime peak covers every start of ours, the start on the largest catalog volume among them.
      const peak = report.summary.find((m) => m.id === 'peakRssMiB');
      expect(peak?.ours).toBeGreaterThan(0);
      expect(['pass', 'miss']).toContain(peak?.verdict);
      const starts = (report.lifetimePeaks ?? []).filter((p) => p.server === 'ours' && p.config === 'default');
      expect(starts.map((p) => p.where)).toContain('start on 1,000 repositories, stopped once healthy');
      expect(peak?.ours).toBe(Math.max(...starts.map((p) => p.peakMiB)));
      expect(report.summary.find((m) => m.id === 'startupPeakRssMiB')?.ours).toBeGreaterThan(0);
      // The report a person reads went to stdout, with every table.
      expect(run.stdout).toContain('## Ceilings of this machine');
      expect(run.stdout).toContain('## With our credential cache off');
      expect(run.stdout).toContain('## What each side has in its favour');
      expect(run.stdout).toContain('## Lifetime peaks');
    } finally {
      await rm(workDir as string, { recursive: true, force: true });
    }
  }, 900_000);

  it('fails the run when a registry loses a blob it acknowledged', async () => {
    expect(existsSync(join(ROOT, 'dist/cli/main.js')), 'run `npm run build` first').toBe(true);
    // An --ours-root whose bin/regctl.js runs the real registry behind a proxy that loses the first blob pushed.
    const lossyRoot = await mkdtemp(join(tmpdir(), 'regctl-bench-lossy-'));
    await mkdir(join(lossyRoot, 'bin'));
    await copyFile(join(ROOT, 'test/integration/bench-lossy-registry.mjs'), join(lossyRoot, 'bin/regctl.js'));
    try {
      const run = await execa(
        process.execPath,
        ['bench/out/build/run.js', '--quick', '--no-write', '--only', 'large-blob', '--ours-root', lossyRoot],
        {
          cwd: ROOT,
          reject: false,
          env: { NO_COLOR: '1', LOSSY_REAL_ROOT: ROOT },
        },
      );
      expect(run.exitCode, run.stderr).toBe(1);
      expect(run.stderr).toMatch(
        /failed phase run\(s\):\n {2}large-blob\/ours: VerifyError: GET blob sha256:[0-9a-f]{64}: HTTP 404/,
      );
      const workDir = /work dir (\S+),/.exec(run.stderr)?.[1] as string;
      const report = JSON.parse(await readFile(join(workDir, 'report.json'), 'utf8')) as BenchReport;
      const oursLog = await readFile(join(workDir, 'ours.log'), 'utf8');
      await rm(workDir, { recursive: true, force: true });
      // The server that ran was the lossy one, and the blob it lost is the one the harness failed to pull.
      const lost = /lossy registry: losing (sha256:[0-9a-f]{64})/.exec(oursLog)?.[1];
      expect(lost, oursLog).toBeDefined();
      expect(run.stderr).toContain(`large-blob/ours: VerifyError: GET blob ${lost as string}: HTTP 404`);
      const large = report.phases.find((p) => p.id === 'large-blob');
      expect(large?.errors.ours).toMatch(/^VerifyError: GET blob sha256:[0-9a-f]{64}: HTTP 404, expected 200/);
      expect(large?.errors.ref).toBeUndefined();
      // No figure of the run that failed is reported as ours.
      expect(large?.metrics.every((m) => m.ours === undefined)).toBe(true);
    } finally {
      await rm(lossyRoot, { recursive: true, force: true });
    }
  });
});
