/** `/storage`: the registry's usage report (bytes per repository, shared and reclaimable), for administrators. */
import { HttpProblem, send, type RouteEntry, type RouteOf } from '../http.js';
import { isAdmin } from '../permissions.js';
import { storagePage } from '../views/storage.js';

export const storage: RouteEntry<RouteOf<'storage'>> = {
  access: 'session',
  handle: async ({ res, session, data, view }) => {
    if (!session.whoami) {
      throw new HttpProblem({
        status: 404,
        title: 'Not available',
        message: 'The storage report needs the admin API of regctl’s registry, which this registry does not have.',
      });
    }
    if (!isAdmin(session.whoami)) {
      throw new HttpProblem({
        status: 403,
        title: 'Administrators only',
        message: 'The storage report needs an administrator account on the registry.',
      });
    }
    send(res, 200, storagePage(view, await data.usage()));
  },
};
