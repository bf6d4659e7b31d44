import { CACHED_FROM_HEADER } from '../../common/cached-from.js';
import { RegistryError } from '../errors.js';
import { parseDigest } from '../reference.js';
import { referrersIndex } from '../storage/referrer-store.js';
import { query, send, sendJson, type Ctx } from './context.js';

/** Page sizes above this are clamped, never refused. */
export const MAX_PAGE = 10_000;
export const DEFAULT_CATALOG_PAGE = 1000;

/** The `n` a client asked for (clamped to MAX_PAGE, never refused), or `defaultN` when absent or not a number. */
function pageSize(ctx: Ctx, defaultN: number | undefined): number | undefined {
  const nText = query(ctx, 'n');
  if (nText !== undefined && /^\d+$/.test(nText)) return Math.min(Number(nText), MAX_PAGE);
  return defaultN;
}

/**
 * One page after `last` read from the metadata store in keyset pages (bytewise order), keeping what `visible`
 * lets through, with the `Link` header for the next page when more remain. Nothing beyond the page (and one
 * name to know whether another page follows) is loaded, however many names the store holds.
 */
async function storePage(
  ctx: Ctx,
  read: (after: string | undefined, limit: number) => Promise<string[] | undefined>,
  n: number | undefined,
  visible: (item: string) => boolean = () => true,
): Promise<{ items: string[]; link?: string } | undefined> {
  let after = query(ctx, 'last');
  if (n === undefined) {
    const all = await read(after, -1);
    return all && { items: all.filter(visible) };
  }
  const items: string[] = [];
  const batch = Math.min(Math.max(n + 1, 100), MAX_PAGE + 1);
  for (;;) {
    const page = await read(after, batch);
    if (page === undefined) return undefined;
    for (const item of page) if (items.length <= n && visible(item)) items.push(item);
    if (items.length > n || page.length < batch) break;
    after = page[page.length - 1];
  }
  const more = items.length > n;
  const shown = items.slice(0, n);
  if (more && shown.length > 0) {
    const next = new URLSearchParams({ n: String(n), last: shown[shown.length - 1] as string });
    return { items: shown, link: `<${ctx.path}?${next.toString()}>; rel="next"` };
  }
  return { items: shown };
}

/**
 * end-8a / end-8b: GET /v2/<name>/tags/list?n=&last=
 * A repository of the pull-through cache says where it is cached from in `Regctl-Cached-From` (the upstream's URL),
 * so that any client allowed to list it (the web UI) can tell cached content from the registry's own.
 */
export async function listTags(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const page = await storePage(
    ctx,
    (after, limit) => ctx.store.index.tagsPage(name, after, limit),
    pageSize(ctx, undefined),
  );
  if (!page) throw new RegistryError('NAME_UNKNOWN', { name });
  const upstream = ctx.proxy?.upstreamOf(name);
  const headers: Record<string, string> = upstream ? { [CACHED_FROM_HEADER]: upstream } : {};
  if (page.link) headers.Link = page.link;
  sendJson(ctx, 200, { name, tags: page.items }, headers);
}

/** GET /v2/_catalog?n=&last= (registry:2 extension), filtered by `visible` (what the user may pull). */
export async function listCatalog(ctx: Ctx, visible: (repo: string) => boolean): Promise<void> {
  const page = (await storePage(
    ctx,
    (after, limit) => ctx.store.index.catalogPage(after, limit),
    pageSize(ctx, DEFAULT_CATALOG_PAGE),
    visible,
  )) as { items: string[]; link?: string };
  sendJson(ctx, 200, { repositories: page.items }, page.link ? { Link: page.link } : {});
}

/** end-12a / end-12b: GET /v2/<name>/referrers/<digest>?artifactType= */
export async function listReferrers(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const subject = parseDigest(ctx.params.digest as string);
  const artifactType = query(ctx, 'artifactType');
  const descriptors = await ctx.store.referrers.list(name, subject, artifactType);
  const headers: Record<string, string> = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  send(ctx, 200, headers, referrersIndex(descriptors));
}
