import { hostname } from 'node:os';
import { VERSION } from '../../common/version.js';
import type { IndexSnapshot } from '../backup/create.js';
import { RegistryError } from '../errors.js';
import { sendStream } from '../http/context.js';
import type { AdminModule, AdminRequest } from './types.js';

const FENCE_TTL_SECONDS = 60;
const DRAIN_TIMEOUT_MS = 30_000;
/**
 * GET /admin/v1/backup, or POST with `{ base: { id, createdAt }, excludeBlobs: [digest…] }` for an incremental
 * backup → a tar stream (see backup/manifest.ts). Writes are fenced only while the index is copied: the
 * fence goes up, writes already past it finish, tags and revisions are copied from memory, the fence comes
 * down; then the links are derived and the blobs stream while the registry serves. Headers: `X-Regctl-Backup-Id`, `X-Regctl-Backup-Bytes` (file bytes),
 * `X-Regctl-Backup-Fence-Ms`. One backup at a time, and never while a GC runs (each refuses with 429 while
 * the other runs), so no blob the backup lists can vanish before it is copied. On replicas sharing a metadata
 * store the backup holds the store's MAINTENANCE_LEASE while it streams, which a sweeping GC on any replica needs
 * too; its snapshot of the index is one read of the store, so writes on the other replicas need no fence to keep
 * it whole.
 */
export const BACKUP_HOLDER_PREFIX = 'backup on ';
/** The lease of the whole cluster that a backup and a sweeping GC hold in turn (the local maintenance lock's). */
export const MAINTENANCE_LEASE = 'maintenance';
export const backupModule: AdminModule = (register) => {
  const handler = async ({ ctx, services, json }: AdminRequest, withBody: boolean): Promise<void> => {
    let exclude: Set<string> | undefined;
    let base: { id: string; createdAt: string } | null = null;
    if (withBody) {
      const body = await json();
      const ex = body.excludeBlobs;
      const b = body.base;
      if (ex !== undefined && (!Array.isArray(ex) || !ex.every((d) => typeof d === 'string'))) {
        throw new RegistryError(
          'INVALID_REQUEST',
          { field: 'excludeBlobs', reason: 'an array of digests' },
          { message: 'invalid backup request' },
        );
      }
      if (b !== undefined && b !== null) {
        const o = b as Record<string, unknown>;
        if (typeof b !== 'object' || typeof o.id !== 'string' || typeof o.createdAt !== 'string') {
          throw new RegistryError(
            'INVALID_REQUEST',
            { field: 'base', reason: '{ id, createdAt } of the previous backup' },
            { message: 'invalid backup request' },
          );
        }
        base = { id: o.id, createdAt: o.createdAt };
      }
      if (ex && ex.length > 0 && !base) {
        throw new RegistryError(
          'INVALID_REQUEST',
          { field: 'base', reason: 'excludeBlobs needs the base backup it refers to' },
          { message: 'invalid backup request' },
        );
      }
      exclude = new Set(ex);
    }
    const release = services.maintenance.tryAcquire('backup');
    if (!release) {
      const reason =
        services.maintenance.holder === 'backup'
          ? 'a backup is already running'
          : 'a garbage collection is running; back up after it';
      throw new RegistryError('TOOMANYREQUESTS', { reason }, { headers: { 'Retry-After': '10' } });
    }
    const lease = await services.store.index
      .tryLease(
        MAINTENANCE_LEASE,
        `${BACKUP_HOLDER_PREFIX}${hostname()} (pid ${process.pid}), started ${new Date().toISOString()}`,
      )
      .catch((err: unknown) => {
        release();
        throw err;
      });
    if ('heldBy' in lease) {
      release();
      throw new RegistryError(
        'TOOMANYREQUESTS',
        { reason: 'a garbage collection is running; back up after it', runningGc: lease.heldBy },
        { headers: { 'Retry-After': '10' } },
      );
    }
    try {
      // Loaded on the first backup (tar-stream among them), before the fence: a registry that never backs up never
      // holds them.
      const { backupStream, buildManifest, captureState, snapshotIndex } = await import('../backup/create.js');
      const fenceStart = Date.now();
      services.fence.set(FENCE_TTL_SECONDS);
      let snapshot: IndexSnapshot;
      try {
        if (!(await services.fence.drain(DRAIN_TIMEOUT_MS))) {
          throw new RegistryError(
            'UNAVAILABLE',
            { reason: 'writes in progress did not finish' },
            { headers: { 'Retry-After': '10' } },
          );
        }
        snapshot = await snapshotIndex(services.store);
      } finally {
        services.fence.clear();
      }
      const fenceMs = Date.now() - fenceStart;
      const state = await captureState(services.store, snapshot);
      services.log('info', 'backup state captured', { fenceMs, files: state.files.length, blobs: state.blobs.length });
      const built = await buildManifest(services.store, state, { exclude, base, fenceMs, regctlVersion: VERSION });
      const bytes = built.manifest.files.reduce((n, f) => n + f.size, 0);
      const stream = backupStream(services.store, state, built);
      ctx.res.on('close', () => stream.destroy());
      await sendStream(
        ctx,
        200,
        {
          'Content-Type': 'application/x-tar',
          'X-Regctl-Backup-Id': built.manifest.id,
          'X-Regctl-Backup-Bytes': String(bytes),
          'X-Regctl-Backup-Fence-Ms': String(fenceMs),
        },
        stream,
      );
      services.log('info', 'backup streamed', {
        id: built.manifest.id,
        bytes,
        blobs: built.blobs.length,
        missing: built.manifest.missingBlobs.length,
      });
    } finally {
      release();
      await lease.lease
        .release()
        .catch((err: unknown) =>
          services.log('error', 'backup lease release failed', { error: (err as Error).message }),
        );
    }
  };
  register({ method: 'GET', path: 'backup', adminOnly: true, handler: (r) => handler(r, false) });
  register({ method: 'POST', path: 'backup', adminOnly: true, handler: (r) => handler(r, true) });
};
