/** `/storage`: the registry's usage report (bytes per repository, shared and reclaimable), for administrators. */
import { send, type RouteEntry, type RouteOf } from '../http.js';
import { requireAdmin } from './admin-only.js';
import { storagePage } from '../views/storage.js';

export const storage: RouteEntry<RouteOf<'storage'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    requireAdmin(session.whoami, 'The storage report');
    send(res, 200, storagePage(view, await data.usage()));
  },
};
