/** How list pages order, search and page their rows: pure functions, no registry calls. */
import type { RepoSummary } from './data.js';

export type SortKey = 'name' | 'tags' | 'size' | 'updated';

export function sortSummaries(list: RepoSummary[], key: SortKey, descending: boolean): RepoSummary[] {
  const dir = descending ? -1 : 1;
  const value = (r: RepoSummary): number | string | undefined =>
    key === 'name' ? r.name : key === 'tags' ? r.tags : key === 'size' ? r.size : r.updated;
  return [...list].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === undefined && vb !== undefined) return 1;
    if (vb === undefined && va !== undefined) return -1;
    if (va !== undefined && vb !== undefined && va !== vb) return va < vb ? -dir : dir;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

/** Case-insensitive: every whitespace-separated word of the query must appear in the name. */
export function matchesQuery(name: string, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const lower = name.toLowerCase();
  return words.every((w) => lower.includes(w));
}

/** Paginates a list: 1-based page, clamped to the last page. */
export function paginate<T>(
  items: readonly T[],
  page: number,
  perPage: number,
): { items: T[]; page: number; pages: number; total: number } {
  const pages = Math.max(1, Math.ceil(items.length / perPage));
  const p = Math.min(Math.max(1, Number.isFinite(page) ? Math.floor(page) : 1), pages);
  return { items: items.slice((p - 1) * perPage, p * perPage), page: p, pages, total: items.length };
}
