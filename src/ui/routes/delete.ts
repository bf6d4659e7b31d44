/**
 * `/r/<name>/-/delete/<tag>`: GET previews what deleting one tag does (sibling tags on the same digest stay; what
 * a GC could then free), POST deletes that tag only. Both need the delete permission; the POST needs the
 * session's CSRF token.
 */
import { deletePreview } from '../data.js';
import {
  csrfMatches,
  csrfProblem,
  HttpProblem,
  readForm,
  redirect,
  send,
  unknownReference,
  type RouteEntry,
  type RouteOf,
} from '../http.js';
import { can, isAdmin } from '../permissions.js';
import { RegistryNotFoundError } from '../registry-client.js';
import { deletePage } from '../views/delete.js';

export const deleteTag: RouteEntry<RouteOf<'delete'>> = {
  access: 'session',
  post: true,
  handle: async ({ app, req, res, method, route, session, data, view }) => {
    const { paths } = app;
    const unknownTag = (err: unknown) => {
      if (err instanceof RegistryNotFoundError) throw new HttpProblem(unknownReference(route.name, route.tag, paths));
      throw err;
    };
    if (!can(session.whoami, 'delete', route.name)) {
      throw new HttpProblem({
        status: 403,
        title: 'Not allowed',
        message: `You may not delete tags in ${route.name}.`,
        links: [{ href: paths.repo(route.name), label: `Back to ${route.name}` }],
      });
    }
    if (method === 'POST') {
      const form = await readForm(req);
      if (!csrfMatches(form, session)) throw new HttpProblem(csrfProblem());
      await data.client.deleteTag(route.name, route.tag).catch(unknownTag);
      data.invalidateRepository(route.name);
      session.flash = { kind: 'ok', title: `Deleted tag ${route.tag}.`, text: ' Other tags are unchanged.' };
      return redirect(res, paths.repo(route.name));
    }
    const preview = await deletePreview(data, route.name, route.tag, isAdmin(session.whoami)).catch(unknownTag);
    send(res, 200, deletePage(view, preview));
  },
};
