import { NO_POLICIES, retentionRuleFor, type Policies } from '../../common/policies.js';
import type { RepositoryPolicies } from '../../common/repository-policies.js';
import { formatDuration } from '../../common/units.js';
import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import { quotaStatus } from '../policy/quota.js';
import { assertName } from '../reference.js';
import type { MetadataStore } from '../metadata/store.js';
import type { AdminModule } from './types.js';

/** What applies to `name` under `policies`, with the quota's usage now. */
export async function repositoryPolicies(
  policies: Policies,
  index: MetadataStore,
  name: string,
): Promise<RepositoryPolicies> {
  const immutableTags = policies.immutableTags
    .filter((r) => r.repos.test(name))
    .map((r) => ({ rule: r.id, repos: r.repos.source, tags: r.tags.source }));
  const r = retentionRuleFor(policies, name);
  let retention: RepositoryPolicies['retention'] = null;
  if (r) {
    retention = {
      rule: r.id,
      repos: r.repos.source,
      schedule: policies.retention.scheduleMs === undefined ? null : formatDuration(policies.retention.scheduleMs),
      dryRun: policies.retention.dryRun,
    };
    if (r.keepLast !== undefined) retention.keepLast = r.keepLast;
    if (r.keepTags) retention.keepTags = r.keepTags.source;
    for (const k of ['removeOlderThan', 'untaggedOlderThan', 'keepPulledWithin'] as const) {
      const ms = r[k];
      if (ms !== undefined) retention[k] = formatDuration(ms);
    }
  }
  const quota = (await quotaStatus(policies, index, name)) ?? null;
  return { name, immutableTags, retention, quota };
}

/**
 * GET /admin/v1/repository-policies?name=REPO → RepositoryPolicies: the immutable-tag, retention and quota rules
 * that apply to a repository, for any user who may pull it (the UI's repository page shows them).
 */
export const repositoryPoliciesModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'repository-policies',
    adminOnly: false,
    handler: async ({ ctx, user, isAdmin, services }) => {
      const name = ctx.url.searchParams.get('name') ?? '';
      assertName(name);
      const access = services.policy();
      if (!isAdmin && !(user === undefined ? access.anonymousCan(name, 'pull') : access.can(user, name, 'pull')))
        throw new RegistryError('DENIED', { name }, { message: `no pull access to ${name}` });
      const policies = services.policies?.current ?? NO_POLICIES;
      sendJson(ctx, 200, await repositoryPolicies(policies, services.store.index, name));
    },
  });
