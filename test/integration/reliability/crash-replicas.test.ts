/**
 * The crash harness on two replicas behind Traefik (helpers/crash-replicas.ts): two `regctl serve` on one S3 bucket
 * (versitygw) and one PostgreSQL store, the workload through the real Traefik, one replica killed at random at the
 * end of each life and restarted while the other keeps serving. The invariants are the single server's: nothing
 * acknowledged lost, deletes stay deleted, a GC sweeps only what its report lists, the store checks clean at the end.
 *
 * REGCTL_TEST_PLANT=own-metadata gives each replica start its own SQLite store instead of the shared PostgreSQL
 * (not set in CI): the replicas then disagree, and the run must report violations.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { peerAvailable } from '../../helpers/peers.js';
import { postgresAvailable, startPostgres, type PostgresCluster } from '../../helpers/postgres.js';
import { builtCliPresent } from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { runReplicaCrashHarness } from './helpers/crash-replicas.js';
import { freshS3PostgresStorage, type CrashStorage } from './helpers/crash-storage.js';
import { seedFromEnv } from './helpers/rng.js';

const PLANT = process.env.REGCTL_TEST_PLANT ?? '';
// Replay a run with CRASH_SEED=<seed printed below>.
const seed = seedFromEnv('CRASH_SEED');
const ready = builtCliPresent() && versitygwAvailable() && postgresAvailable() && peerAvailable('traefik');
let dir: string | undefined;
let s3: S3Server | undefined;
let pg: PostgresCluster | undefined;

afterAll(async () => {
  await s3?.stop();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The plant: every start on a store of its own (a fresh SQLite file), so replicas do not share what they know. */
function ownMetadata(storage: CrashStorage, root: string): CrashStorage {
  let starts = 0;
  return {
    ...storage,
    serveArgs: () => {
      const args = storage.serveArgs();
      const at = args.indexOf('--metadata');
      args.splice(at, 4, '--metadata', `sqlite:${join(root, `own-${starts++}.sqlite`)}`);
      return args;
    },
  };
}

describe.skipIf(!ready)(
  'crash consistency on two replicas behind Traefik (S3 + PostgreSQL; needs npm run build)',
  () => {
    it(
      'keeps every acknowledged write across 20 kills of one replica at a time, the other serving',
      { timeout: 900_000 },
      async () => {
        dir = await mkdtemp(join(tmpdir(), 'regctl-crash-replicas-'));
        [s3, pg] = await Promise.all([startVersitygw(), startPostgres()]);
        const { storage: shared, bucket } = await freshS3PostgresStorage(dir, s3, pg);
        const storage = PLANT === 'own-metadata' ? ownMetadata(shared, dir) : shared;
        console.log(`crash harness (2 replicas) seed ${seed} (replay with CRASH_SEED=${seed}), bucket ${bucket}`);
        const report = await runReplicaCrashHarness({
          dir,
          replicas: 2,
          kills: 20,
          seed,
          storage,
          lifeMs: [1000, 4000],
          progress: (l) => console.log(l),
        });
        console.log(JSON.stringify({ ...report, violations: report.violations.length }, null, 2));
        if (report.violations.length > 0) console.log(report.violations.slice(0, 20).join('\n'));
        expect(report.violations).toEqual([]);
        // Both replicas died and came back, and the run did enough of each kind of work to mean something.
        expect(Math.min(...report.killsOf)).toBeGreaterThan(0);
        expect(report.acknowledged.image).toBeGreaterThan(30);
        expect(report.acknowledged.blobChunked).toBeGreaterThan(0);
        expect(report.acknowledged.deleteByDigest + report.acknowledged.deleteByTag).toBeGreaterThan(0);
        expect(report.acknowledged.gc).toBeGreaterThan(0);
        expect(report.interrupted).toBeGreaterThan(0);
      },
    );
  },
);
