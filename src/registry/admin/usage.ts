import { sendJson } from '../http/context.js';
import { quotaStatus } from '../policy/quota.js';
import { computeUsage } from '../storage/usage.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/usage → { totalBytes, blobCount, repositories: [...], reclaimableBytes }; repositories of the
 * pull-through cache carry `cachedFrom` (their upstream), those a quota applies to `quota` (its rule, limit, and
 * usage as the quota counts it: the number a push is refused by).
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
        const policies = services.policies?.current;
        const quota = policies && (await quotaStatus(policies, services.store.index, r.name));
        if (quota) r.quota = quota;
      }
      sendJson(ctx, 200, report);
    },
  });
