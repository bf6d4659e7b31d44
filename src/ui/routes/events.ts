/** `/events`: the registry's webhook delivery log (`GET /admin/v1/events`), for administrators. */
import { send, type RouteEntry, type RouteOf } from '../http.js';
import { requireAdmin } from './admin-only.js';
import { eventsPage } from '../views/events.js';

export const events: RouteEntry<RouteOf<'events'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    requireAdmin(session.whoami, 'The delivery log');
    send(res, 200, eventsPage(view, await data.client.events()));
  },
};
