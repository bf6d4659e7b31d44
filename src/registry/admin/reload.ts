import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import { PolicyFileError } from '../policy/holder.js';
import type { AdminModule } from './types.js';

/**
 * POST /admin/v1/reload re-reads htpasswd and access files, and the policies of the config file, now (a policy
 * file with mistakes answers 400 listing them, one line each, and the policies in force stay); with `?index=1` it also rebuilds the repository
 * index from storage (for data changed behind the registry's back: the index is empty while it is rebuilt, so
 * requests in that moment see 404, which is why a credentials reload leaves it alone).
 */
export const reloadModule: AdminModule = (register) =>
  register({
    method: 'POST',
    path: 'reload',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      try {
        await services.auth?.reload({ strict: true });
      } catch (err) {
        throw new RegistryError('INVALID_REQUEST', { reason: (err as Error).message }, { message: 'reload failed' });
      }
      try {
        await services.policies?.reload();
      } catch (err) {
        if (!(err instanceof PolicyFileError)) throw err;
        throw new RegistryError('INVALID_REQUEST', { problems: err.lines }, { message: 'policies not reloaded' });
      }
      if (['1', 'true'].includes(ctx.url.searchParams.get('index') ?? '')) {
        services.store.clearCaches();
        await services.store.buildIndex();
      }
      sendJson(ctx, 200, {
        reloaded: true,
        users: services.auth?.userCount ?? 0,
        repositories: services.store.index.repositoryCount(),
      });
    },
  });
