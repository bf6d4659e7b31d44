import { hostname } from 'node:os';
import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import type { GcProgress, GcReport } from '../../common/admin-api.js';
import { GC_DEFAULTS } from '../../common/gc-defaults.js';
import { runGc } from '../storage/gc.js';
import type { RegistryStore } from '../storage/store.js';
import type { AdminModule, AdminServices } from './types.js';
import type { Lease } from '../metadata/lease.js';
import { BACKUP_HOLDER_PREFIX, MAINTENANCE_LEASE } from './backup.js';

/** The running or the last garbage collection, as `GET /admin/v1/gc` shows it. */
export interface GcJob {
  id: number;
  state: 'running' | 'done' | 'failed';
  dryRun: boolean;
  deleteUntagged: boolean;
  startedAt: string;
  finishedAt?: string;
  progress: GcProgress;
  report?: GcReport;
  error?: string;
}

/** The running or last job of each registry (keyed by its store, so that servers in one process stay apart). */
const jobs = new WeakMap<RegistryStore, GcJob>();
let nextId = 1;

/**
 * On a shared store (replicas), the job is also published in the store's `meta` row of this name, so that
 * `GET /admin/v1/gc` on any replica shows it: behind a load balancer the polls of a client land anywhere.
 */
export const GC_JOB_KEY = 'gc-job';
/** How often a running job's progress is published, at most. */
const PUBLISH_EVERY_MS = 1000;

/** A job id no other replica hands out: milliseconds since the epoch, then three random digits. */
function newJobId(shared: boolean): number {
  return shared ? Date.now() * 1000 + Math.floor(Math.random() * 1000) : nextId++;
}

function parseJob(text: string | undefined): GcJob | undefined {
  if (text === undefined) return undefined;
  try {
    const job = JSON.parse(text) as GcJob;
    return typeof job.id === 'number' && typeof job.state === 'string' ? job : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The job `GET /admin/v1/gc` shows: this process's, or on a shared store the newest published by any replica. A
 * published job still "running" whose runner holds no lease any more (it died) is shown failed, saying so.
 */
async function visibleJob(store: RegistryStore): Promise<GcJob | undefined> {
  const local = jobs.get(store);
  if (!store.index.shared || local?.state === 'running') return local;
  const published = parseJob(await store.index.getMeta(GC_JOB_KEY));
  if (!published || (local && Date.parse(local.startedAt) >= Date.parse(published.startedAt))) return local;
  if (published.state !== 'running') return published;
  const probe = await store.index.tryLease('gc', 'a status probe');
  if ('heldBy' in probe) return published;
  await probe.lease.release();
  // The runner may have finished between the two reads: it publishes its end before it lets the lease go.
  const again = parseJob(await store.index.getMeta(GC_JOB_KEY));
  if (again && again.id === published.id && again.state !== 'running') return again;
  return { ...published, state: 'failed', error: 'the replica running it stopped before it finished' };
}

/** How a job names itself to a GC refused while it runs, on this replica or another. */
function describeJob(job: GcJob): string {
  return `${job.dryRun ? 'dry run' : 'job'} ${job.id} on ${hostname()} (pid ${process.pid}), started ${job.startedAt}`;
}

/**
 * 409: the answer to a GC asked for while one runs anywhere, naming the one that runs when it is known; 429 when
 * what holds the lease is a backup (on any replica).
 */
function gcRunning(runningGc: string | undefined): RegistryError {
  if (runningGc?.startsWith(BACKUP_HOLDER_PREFIX))
    return new RegistryError(
      'TOOMANYREQUESTS',
      { reason: 'a backup is running; run the garbage collection after it', runningBackup: runningGc },
      { headers: { 'Retry-After': '30' } },
    );
  return new RegistryError(
    'GC_RUNNING',
    { reason: 'a garbage collection is already running', ...(runningGc ? { runningGc } : {}) },
    { headers: { 'Retry-After': '30' } },
  );
}

/**
 * The cluster's leases of a GC: `gc` (one GC at a time in the whole cluster: replicas sharing a metadata store
 * share it) and, for a sweep, MAINTENANCE_LEASE (no backup on any replica meanwhile). Refused: what was taken is
 * let go, with `releaseMaintenance`, and the 409 or 429 names the holder.
 */
async function takeLeases(
  services: AdminServices,
  job: GcJob,
  releaseMaintenance: () => void,
): Promise<{ release: () => void; lost: AbortSignal }> {
  const { index } = services.store;
  const held: Lease[] = [];
  const letGo = () => {
    for (const lease of held)
      lease
        .release()
        .catch((err: unknown) =>
          services.log('error', 'garbage collection lease release failed', { error: (err as Error).message }),
        );
  };
  const names: [string, string][] = [['gc', describeJob(job)]];
  if (!job.dryRun) names.push([MAINTENANCE_LEASE, `gc sweep: ${describeJob(job)}`]);
  for (const [name, holder] of names) {
    const attempt = await index.tryLease(name, holder).catch((err: unknown) => {
      releaseMaintenance();
      letGo();
      throw err;
    });
    if ('heldBy' in attempt) {
      releaseMaintenance();
      letGo();
      throw gcRunning(attempt.heldBy);
    }
    held.push(attempt.lease);
  }
  return { release: letGo, lost: AbortSignal.any(held.map((l) => l.lost)) };
}

/** The body of `POST /admin/v1/gc`, checked: a wrong type is a 400 naming the field. */
function parseGcRequest(body: Record<string, unknown>): {
  dryRun: boolean;
  deleteUntagged: boolean;
  wait: boolean;
  grace: number | undefined;
} {
  const bool = (k: string): boolean | undefined => {
    const v = body[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean')
      throw new RegistryError(
        'INVALID_REQUEST',
        { field: k, reason: 'must be a boolean' },
        { message: 'invalid gc request' },
      );
    return v;
  };
  const grace = body.graceSeconds;
  if (grace !== undefined && (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0)) {
    throw new RegistryError(
      'INVALID_REQUEST',
      { field: 'graceSeconds', reason: 'must be a non-negative number' },
      { message: 'invalid gc request' },
    );
  }
  const dryRun = bool('dryRun') ?? false;
  const deleteUntagged = bool('deleteUntagged') ?? GC_DEFAULTS.deleteUntagged;
  const wait = bool('wait') ?? true;
  return { dryRun, deleteUntagged, wait, grace };
}

/**
 * POST /admin/v1/gc { dryRun?, deleteUntagged?, graceSeconds?, wait? } runs one GC at a time.
 * - `wait` true (the default): answers 200 with the report { deleted, kept, freedBytes, repositoriesRemoved,
 *   manifestsRemoved, uploadsPurged, dryRun } when it is done.
 * - `wait` false: answers 202 at once with the job ({ id, state: "running", progress, … }) and `Location`;
 *   GET /admin/v1/gc then shows its progress, and its report once `state` is "done" (or `error` if "failed").
 * A long GC under load need not hold a request open through every proxy on the way. On replicas sharing a
 * metadata store, GET on any of them shows the job (published in the store), so polls may go through a load
 * balancer; a job whose replica died shows as failed.
 *
 * One GC at a time in the whole cluster (the store's `gc` lease: replicas on PostgreSQL share it). A GC asked for
 * while one runs anywhere is refused at once with 409 `GC_RUNNING`, whose detail names the running one
 * (`runningGc`: job, host, pid, start), rather than queued: the running GC already does what the second would, and a
 * queued one would only mark and sweep again what was just collected.
 */
export const gcModule: AdminModule = (register) => {
  register({
    method: 'GET',
    path: 'gc',
    adminOnly: true,
    handler: async ({ ctx, services }) => sendJson(ctx, 200, (await visibleJob(services.store)) ?? { state: 'idle' }),
  });
  register({
    method: 'POST',
    path: 'gc',
    adminOnly: true,
    handler: async ({ ctx, services, json }) => {
      const { dryRun, deleteUntagged, wait, grace } = parseGcRequest(await json());
      const runningHere = (): string | undefined => {
        const job = jobs.get(services.store);
        return job?.state === 'running' ? describeJob(job) : undefined;
      };
      if (runningHere()) throw gcRunning(runningHere());
      if (!dryRun) await services.fence.waitWritable();
      // Checked again: another request may have started a GC while this one waited for the fence.
      if (runningHere()) throw gcRunning(runningHere());
      // A GC that deletes holds the maintenance lock until it is done: a backup must not copy blobs being swept.
      const releaseMaintenance = dryRun ? () => undefined : services.maintenance.tryAcquire('gc-sweep');
      if (!releaseMaintenance) {
        if (services.maintenance.holder === 'gc-sweep') throw gcRunning(runningHere());
        throw new RegistryError(
          'TOOMANYREQUESTS',
          { reason: 'a backup is running; run the garbage collection after it' },
          { headers: { 'Retry-After': '30' } },
        );
      }
      const shared = services.store.index.shared;
      const current: GcJob = {
        id: newJobId(shared),
        state: 'running',
        dryRun,
        deleteUntagged,
        startedAt: new Date().toISOString(),
        progress: { phase: 'mark', done: 0, total: 0 },
      };
      const leases = await takeLeases(services, current, releaseMaintenance);
      let published = 0;
      // One write at a time, in order: a progress write still in flight must not land after the end (each may
      // take a different pool connection), or other replicas would read the job as running with no holder.
      let writes = Promise.resolve();
      const publish = (force: boolean): Promise<void> => {
        if (!shared || (!force && Date.now() - published < PUBLISH_EVERY_MS)) return writes;
        published = Date.now();
        const text = JSON.stringify(current);
        writes = writes.then(() =>
          services.store.index
            .setMeta(GC_JOB_KEY, text)
            .catch((err: unknown) =>
              services.log('warn', 'garbage collection status not shared', { error: (err as Error).message }),
            ),
        );
        return writes;
      };
      const release = () => {
        releaseMaintenance();
        leases.release();
      };
      jobs.set(services.store, current);
      await publish(true);
      const done = runGc(services.store, {
        dryRun,
        deleteUntagged,
        graceSeconds: grace,
        uploadPurgeAgeMs: services.uploadPurgeAgeMs,
        onProgress: (p) => {
          current.progress = p;
          void publish(false);
        },
        signal: leases.lost,
        startedAt: Date.parse(current.startedAt),
      }).then(
        async (report) => {
          current.state = 'done';
          current.report = report;
          current.finishedAt = new Date().toISOString();
          // Published before the lease goes: a replica that finds the lease free then reads the end.
          await publish(true);
          release();
          services.log('info', 'garbage collection', {
            dryRun,
            freedBytes: report.freedBytes,
            deleted: report.deleted.length,
          });
          return report;
        },
        async (err: unknown) => {
          current.state = 'failed';
          current.error = err instanceof Error ? err.message : String(err);
          current.finishedAt = new Date().toISOString();
          await publish(true);
          release();
          services.log('error', 'garbage collection failed', { error: current.error });
          throw err;
        },
      );
      if (!wait) {
        done.catch(() => undefined);
        sendJson(ctx, 202, current, { Location: '/admin/v1/gc' });
        return;
      }
      sendJson(ctx, 200, await done);
    },
  });
};
