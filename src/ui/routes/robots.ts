/** `/robots`: the registry's robot accounts (rights, expiry, last use, OIDC binding), for administrators. */
import { HttpProblem, send, type RouteEntry, type RouteOf } from '../http.js';
import { isAdmin } from '../permissions.js';
import { robotsPage } from '../views/robots.js';

export const robots: RouteEntry<RouteOf<'robots'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    if (!session.whoami) {
      throw new HttpProblem({
        status: 404,
        title: 'Not available',
        message: 'Robot accounts need the admin API of regctl’s registry, which this registry does not have.',
      });
    }
    if (!isAdmin(session.whoami)) {
      throw new HttpProblem({
        status: 403,
        title: 'Administrators only',
        message: 'The robot accounts are shown to administrators of the registry only.',
      });
    }
    // Not cached: a robot just added or revoked shows at the next load.
    send(res, 200, robotsPage(view, (await data.client.robots()).robots, Date.now()));
  },
};
