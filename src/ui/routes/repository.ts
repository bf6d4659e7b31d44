/** `/r/<name>`: a repository's tags, newest-looking first, a page at a time, each with its details. */
import { paginate } from '../listing.js';
import { HttpProblem, notFound, send, takeFlash, type RouteEntry, type RouteOf } from '../http.js';
import { can } from '../permissions.js';
import { RegistryNotFoundError } from '../registry-client.js';
import { repoPage } from '../views/repo.js';

const TAGS_PER_PAGE = 30;

export const repository: RouteEntry<RouteOf<'repo'>> = {
  access: 'session',
  signedOut: 'public',
  handle: async ({ app, res, url, route, session, data, view }) => {
    const tags = await data.tags(route.name).catch((err: unknown) => {
      if (err instanceof RegistryNotFoundError)
        throw new HttpProblem(
          notFound(`The repository “${route.name}” does not exist (or you may not see it).`, app.paths),
        );
      throw err;
    });
    tags.sort(compareTags);
    const meta = paginate(tags, Number(url.searchParams.get('page') ?? '1'), TAGS_PER_PAGE);
    const rows = await data.tagInfos(route.name, meta.items);
    // regctl's registry only (whoami answered); a registry without the admin API shows no policies card.
    const policies = session.whoami ? await data.repositoryPolicies(route.name).catch(() => undefined) : undefined;
    const cachedFrom = (await data.cachedSources([route.name])).get(route.name);
    send(
      res,
      200,
      repoPage(view, {
        name: route.name,
        rows,
        totalTags: tags.length,
        page: meta.page,
        pages: meta.pages,
        perPage: TAGS_PER_PAGE,
        canDelete: can(session.whoami, 'delete', route.name),
        flash: takeFlash(session),
        policies,
        ...(cachedFrom ? { cachedFrom } : {}),
      }),
    );
  },
};

/** "latest" first, then newest-looking versions first (natural order, descending). */
export function compareTags(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'latest') return -1;
  if (b === 'latest') return 1;
  return b.localeCompare(a, 'en', { numeric: true });
}
