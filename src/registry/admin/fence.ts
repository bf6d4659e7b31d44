import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import type { AdminModule } from './types.js';

/** POST /admin/v1/fence { ttlSeconds } raises the read-only fence; DELETE lowers it; GET reports it. */
export const fenceModule: AdminModule = (register) => {
  register({
    method: 'POST',
    path: 'fence',
    adminOnly: true,
    handler: async ({ ctx, services, json }) => {
      const { ttlSeconds } = await json();
      if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > 86_400) {
        throw new RegistryError(
          'INVALID_REQUEST',
          { field: 'ttlSeconds', reason: 'a number of seconds between 1 and 86400' },
          { message: 'invalid fence request' },
        );
      }
      services.fence.set(ttlSeconds);
      services.log('info', 'read-only fence raised', { ttlSeconds });
      sendJson(ctx, 200, services.fence.status());
    },
  });
  register({
    method: 'DELETE',
    path: 'fence',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      services.fence.clear();
      services.log('info', 'read-only fence lowered');
      sendJson(ctx, 200, services.fence.status());
    },
  });
  register({
    method: 'GET',
    path: 'fence',
    adminOnly: true,
    handler: async ({ ctx, services }) => sendJson(ctx, 200, services.fence.status()),
  });
};
