import type { RepoSummary } from '../data.js';
import type { SortKey } from '../listing.js';
import { formatBytesOrDash, formatDateTime, formatRelative, plural } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { flashBox, layout, type Flash, type ViewContext } from './layout.js';
import { cachedBadge } from './cached.js';

export interface ReposView {
  rows: RepoSummary[];
  total: number;
  matched: number;
  page: number;
  pages: number;
  perPage: number;
  query: string;
  sort: SortKey;
  descending: boolean;
  /** True when dates come from the usage report (push times); otherwise they are image creation dates. */
  pushTimes: boolean;
  flash?: Flash;
}

/** The sort menu: one value per key and direction; the first direction listed for a key is its default. */
export const SORT_OPTIONS: { value: string; key: SortKey; descending: boolean; label: string }[] = [
  { value: 'name', key: 'name', descending: false, label: 'Name (A–Z)' },
  { value: 'name-desc', key: 'name', descending: true, label: 'Name (Z–A)' },
  { value: 'updated', key: 'updated', descending: true, label: 'Recently pushed' },
  { value: 'updated-asc', key: 'updated', descending: false, label: 'Least recently pushed' },
  { value: 'size', key: 'size', descending: true, label: 'Largest first' },
  { value: 'size-asc', key: 'size', descending: false, label: 'Smallest first' },
  { value: 'tags', key: 'tags', descending: true, label: 'Most tags' },
  { value: 'tags-asc', key: 'tags', descending: false, label: 'Fewest tags' },
];

export function parseSort(value: string | null): { key: SortKey; descending: boolean; value: string } {
  const option = SORT_OPTIONS.find((o) => o.value === value) ?? SORT_OPTIONS[0]!;
  return { key: option.key, descending: option.descending, value: option.value };
}

export function pager(
  ctx: ViewContext,
  v: { page: number; pages: number; total: number; perPage: number; noun: [string, string] },
  link: (page: number) => string,
): SafeHtml {
  const from = v.total === 0 ? 0 : (v.page - 1) * v.perPage + 1;
  const to = Math.min(v.total, v.page * v.perPage);
  return html`<div class="pager">
  <span data-testid="pager-summary">${from.toLocaleString('en-US')}–${to.toLocaleString('en-US')} of ${plural(v.total, v.noun[0], v.noun[1])}</span>
  ${
    v.pages > 1
      ? html`<nav aria-label="Pages">
    ${v.page > 1 ? html`<a class="btn btn-small" rel="prev" href="${link(v.page - 1)}">← Previous</a>` : ''}
    <span class="btn btn-small btn-ghost" aria-current="page">Page ${v.page} of ${v.pages}</span>
    ${v.page < v.pages ? html`<a class="btn btn-small" rel="next" href="${link(v.page + 1)}">Next →</a>` : ''}
  </nav>`
      : ''
  }
</div>`;
}

export function reposPage(ctx: ViewContext, v: ReposView): string {
  const sortValue = SORT_OPTIONS.find((o) => o.key === v.sort && o.descending === v.descending)?.value ?? 'name';
  const q = (page: number) =>
    ctx.paths.repos({
      q: v.query,
      sort: sortValue === 'name' ? undefined : sortValue,
      page: page === 1 ? undefined : page,
    });
  const dateLabel = v.pushTimes ? 'Last push' : 'Newest image';
  const rows = v.rows.map(
    (r) => html`<tr>
  <td data-label="Repository"><a class="repo-link" href="${ctx.paths.repo(r.name)}">${r.name}</a>${cachedBadge(r.cachedFrom)}</td>
  <td class="num" data-label="Tags">${r.tags === undefined ? html`<span class="muted">—</span>` : r.tags.toLocaleString('en-US')}</td>
  <td class="num" data-label="Size">${r.size === undefined ? html`<span class="muted">—</span>` : formatBytesOrDash(r.size)}</td>
  <td class="nowrap" data-label="${dateLabel}"><span title="${formatDateTime(r.updated)}">${formatRelative(r.updated)}</span></td>
</tr>`,
  );
  return layout(ctx, {
    title: 'Repositories',
    active: 'repos',
    body: html`${flashBox(v.flash)}
<div class="page-head">
  <div><h1>Repositories</h1><p>${plural(v.total, 'repository', 'repositories')} on ${ctx.publicRegistry}</p></div>
</div>
<section class="card" aria-label="Repository list">
  <form class="toolbar" method="get" action="${ctx.paths.repos()}" role="search">
    <div class="field field-grow"><label for="q">Search</label>
      <input id="q" name="q" type="search" value="${v.query}" placeholder="Filter by name, e.g. team/app" autocomplete="off"></div>
    <div class="field"><label for="sort">Sort by</label>
      <select id="sort" name="sort" data-autosubmit>${SORT_OPTIONS.map((o) => html`<option value="${o.value}"${o.value === sortValue ? html` selected` : ''}>${o.label}</option>`)}</select></div>
    <button type="submit" class="btn">Search</button>
  </form>
  ${
    v.rows.length === 0
      ? html`<p class="empty">${v.query ? html`No repository matches “${v.query}”.` : 'No repositories yet. Push an image to get started.'}</p>`
      : html`<div class="table-wrap"><table class="stack" data-testid="repo-table">
    <thead><tr><th scope="col">Repository</th><th scope="col" class="num">Tags</th><th scope="col" class="num">Size</th><th scope="col">${dateLabel}</th></tr></thead>
    <tbody>${rows}</tbody>
  </table></div>`
  }
  ${pager(ctx, { page: v.page, pages: v.pages, total: v.matched, perPage: v.perPage, noun: v.query ? ['match', 'matches'] : ['repository', 'repositories'] }, q)}
</section>`,
  }).value;
}
