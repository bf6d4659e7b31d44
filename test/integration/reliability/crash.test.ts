import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCrashHarness } from './helpers/crash-harness.js';
import { seedFromEnv } from './helpers/rng.js';
import { builtCliPresent } from '../../helpers/serve-process.js';

// Replay a run with CRASH_SEED=<seed printed below>.
const seed = seedFromEnv('CRASH_SEED');
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!builtCliPresent())('crash consistency: regctl serve under SIGKILL (needs npm run build)', () => {
  it(
    'keeps every acknowledged write, never serves corrupt data and restarts clean across 50 kills',
    { timeout: 600_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'regctl-crash-'));
      console.log(`crash harness seed ${seed} (replay with CRASH_SEED=${seed}), data in ${dir}`);
      const report = await runCrashHarness({ dir, kills: 50, seed, progress: (l) => console.log(l) });
      console.log(JSON.stringify({ ...report, violations: report.violations.length }, null, 2));
      // A run with violations keeps its data directory (storage, journal, metadata) for inspection.
      if (report.violations.length === 0) dirs.push(dir);
      else console.log(`data kept for inspection in ${dir}`);
      expect(report.violations).toEqual([]);
      expect(report.acknowledged.image).toBeGreaterThan(50);
      expect(report.acknowledged.blobChunked).toBeGreaterThan(0);
      expect(report.acknowledged.mount).toBeGreaterThan(0);
      expect(report.acknowledged.deleteByDigest + report.acknowledged.deleteByTag).toBeGreaterThan(0);
      expect(report.acknowledged.gc).toBeGreaterThan(0);
      // The GC rules were exercised: reports read, and blobs found missing that a report lists as swept.
      expect(report.gcOutcomes.done).toBeGreaterThan(0);
      expect(report.blobsGoneByGc.listed).toBeGreaterThan(0);
      expect(report.interrupted).toBeGreaterThan(0);
    },
  );
});
