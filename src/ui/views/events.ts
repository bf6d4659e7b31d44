import type { EventsStatus } from '../../common/events.js';
import { formatDateTime, formatRelative, plural } from '../format.js';
import { html } from '../html.js';
import { layout, type ViewContext } from './layout.js';

/** One event's delivery to one endpoint, from the attempts of the log. */
export interface Delivery {
  endpoint: string;
  eventId: string;
  action: string;
  repository: string;
  /** `delivered` (an attempt succeeded), `retrying` (still queued after failures). */
  state: 'delivered' | 'retrying';
  /** HTTP status of the last attempt, 0 when none came. */
  status: number;
  attempts: number;
  lastAt: string;
  /** The error of the last failed attempt, if any failed. */
  lastError?: string;
}

/**
 * Groups each endpoint's attempts (oldest first, as the log keeps them) into one delivery per event, newest first.
 * The log holds the last attempts only, so an old delivery's count may miss its earliest attempts.
 */
export function deliveries(s: EventsStatus): Delivery[] {
  const out: Delivery[] = [];
  for (const e of s.endpoints) {
    const byEvent = new Map<string, Delivery>();
    for (const a of e.attempts) {
      const d = byEvent.get(a.eventId) ?? {
        endpoint: e.name,
        eventId: a.eventId,
        action: a.action,
        repository: a.repository,
        state: 'retrying',
        status: 0,
        attempts: 0,
        lastAt: a.at,
      };
      d.attempts++;
      d.status = a.status;
      d.lastAt = a.at;
      if (a.ok) d.state = 'delivered';
      else d.lastError = a.error ?? `HTTP ${a.status}`;
      byEvent.set(a.eventId, d);
    }
    out.push(...byEvent.values());
  }
  return out.sort((a, b) => (a.lastAt < b.lastAt ? 1 : a.lastAt > b.lastAt ? -1 : 0));
}

export function eventsPage(ctx: ViewContext, s: EventsStatus): string {
  const rows = deliveries(s);
  const body = html`
<div class="page-head">
  <div><h1>Deliveries</h1><p>Webhook events sent to the endpoints of <code>events:</code>, newest first.</p></div>
</div>
<div class="stats">
  ${s.endpoints.map(
    (e) =>
      html`<div class="stat" data-endpoint="${e.name}"><div class="stat-label">${e.name}</div><div class="stat-value" data-testid="queued">${e.queued.toLocaleString('en-US')}</div><div class="stat-sub">${plural(e.queued, 'event')} waiting · <span class="mono">${e.url}</span>${e.signed ? ' · signed' : ''}</div></div>`,
  )}
  ${s.incoming > 0 ? html`<div class="stat"><div class="stat-label">Not yet handed out</div><div class="stat-value">${s.incoming.toLocaleString('en-US')}</div></div>` : ''}
</div>
<section class="card" aria-labelledby="deliveries-title">
  <div class="card-head"><h2 id="deliveries-title">Recent deliveries</h2></div>
  ${
    s.endpoints.length === 0
      ? html`<p class="empty">The registry sends no events: add <code>events.endpoints</code> to regctl.yaml.</p>`
      : rows.length === 0
        ? html`<p class="empty">No delivery attempt yet.</p>`
        : html`<div class="table-wrap"><table class="stack" data-testid="deliveries">
    <thead><tr><th scope="col">Event</th><th scope="col">Endpoint</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last error</th><th scope="col">Last attempt</th></tr></thead>
    <tbody>${rows.map(
      (d) => html`<tr data-event="${d.eventId}" data-endpoint="${d.endpoint}">
      <td data-label="Event"><strong>${d.action}</strong> ${d.repository}<div class="mono small muted">${d.eventId}</div></td>
      <td data-label="Endpoint">${d.endpoint}</td>
      <td data-label="Status" data-testid="status"><span class="${d.state === 'delivered' ? 'badge badge-ok' : 'badge'}">${d.state}</span> ${d.status === 0 ? 'no answer' : `HTTP ${d.status}`}</td>
      <td class="num" data-label="Attempts" data-testid="attempts">${d.attempts}</td>
      <td data-label="Last error" data-testid="last-error">${d.lastError ?? '—'}</td>
      <td class="nowrap" data-label="Last attempt"><span title="${formatDateTime(d.lastAt)}">${formatRelative(d.lastAt)}</span></td>
    </tr>`,
    )}</tbody>
  </table></div>`
  }
</section>`;
  return layout(ctx, { title: 'Deliveries', active: 'events', body }).value;
}
