import { sendJson } from '../http/context.js';
import { computeUsage } from '../storage/usage.js';
import type { AdminModule } from './types.js';

/** GET /admin/v1/usage → { totalBytes, blobCount, repositories: [...], reclaimableBytes } */
export const usageModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'usage',
    adminOnly: true,
    handler: async ({ ctx, services }) => sendJson(ctx, 200, await computeUsage(services.store)),
  });
