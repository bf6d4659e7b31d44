/** `/robots`: the registry's robot accounts (rights, expiry, last use, OIDC binding), for administrators. */
import { send, type RouteEntry, type RouteOf } from '../http.js';
import { requireAdmin } from './admin-only.js';
import { robotsPage } from '../views/robots.js';

export const robots: RouteEntry<RouteOf<'robots'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    requireAdmin(session.whoami, 'The list of robot accounts');
    // Not cached: a robot just added or revoked shows at the next load.
    send(res, 200, robotsPage(view, (await data.client.robots()).robots, Date.now()));
  },
};
