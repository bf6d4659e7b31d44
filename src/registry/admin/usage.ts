import { sendJson } from '../http/context.js';
import { computeUsage } from '../storage/usage.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/usage → { totalBytes, blobCount, repositories: [...], reclaimableBytes }; repositories of the
 * pull-through cache carry `cachedFrom` (their upstream).
 */
export const usageModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'usage',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      const report = await computeUsage(services.store);
      for (const r of report.repositories) {
        const upstream = ctx.proxy?.upstreamOf(r.name);
        if (upstream !== undefined) r.cachedFrom = upstream;
      }
      sendJson(ctx, 200, report);
    },
  });
