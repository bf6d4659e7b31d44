import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
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

describe.skipIf(!peerAvailable('docker-registry') || !peerAvailable('skopeo'))('bench harness, quick run', () => {
  it('runs every registry phase against both registries and reports a figure for each of them', async () => {
    expect(existsSync(join(ROOT, 'dist/cli/main.js')), 'run `npm run build` first').toBe(true);
    const tsc = await execa(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'bench/tsconfig.json'], { cwd: ROOT, reject: false, all: true });
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
        expect.arrayContaining(['sha256', 'loopback.upload.discard', 'loopback.upload.hash', 'loopback.upload.store', 'loopback.download.hash']),
      );
      for (const c of report.ceilings) expect(c.value, c.id).toBeGreaterThan(0);

      // One catalog phase per repository count of the quick sizes.
      expect(report.phases.map((p) => p.id)).toEqual(['large-blob', 'manifests', 'small-blobs', 'skopeo', 'repeat', 'catalog-200', 'catalog-1000']);
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
      expect(largeIds).toEqual(expect.arrayContaining(['pullShareOfCeiling', 'pullCeilingMBps', 'pushMonoShareOfStore', 'storeCeilingMBps']));
      expect(report.summary.find((m) => m.id === 'peakRssMiB')?.ours).toBeGreaterThan(0);
      // The report a person reads went to stdout, with every table.
      expect(run.stdout).toContain('## Ceilings of this machine');
      expect(run.stdout).toContain('Peak RSS over the whole run');
    } finally {
      await rm(workDir as string, { recursive: true, force: true });
    }
  });
});
