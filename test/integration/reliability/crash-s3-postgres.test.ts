/**
 * The crash harness (crash.test.ts) on the replicas' configuration: `regctl serve` on an S3 bucket (versitygw)
 * with its metadata in PostgreSQL (a throwaway cluster), killed 50 times under the same workload, with the same
 * invariants: an acknowledged blob or manifest is never lost, deletes stay deleted, a GC sweeps only what its
 * report lists as unreferenced and older than the grace window, and the offline fsck finds nothing corrupt.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../../helpers/postgres.js';
import { builtCliPresent } from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { runCrashHarness } from './helpers/crash-harness.js';
import { freshS3PostgresStorage } from './helpers/crash-storage.js';
import { seedFromEnv } from './helpers/rng.js';

// Replay a run with CRASH_SEED=<seed printed below>.
const seed = seedFromEnv('CRASH_SEED');
const ready = builtCliPresent() && versitygwAvailable() && postgresAvailable();
let dir: string | undefined;
let s3: S3Server | undefined;
let pg: PostgresCluster | undefined;

afterAll(async () => {
  await s3?.stop();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!ready)(
  'crash consistency on S3 + PostgreSQL: regctl serve under SIGKILL (needs npm run build)',
  () => {
    it(
      'keeps every acknowledged write, never serves corrupt data and restarts clean across 30 kills',
      { timeout: 900_000 },
      async () => {
        dir = await mkdtemp(join(tmpdir(), 'regctl-crash-s3-'));
        s3 = await startVersitygw();
        pg = await startPostgres();
        const { storage, bucket } = await freshS3PostgresStorage(dir, s3, pg);
        console.log(`crash harness (s3+postgres) seed ${seed} (replay with CRASH_SEED=${seed}), bucket ${bucket}`);
        // Lives longer than on a data directory: a push through S3 and PostgreSQL takes several times as long, and
        // with the filesystem's lives nearly every push and GC would be cut by the kill.
        const report = await runCrashHarness({
          dir,
          kills: 30,
          seed,
          storage,
          lifeMs: [1000, 4000],
          progress: (l) => console.log(l),
        });
        console.log(JSON.stringify({ ...report, violations: report.violations.length }, null, 2));
        expect(report.violations).toEqual([]);
        expect(report.acknowledged.image).toBeGreaterThan(50);
        expect(report.acknowledged.blobChunked).toBeGreaterThan(0);
        expect(report.acknowledged.mount).toBeGreaterThan(0);
        expect(report.acknowledged.deleteByDigest + report.acknowledged.deleteByTag).toBeGreaterThan(0);
        expect(report.acknowledged.gc).toBeGreaterThan(0);
        expect(report.gcOutcomes.done).toBeGreaterThan(0);
        // A GC walks the bucket, so most are cut by the kill here; the final one, a grace window after the last
        // reads, runs to the end, and the last verification finds what its report lists as swept gone.
        expect(report.blobsGoneByGc.listed).toBeGreaterThan(0);
        expect(report.interrupted).toBeGreaterThan(0);
      },
    );
  },
);
