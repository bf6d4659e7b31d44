import { immutableRuleFor } from '../../common/policies.js';
import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import { isValidName, parseDigest } from '../reference.js';
import { pathFor } from '../storage/paths.js';
import type { AdminModule, AdminServices } from './types.js';

function invalid(field: string, reason: string): RegistryError {
  return new RegistryError('INVALID_REQUEST', { field, reason }, { message: 'invalid repository delete request' });
}

/** Removes every manifest and tag of the repository, then its own directories (never a nested repository's). */
async function deleteRepository(services: AdminServices, name: string): Promise<void> {
  const { store } = services;
  const record = await store.index.repository(name);
  for (const digest of record?.revisions ?? []) {
    if (await store.index.hasRevision(name, digest)) await store.manifests.delete(name, parseDigest(digest));
  }
  for (const tag of (await store.index.tags(name)) ?? []) await store.tags.delete(name, tag);
  await store.repoLock.run(name, async () => {
    for (const kind of ['layersRoot', 'revisionsRoot', 'tagsRoot', 'referrersRoot', 'uploadsRoot'] as const)
      await store.driver.delete(pathFor({ kind, name }));
  });
}

/**
 * POST /admin/v1/repository-delete { name, dryRun?, overrideImmutable? } deletes a whole repository: its tags,
 * manifests, blob links and uploads in progress. `dryRun` (the default) only previews what goes: the tags, the
 * number of manifests and the bytes the repository's manifests reference (blobs are freed by the next GC, except
 * those another repository also uses). A repository holding a tag protected by an immutable-tag rule is refused
 * unless `overrideImmutable` is true. Admin only.
 */
export const repositoryDeleteModule: AdminModule = (register) =>
  register({
    method: 'POST',
    path: 'repository-delete',
    adminOnly: true,
    handler: async ({ ctx, services, json }) => {
      const body = await json();
      const name = body.name;
      if (typeof name !== 'string' || !isValidName(name)) throw invalid('name', 'must be a repository name');
      for (const k of ['dryRun', 'overrideImmutable'])
        if (body[k] !== undefined && typeof body[k] !== 'boolean') throw invalid(k, 'must be a boolean');
      const dryRun = body.dryRun !== false;
      const record = await services.store.index.repository(name);
      if (!record) throw new RegistryError('NAME_UNKNOWN', { name });
      const tags = [...record.tags.keys()].sort();
      const stats = await services.store.index.stats(name);
      const policies = services.policies?.current;
      const protectedTags = policies ? tags.filter((t) => immutableRuleFor(policies, name, t)) : [];
      const preview = { name, dryRun, tags, manifests: record.revisions.size, bytes: stats?.bytes ?? 0, protectedTags };
      if (!dryRun && protectedTags.length > 0 && body.overrideImmutable !== true)
        throw new RegistryError(
          'DENIED',
          { name, protectedTags },
          {
            message: `${name} holds immutable tags (${protectedTags.join(', ')}): pass overrideImmutable to delete it`,
          },
        );
      if (!dryRun) {
        await services.fence.waitWritable();
        await deleteRepository(services, name);
        services.log('info', 'repository deleted', { name, tags: tags.length, manifests: record.revisions.size });
      }
      sendJson(ctx, 200, { ...preview, deleted: !dryRun });
    },
  });
