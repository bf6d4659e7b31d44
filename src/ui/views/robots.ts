import type { RobotSummary } from '../../common/admin-api.js';
import { formatDateTime, formatRelative } from '../format.js';
import { html, type SafeHtml } from '../html.js';
import { layout, type ViewContext } from './layout.js';

function rights(r: RobotSummary): SafeHtml {
  const parts = (['pull', 'push', 'delete'] as const).filter((a) => r[a].length > 0);
  if (parts.length === 0) return html`<span class="muted">none</span>`;
  return html`${parts.map((a) => html`<div><span class="badge">${a}</span> <code>${r[a].join(', ')}</code></div>`)}`;
}

function state(r: RobotSummary, now: number): SafeHtml {
  if (r.revoked) return html`<span class="badge badge-accent" title="${formatDateTime(r.revoked)}">revoked</span>`;
  if (r.expires === null) return html`never expires`;
  const when = html`<span title="${formatDateTime(r.expires)}">${formatRelative(r.expires)}</span>`;
  return Date.parse(r.expires) <= now
    ? html`<span class="badge badge-accent">expired</span> ${when}`
    : html`expires ${when}`;
}

function binding(r: RobotSummary): SafeHtml {
  if (!r.oidc) return html`<span class="muted">secret</span>`;
  const claims = Object.entries(r.oidc.claims).map(([k, v]) => html`<div><code>${k}=${v}</code></div>`);
  return html`<div data-testid="oidc-issuer">${r.oidc.issuer}</div><div>audience <code>${r.oidc.audience}</code></div>${claims}`;
}

export function robotsPage(ctx: ViewContext, robots: RobotSummary[], now: number): string {
  const sorted = [...robots].sort((a, b) => (a.name < b.name ? -1 : 1));
  const body = html`
<div class="page-head">
  <div><h1>Robots</h1><p>Token-only accounts for CI and automation: <code>regctl robots add|list|remove</code>.</p></div>
</div>
<section class="card" aria-labelledby="robots-title">
  <div class="card-head"><h2 id="robots-title">Robot accounts</h2></div>
  ${
    sorted.length === 0
      ? html`<p class="empty">No robots yet: add one with <code>regctl robots add NAME --push PATTERN</code>.</p>`
      : html`<div class="table-wrap"><table class="stack" data-testid="robots-table">
    <thead><tr><th scope="col">Sign-in name</th><th scope="col">Rights</th><th scope="col">Expiry</th><th scope="col">Last use</th><th scope="col">Credential</th></tr></thead>
    <tbody>${sorted.map(
      (r) => html`<tr data-robot="${r.name}">
      <td data-label="Sign-in name"><code>robot$${r.name}</code></td>
      <td data-label="Rights">${rights(r)}</td>
      <td data-label="Expiry">${state(r, now)}</td>
      <td class="nowrap" data-label="Last use">${r.lastUse ? html`<span title="${formatDateTime(r.lastUse)}">${formatRelative(r.lastUse)}</span>` : html`<span class="muted">never</span>`}</td>
      <td data-label="Credential">${binding(r)}</td>
    </tr>`,
    )}</tbody>
  </table></div>`
  }
</section>`;
  return layout(ctx, { title: 'Robots', active: 'robots', body }).value;
}
