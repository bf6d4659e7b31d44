/**
 * `regctl events`: the registry's event endpoints (events: of regctl.yaml) with what waits for each and their last
 * delivery attempts, read through the admin API (`GET /admin/v1/events`).
 */
import type { EventsStatus } from '../common/events.js';
import type { Output } from '../common/io.js';
import { AdminClient, stackEndpoint } from './admin-client.js';

export interface EventsOptions {
  dir: string;
  limit?: number;
  out: Output;
  env?: NodeJS.ProcessEnv;
}

export async function eventsStatus(opts: EventsOptions): Promise<EventsStatus & { registry: string }> {
  const endpoint = await stackEndpoint(opts.dir, opts.env);
  const client = new AdminClient(endpoint);
  const query = opts.limit !== undefined ? `?limit=${opts.limit}` : '';
  const status = await client.json<EventsStatus>('events', 'GET', `/admin/v1/events${query}`);
  return { registry: endpoint.description, ...status };
}

/** One block per endpoint: its target and filters, its queue, then one line per attempt, newest last. */
export function printEvents(s: EventsStatus & { registry: string }, out: Output): void {
  if (s.endpoints.length === 0) out.line(`  ${s.registry} sends no events: add events.endpoints to regctl.yaml`);
  for (const e of s.endpoints) {
    const filters = `${e.actions.join(', ')}${e.repos ? ` in ${e.repos.join(', ')}` : ''}`;
    out.line(`  ${e.name} → ${e.url} (${filters}${e.signed ? ', signed' : ''}): ${e.queued} waiting`);
    if (e.attempts.length === 0) out.line('    no delivery attempt yet');
    for (const a of e.attempts) {
      const result = a.ok ? `ok ${a.status}` : `failed: ${a.error ?? `HTTP ${a.status}`}`;
      out.line(`    ${a.at}  ${a.action.padEnd(9)} ${a.repository.padEnd(24)} ${a.eventId}  ${result}`);
    }
  }
  if (s.incoming > 0) out.line(`  ${s.incoming} record(s) not yet handed to the endpoints`);
}
