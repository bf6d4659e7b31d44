import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import { runGc } from '../storage/maintenance.js';
import { backupInProgress } from './backup.js';
import type { AdminModule } from './types.js';

let running: Promise<unknown> | undefined;
let sweeping = false;

/** A GC that deletes (not a dry run) is running: a backup must not start (it would copy blobs being swept). */
export function gcSweeping(): boolean {
  return sweeping;
}

/**
 * POST /admin/v1/gc { dryRun?, deleteUntagged?, graceSeconds? } → { deleted, kept, freedBytes,
 * repositoriesRemoved, manifestsRemoved, uploadsPurged, dryRun }. One GC at a time.
 */
export const gcModule: AdminModule = (register) =>
  register({
    method: 'POST',
    path: 'gc',
    adminOnly: true,
    handler: async ({ ctx, services, json }) => {
      const body = await json();
      const bool = (k: string): boolean | undefined => {
        const v = body[k];
        if (v === undefined) return undefined;
        if (typeof v !== 'boolean') throw new RegistryError('INVALID_REQUEST', { field: k, reason: 'must be a boolean' }, { message: 'invalid gc request' });
        return v;
      };
      const grace = body.graceSeconds;
      if (grace !== undefined && (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0)) {
        throw new RegistryError('INVALID_REQUEST', { field: 'graceSeconds', reason: 'must be a non-negative number' }, { message: 'invalid gc request' });
      }
      if (running) throw new RegistryError('TOOMANYREQUESTS', { reason: 'a garbage collection is already running' }, { headers: { 'Retry-After': '5' } });
      const dryRun = bool('dryRun') ?? false;
      if (!dryRun) await services.fence.waitWritable();
      if (!dryRun && backupInProgress()) {
        throw new RegistryError('TOOMANYREQUESTS', { reason: 'a backup is running; run the garbage collection after it' }, { headers: { 'Retry-After': '30' } });
      }
      const job = runGc(services.store, {
        dryRun,
        deleteUntagged: bool('deleteUntagged') ?? false,
        graceSeconds: grace as number | undefined,
        uploadPurgeAgeMs: services.uploadPurgeAgeMs,
      });
      running = job;
      sweeping = !dryRun;
      try {
        const report = await job;
        services.log('info', 'garbage collection', { dryRun, freedBytes: report.freedBytes, deleted: report.deleted.length });
        sendJson(ctx, 200, report);
      } finally {
        running = undefined;
        sweeping = false;
      }
    },
  });
