/** `/` (to the list) and `/repos`: every repository the user may see, searched, sorted and paged. */
import { matchesQuery, paginate, sortSummaries } from '../listing.js';
import { redirect, send, takeFlash, type PageExchange, type RouteEntry, type RouteOf } from '../http.js';
import { isAdmin } from '../permissions.js';
import { parseSort, reposPage } from '../views/repos.js';

export const home: RouteEntry<RouteOf<'home'>> = {
  access: 'session',
  signedOut: 'public',
  handle: ({ app, res }) => redirect(res, app.paths.repos()),
};

export const repositories: RouteEntry<RouteOf<'repos'>> = {
  access: 'session',
  signedOut: 'public',
  handle: listRepositories,
};

async function listRepositories({ app, res, url, session, data, view }: PageExchange): Promise<void> {
  const pageSize = app.pageSize;
  const names = await data.catalog();
  const query = (url.searchParams.get('q') ?? '').trim().slice(0, 200);
  const { key: sort, descending } = parseSort(url.searchParams.get('sort'));
  const filtered = query ? names.filter((n) => matchesQuery(n, query)) : [...names];
  const pageNo = Number(url.searchParams.get('page') ?? '1');
  let ordered: string[];
  if (sort === 'name') {
    ordered = filtered.sort();
    if (descending) ordered.reverse();
  } else {
    // Sorting by tag count needs only tag lists; by size or date it needs every repository's details.
    const all = await data.summaries(filtered, sort === 'tags' ? new Set() : 'all');
    ordered = sortSummaries([...all.values()], sort, descending).map((r) => r.name);
  }
  const meta = paginate(ordered, pageNo, pageSize);
  const summaries = await data.summaries(meta.items, new Set(meta.items));
  const sources = await data.cachedSources(meta.items);
  const rows = meta.items.map((n) => {
    const row = summaries.get(n) ?? { name: n, tags: undefined, size: undefined, updated: undefined };
    const from = sources.get(n);
    return from ? { ...row, cachedFrom: from } : row;
  });
  send(
    res,
    200,
    reposPage(view, {
      rows,
      total: names.length,
      matched: meta.total,
      page: meta.page,
      pages: meta.pages,
      perPage: pageSize,
      query,
      sort,
      descending,
      pushTimes: isAdmin(session.whoami),
      flash: takeFlash(session),
    }),
  );
}
