import { RegistryError } from '../errors.js';
import { parseDigest } from '../reference.js';
import { referrersIndex } from '../storage/referrer-store.js';
import { query, send, sendJson, type Ctx } from './context.js';

/** Page sizes above this are clamped, never refused. */
export const MAX_PAGE = 10_000;
export const DEFAULT_CATALOG_PAGE = 1000;

/** One page of a sorted list after `last`, with the `Link` header for the next page when more remain. */
export function paginate(ctx: Ctx, all: string[], defaultN: number | undefined): { items: string[]; link?: string } {
  const nText = query(ctx, 'n');
  const last = query(ctx, 'last');
  let n = defaultN;
  if (nText !== undefined && /^\d+$/.test(nText)) n = Math.min(Number(nText), MAX_PAGE);
  let start = 0;
  if (last !== undefined) {
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((all[mid] as string) <= last) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  if (n === undefined) return { items: all.slice(start) };
  const items = all.slice(start, start + n);
  if (start + n < all.length && items.length > 0) {
    const next = new URLSearchParams({ n: String(n), last: items[items.length - 1] as string });
    return { items, link: `<${ctx.path}?${next.toString()}>; rel="next"` };
  }
  return { items };
}

/** end-8a / end-8b: GET /v2/<name>/tags/list?n=&last= */
export async function listTags(ctx: Ctx): Promise<void> {
  const name = ctx.params.name as string;
  const tags = await ctx.store.index.tags(name);
  if (!tags) throw new RegistryError('NAME_UNKNOWN', { name });
  const page = paginate(ctx, tags, undefined);
  sendJson(ctx, 200, { name, tags: page.items }, page.link ? { Link: page.link } : {});
}

/** GET /v2/_catalog?n=&last= (registry:2 extension), filtered by `visible` (what the user may pull). */
export async function listCatalog(ctx: Ctx, visible: (repo: string) => boolean): Promise<void> {
  const all = await ctx.store.index.catalog();
  const repos = all.every(visible) ? all : all.filter(visible);
  const page = paginate(ctx, repos, DEFAULT_CATALOG_PAGE);
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
