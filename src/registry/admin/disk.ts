import { statfs } from 'node:fs/promises';
import { sendJson } from '../http/context.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/disk → `{ freeBytes, totalBytes }` of the filesystem holding the data directory, as the
 * registry itself sees it (inside a container, that is the data volume, whatever backs it). `null` values
 * for storage without a local filesystem.
 */
export const diskModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'disk',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      if (!services.dataDir) {
        sendJson(ctx, 200, { freeBytes: null, totalBytes: null });
        return;
      }
      const s = await statfs(services.dataDir);
      sendJson(ctx, 200, { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize });
    },
  });
