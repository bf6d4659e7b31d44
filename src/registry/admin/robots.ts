import type { RobotSummary } from '../../common/admin-api.js';
import { sendJson } from '../http/context.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/robots → { robots: [RobotSummary] } (common/admin-api.ts): each robot of the robots file with its
 * rights, expiry, revocation and OIDC binding (never its secret hash), and when it last got a token (the later of
 * what the metadata store holds and what this process has not written yet). The web UI's robots page shows it.
 */
export const robotsModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'robots',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      const auth = services.auth;
      const set = services.policy().robots;
      const names = auth ? set.names() : [];
      const robots = await Promise.all(
        names.map(async (name): Promise<RobotSummary> => {
          const e = set.get(name);
          return {
            name,
            pull: e?.pull ?? [],
            push: e?.push ?? [],
            delete: e?.delete ?? [],
            created: e?.created ?? '',
            expires: e?.expires ?? null,
            revoked: e?.revoked ?? null,
            lastUse: (await auth?.robotUsage.lastUse(name)) ?? null,
            oidc: e?.oidc ?? null,
          };
        }),
      );
      sendJson(ctx, 200, { robots });
    },
  });
