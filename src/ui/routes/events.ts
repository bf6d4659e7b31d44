/** `/events`: the registry's webhook delivery log (`GET /admin/v1/events`), for administrators. */
import { HttpProblem, send, type RouteEntry, type RouteOf } from '../http.js';
import { isAdmin } from '../permissions.js';
import { eventsPage } from '../views/events.js';

export const events: RouteEntry<RouteOf<'events'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    if (!session.whoami) {
      throw new HttpProblem({
        status: 404,
        title: 'Not available',
        message: 'The delivery log needs the admin API of regctl’s registry, which this registry does not have.',
      });
    }
    if (!isAdmin(session.whoami)) {
      throw new HttpProblem({
        status: 403,
        title: 'Administrators only',
        message: 'The delivery log needs an administrator account on the registry.',
      });
    }
    send(res, 200, eventsPage(view, await data.client.events()));
  },
};
