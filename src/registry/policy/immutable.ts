/**
 * Immutable tags (`policies.immutableTags`): a tag matching a rule, once it exists, always names the same
 * manifest.
 * - A manifest PUT that would point it at another digest is refused 403 `DENIED`, the message naming the rule; the
 *   same digest again is accepted (pushes are idempotent). The check runs under the tag's lock (ManifestStore.put's
 *   guard), so two racing pushes cannot both create and then move it.
 * - Deleting it (DELETE by tag, or by the digest it points at) is refused the same way unless an admin sends the
 *   header `Regctl-Override-Immutable: true` on the DELETE: a deliberate, per-request act that no client sends by
 *   accident, and that a non-admin cannot use.
 */
import type { IncomingMessage } from 'node:http';
import { immutableRuleFor, type ImmutableTagRule, type Policies } from '../../common/policies.js';
import { RegistryError } from '../errors.js';
import type { Digest } from '../reference.js';
import type { MetadataStore } from '../metadata/store.js';

export const OVERRIDE_HEADER = 'regctl-override-immutable';

function describe(rule: ImmutableTagRule): string {
  return `${rule.id} (repos ${rule.repos.source.join(', ')}, tags ${rule.tags.source})`;
}

function denied(name: string, tag: string, rule: ImmutableTagRule, what: string): RegistryError {
  return new RegistryError(
    'DENIED',
    { name, tag, rule: rule.id },
    { message: `tag ${tag} of ${name} is immutable by policy ${describe(rule)}: ${what}` },
  );
}

/**
 * The guard a manifest PUT runs while it holds its tags' locks: refuses to move a protected tag that already
 * points at another digest.
 */
export function immutableGuard(
  policies: Policies,
  index: MetadataStore,
  name: string,
): ((tags: readonly string[], digest: Digest) => Promise<void>) | undefined {
  if (policies.immutableTags.length === 0) return undefined;
  return async (tags, digest) => {
    for (const tag of tags) {
      const rule = immutableRuleFor(policies, name, tag);
      if (!rule) continue;
      const current = await index.tagTarget(name, tag);
      if (current !== undefined && current !== digest.value)
        throw denied(name, tag, rule, `it points at ${current} and cannot be moved to ${digest.value}`);
    }
  };
}

/** Whether the request asks for the admin override; a non-admin asking is refused outright. */
function overrides(req: IncomingMessage, isAdmin: boolean): boolean {
  const v = req.headers[OVERRIDE_HEADER];
  if (v === undefined) return false;
  if (!/^(1|true)$/i.test(String(v)))
    throw new RegistryError('INVALID_REQUEST', { header: OVERRIDE_HEADER }, { message: `${OVERRIDE_HEADER}: true` });
  if (!isAdmin)
    throw new RegistryError('DENIED', { reason: 'admin only' }, { message: `${OVERRIDE_HEADER} needs an admin user` });
  return true;
}

/** Refuses a DELETE that would remove any of `tags` (existing tags of `name`) protected by a rule, unless overridden. */
export function checkTagRemoval(
  policies: Policies,
  req: IncomingMessage,
  isAdmin: boolean,
  name: string,
  tags: readonly string[],
): void {
  const protectedTag = tags
    .map((tag) => ({ tag, rule: immutableRuleFor(policies, name, tag) }))
    .find((t) => t.rule !== undefined);
  if (!protectedTag || overrides(req, isAdmin)) return;
  throw denied(
    name,
    protectedTag.tag,
    protectedTag.rule as ImmutableTagRule,
    `it cannot be deleted without the admin override (header ${OVERRIDE_HEADER}: true)`,
  );
}
