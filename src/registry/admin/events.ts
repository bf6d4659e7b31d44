import type { EventsStatus } from '../../common/events.js';
import { sendJson } from '../http/context.js';
import { readDeliveryLog } from '../events/sender.js';
import type { AdminModule } from './types.js';

/**
 * GET /admin/v1/events: each event endpoint in force (its URL without credentials), how many events wait for it,
 * and its last delivery attempts, oldest first (`?limit=N`, default 20), from the log in storage, so that every
 * replica answers alike; `incoming` counts records not yet handed to the endpoints.
 */
export const eventsModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'events',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      const limit = Math.max(1, Math.min(Number(ctx.url.searchParams.get('limit')) || 20, 50));
      const outbox = services.store.events;
      const config = services.policies?.events.events.endpoints ?? [];
      const endpoints: EventsStatus['endpoints'] = await Promise.all(
        config.map(async (e) => {
          const url = new URL(e.url);
          url.username = '';
          url.password = '';
          return {
            name: e.name,
            url: url.toString(),
            actions: [...e.actions],
            ...(e.repos ? { repos: e.repos.source } : {}),
            signed: services.policies?.events.secrets.has(e.name) ?? false,
            queued: outbox ? (await outbox.list(`queue/${e.name}`)).length : 0,
            attempts: outbox ? (await readDeliveryLog(outbox, e.name)).slice(-limit) : [],
          };
        }),
      );
      const status: EventsStatus = { endpoints, incoming: outbox ? (await outbox.list('incoming')).length : 0 };
      sendJson(ctx, 200, status);
    },
  });
