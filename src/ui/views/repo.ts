import type { RepositoryPolicies } from '../../common/repository-policies.js';
import type { PlatformInfo, TagInfo } from '../data.js';
import { formatBytesOrDash, formatDateTime, formatExactBytes, formatRelative, plural, shortDigest } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { flashBox, layout, pullCommand, type Flash, type ViewContext } from './layout.js';
import { pager } from './repos.js';
import { policiesCard } from './repo-policies.js';
import { cachedBadge } from './cached.js';

export interface RepoView {
  name: string;
  rows: (TagInfo | { tag: string; error: string })[];
  totalTags: number;
  page: number;
  pages: number;
  perPage: number;
  canDelete: boolean;
  flash?: Flash;
  /** The policies that apply (views/repo-policies.ts); undefined without regctl's admin API. */
  policies?: RepositoryPolicies | undefined;
  /** The upstream URL, for a repository of the pull-through cache. */
  cachedFrom?: string;
}

export function crumbs(ctx: ViewContext, parts: { href?: string; label: string }[]): SafeHtml {
  return html`<nav class="crumbs" aria-label="Breadcrumb"><a href="${ctx.paths.repos()}">Repositories</a>${parts.map(
    (p) =>
      html`<span aria-hidden="true">/</span>${p.href ? html`<a href="${p.href}">${p.label}</a>` : html`<span>${p.label}</span>`}`,
  )}</nav>`;
}

export function kindBadge(kind: TagInfo['kind']): SafeHtml {
  if (kind === 'index') return html`<span class="badge badge-accent">multi-arch</span>`;
  if (kind === 'artifact') return html`<span class="badge">artifact</span>`;
  return html``;
}

export function platformList(platforms: PlatformInfo[], showDetails: boolean): SafeHtml {
  if (platforms.length === 0) return html`<span class="muted">—</span>`;
  return html`<div class="platforms">${platforms.map(
    (p) =>
      html`<div class="platform-row" data-testid="platform"><span class="badge">${p.platform}</span>${showDetails ? html`<span class="muted">${formatBytesOrDash(p.size)} · <span title="${formatDateTime(p.created)}">${formatRelative(p.created)}</span></span>` : ''}</div>`,
  )}</div>`;
}

export function repoPage(ctx: ViewContext, v: RepoView): string {
  const host = ctx.publicRegistry;
  const rows = v.rows.map((r) => {
    if ('error' in r) {
      return html`<tr><td data-label="Tag"><strong>${r.tag}</strong></td><td colspan="5" class="muted">${r.error}</td></tr>`;
    }
    const multi = r.kind === 'index';
    return html`<tr data-tag="${r.tag}" class="tag-row">
  <td data-label="Tag"><a class="repo-link" href="${ctx.paths.image(v.name, r.tag)}">${r.tag}</a> ${kindBadge(r.kind)}
    <div class="mono muted small" title="${r.digest}">${shortDigest(r.digest)}</div></td>
  <td data-label="Platforms">${platformList(r.platforms, multi)}</td>
  <td class="num" data-label="Size"><span title="${formatExactBytes(r.size)}">${formatBytesOrDash(r.size)}</span></td>
  <td class="nowrap" data-label="Created"><span title="${formatDateTime(r.created)}">${formatRelative(r.created)}</span></td>
  ${v.canDelete ? html`<td class="num"><a class="btn btn-small" href="${ctx.paths.delete(v.name, r.tag)}" aria-label="Delete tag ${r.tag}">Delete</a></td>` : ''}
</tr>
<tr class="pull-row" data-pull-for="${r.tag}"><td colspan="${v.canDelete ? 5 : 4}"><div class="pull-pair">
    ${pullCommand(`docker pull ${host}/${v.name}:${r.tag}`, `Copy pull command for ${v.name}:${r.tag}`)}
    ${pullCommand(`docker pull ${host}/${v.name}@${r.digest}`, `Copy pull command for ${v.name}:${r.tag} by digest`)}
</div></td></tr>`;
  });
  return layout(ctx, {
    title: v.name,
    active: 'repos',
    body: html`${flashBox(v.flash)}
<div class="page-head">
  <div>${crumbs(ctx, [{ label: v.name }])}<h1 class="title-mono">${v.name}</h1><p>${plural(v.totalTags, 'tag')}${cachedBadge(v.cachedFrom)}</p></div>
</div>
<section class="card" aria-label="Tags">
  ${
    v.rows.length === 0
      ? html`<p class="empty">This repository has no tags.</p>`
      : html`<div class="table-wrap"><table class="stack tags" data-testid="tag-table">
    <thead><tr><th scope="col">Tag</th><th scope="col">Platforms</th><th scope="col" class="num">Size</th><th scope="col">Created</th>${v.canDelete ? html`<th scope="col"><span class="visually-hidden">Actions</span></th>` : ''}</tr></thead>
    <tbody>${rows}</tbody>
  </table></div>`
  }
  ${pager(ctx, { page: v.page, pages: v.pages, total: v.totalTags, perPage: v.perPage, noun: ['tag', 'tags'] }, (page) => ctx.paths.repo(v.name, { page: page === 1 ? undefined : page }))}
</section>
${policiesCard(v.policies)}`,
  }).value;
}
