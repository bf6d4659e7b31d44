/**
 * The repository page's policies card: the quota with its usage ("3.10 GiB of 10.0 GiB" and a bar), the retention
 * rule and the immutable-tag patterns that apply to the repository, each naming where the rule is written.
 */
import type { RepositoryPolicies, RepositoryQuota } from '../../common/repository-policies.js';
import { formatBytesOrDash, formatExactBytes } from '../format.js';
import { html, type SafeHtml } from '../html.js';

/** "3.10 GiB of 10.0 GiB" with a bar; the bar is full, never beyond, when the usage exceeds the limit. */
export function quotaUsage(q: RepositoryQuota): SafeHtml {
  const pct = q.limitBytes > 0 ? Math.min(100, (q.usedBytes / q.limitBytes) * 100) : 100;
  const text = `${formatBytesOrDash(q.usedBytes)} of ${formatBytesOrDash(q.limitBytes)}`;
  return html`<div class="quota-usage" data-testid="quota-usage" data-used="${q.usedBytes}" data-limit="${q.limitBytes}">
  <span title="${formatExactBytes(q.usedBytes)} of ${formatExactBytes(q.limitBytes)}">${text}</span>
  <svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="${text} (${Math.round(pct)} %)"><rect class="bar-bg" x="0" y="0" width="100" height="8"/><rect class="bar-excl" x="0" y="0" width="${pct.toFixed(2)}" height="8"/></svg>
</div>`;
}

function retentionText(r: NonNullable<RepositoryPolicies['retention']>): string[] {
  const parts: string[] = [];
  if (r.keepLast !== undefined) parts.push(`keep the newest ${r.keepLast} tags`);
  if (r.keepTags) parts.push(`keep tags matching ${r.keepTags}`);
  if (r.keepPulledWithin) parts.push(`keep what was pulled within ${r.keepPulledWithin}`);
  if (r.removeOlderThan) parts.push(`remove tags older than ${r.removeOlderThan}`);
  if (r.untaggedOlderThan) parts.push(`remove untagged manifests after ${r.untaggedOlderThan}`);
  parts.push(r.schedule ? `runs every ${r.schedule}${r.dryRun ? ' (dry run: reports only)' : ''}` : 'runs on demand');
  return parts;
}

export function policiesCard(p: RepositoryPolicies | undefined): SafeHtml {
  if (!p) return html``;
  const none = !p.quota && !p.retention && p.immutableTags.length === 0;
  return html`<section class="card" aria-labelledby="policies-title" data-testid="repo-policies">
  <div class="card-head"><h2 id="policies-title">Policies</h2></div>
  <div class="card-body">${
    none
      ? html`<p class="empty">No quota, retention or immutable-tag rule applies to this repository.</p>`
      : html`<dl class="kv">
    <dt>Quota</dt><dd data-testid="policy-quota">${
      p.quota
        ? html`${quotaUsage(p.quota)}<div class="muted small">${p.quota.rule} (repos ${p.quota.repos.join(', ')}), per repository</div>`
        : html`<span class="muted">none</span>`
    }</dd>
    <dt>Retention</dt><dd data-testid="policy-retention">${
      p.retention
        ? html`${retentionText(p.retention).join('; ')}<div class="muted small">${p.retention.rule} (repos ${p.retention.repos.join(', ')})</div>`
        : html`<span class="muted">none: tags stay until deleted</span>`
    }</dd>
    <dt>Immutable tags</dt><dd data-testid="policy-immutable">${
      p.immutableTags.length > 0
        ? p.immutableTags.map(
            (r) =>
              html`<div><span class="badge">${r.tags}</span> <span class="muted small">${r.rule} (repos ${r.repos.join(', ')})</span></div>`,
          )
        : html`<span class="muted">none</span>`
    }</dd>
  </dl>`
  }</div>
</section>`;
}
