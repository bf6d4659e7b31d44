import { sendJson } from '../http/context.js';
import type { AdminModule } from './types.js';

/** GET /admin/v1/whoami → { user, admin, rules } for any authenticated user. */
export const whoamiModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'whoami',
    adminOnly: false,
    handler: async ({ ctx, user, isAdmin, services }) => {
      sendJson(ctx, 200, {
        user: user ?? null,
        admin: isAdmin,
        rules: user === undefined ? [] : services.policy().rulesOf(user),
      });
    },
  });
