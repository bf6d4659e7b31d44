import { sendJson } from '../http/context.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/robots → { robots: [{ name, lastUse }] }: when each robot in the robots file last got a token (the
 * later of what the metadata store holds and what this process has not written yet). The rest of what
 * `regctl robots list` shows comes from the robots file itself.
 */
export const robotsModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'robots',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      const auth = services.auth;
      const names = auth ? services.policy().robots.names() : [];
      const robots = await Promise.all(
        names.map(async (name) => ({ name, lastUse: (await auth?.robotUsage.lastUse(name)) ?? null })),
      );
      sendJson(ctx, 200, { robots });
    },
  });
