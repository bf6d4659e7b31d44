import type { UsageReport } from '../../common/admin-api.js';
import { formatBytesOrDash, formatDateTime, formatExactBytes, formatRelative, plural } from '../format.js';
import { html } from '../html.js';
import { layout, type ViewContext } from './layout.js';
import { quotaUsage } from './repo-policies.js';

export function storagePage(ctx: ViewContext, u: UsageReport): string {
  const repos = [...u.repositories].sort(
    (a, b) => b.exclusiveBytes + b.sharedBytes - (a.exclusiveBytes + a.sharedBytes) || (a.name < b.name ? -1 : 1),
  );
  const max = Math.max(1, ...repos.map((r) => r.exclusiveBytes + r.sharedBytes));
  // Every stored blob is exclusive to one repository, shared by several, or unreferenced; so this is the
  // deduplicated size of the shared ones, each counted once.
  const sharedOnce = Math.max(0, u.totalBytes - repos.reduce((n, r) => n + r.exclusiveBytes, 0) - u.reclaimableBytes);
  const body = html`
<div class="page-head">
  <div><h1>Storage</h1><p>Deduplicated: a blob stored once counts once in the total.</p></div>
</div>
<div class="stats">
  <div class="stat"><div class="stat-label">Total stored</div><div class="stat-value" data-testid="total-bytes" title="${formatExactBytes(u.totalBytes)}">${formatBytesOrDash(u.totalBytes)}</div><div class="stat-sub">${plural(u.blobCount, 'blob')}</div></div>
  <div class="stat"><div class="stat-label">Repositories</div><div class="stat-value">${u.repositories.length.toLocaleString('en-US')}</div><div class="stat-sub">${plural(
    u.repositories.reduce((n, r) => n + r.tags, 0),
    'tag',
  )}</div></div>
  <div class="stat"><div class="stat-label">Shared</div><div class="stat-value" title="${formatExactBytes(sharedOnce)}" data-testid="shared-bytes">${formatBytesOrDash(sharedOnce)}</div><div class="stat-sub">stored once, used by several</div></div>
  <div class="stat"><div class="stat-label">A GC would free</div><div class="stat-value" data-testid="reclaimable" title="${formatExactBytes(u.reclaimableBytes)}">${formatBytesOrDash(u.reclaimableBytes)}</div><div class="stat-sub">unreferenced blobs</div></div>
</div>
<section class="card" aria-labelledby="per-repo-title">
  <div class="card-head"><h2 id="per-repo-title">Per repository</h2>
    <div class="legend"><span><span class="swatch swatch-excl"></span>exclusive</span><span><span class="swatch swatch-shared"></span>shared with other repositories</span></div></div>
  ${
    repos.length === 0
      ? html`<p class="empty">Nothing stored yet.</p>`
      : html`<div class="table-wrap"><table class="stack" data-testid="usage-table">
    <thead><tr><th scope="col">Repository</th><th scope="col" class="num">Exclusive</th><th scope="col" class="num">Shared</th><th scope="col" class="hide-sm">Share of largest</th><th scope="col" class="num">Tags</th><th scope="col">Quota</th><th scope="col">Last push</th></tr></thead>
    <tbody>${repos.map((r) => {
      const ex = (r.exclusiveBytes / max) * 100;
      const sh = (r.sharedBytes / max) * 100;
      return html`<tr data-repo="${r.name}">
      <td data-label="Repository"><a class="repo-link" href="${ctx.paths.repo(r.name)}">${r.name}</a></td>
      <td class="num" data-label="Exclusive" title="${formatExactBytes(r.exclusiveBytes)}" data-bytes="${r.exclusiveBytes}">${formatBytesOrDash(r.exclusiveBytes)}</td>
      <td class="num" data-label="Shared" title="${formatExactBytes(r.sharedBytes)}" data-bytes="${r.sharedBytes}">${formatBytesOrDash(r.sharedBytes)}</td>
      <td class="hide-sm"><svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="${formatBytesOrDash(r.exclusiveBytes)} exclusive, ${formatBytesOrDash(r.sharedBytes)} shared"><rect class="bar-bg" x="0" y="0" width="100" height="8"/><rect class="bar-excl" x="0" y="0" width="${ex.toFixed(2)}" height="8"/><rect class="bar-shared" x="${ex.toFixed(2)}" y="0" width="${sh.toFixed(2)}" height="8"/></svg></td>
      <td class="num" data-label="Tags">${r.tags.toLocaleString('en-US')}</td>
      <td data-label="Quota">${r.quota ? quotaUsage(r.quota) : html`<span class="muted">—</span>`}</td>
      <td class="nowrap" data-label="Last push"><span title="${formatDateTime(r.lastPush)}">${formatRelative(r.lastPush)}</span></td>
    </tr>`;
    })}</tbody>
  </table></div>`
  }
</section>`;
  return layout(ctx, { title: 'Storage', active: 'storage', body }).value;
}
