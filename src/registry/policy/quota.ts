/**
 * Quotas (`policies.quotas`): each repository a rule matches holds at most the rule's `limit` (per repository,
 * not the pattern's sum). Usage is what `MetadataStore.quotaUsage` counts, the same distinct sum the storage
 * page and `stats().bytes` report: the repository's manifests and the blobs they reference, each digest once.
 *
 * A write is refused 403 `DENIED`, BEFORE its bytes are stored, when it would add bytes beyond the limit:
 * - an upload request whose size is known up front (POST with `?digest=`, a PATCH or a PUT carrying
 *   Content-Length): the bytes received so far plus this request's, unless the blob named is held already;
 * - a manifest PUT: the manifest and what it references that the repository does not hold yet. This is the
 *   check no client can avoid (a chunked upload without Content-Length, a cross-repository mount); the blobs such
 *   a refused push left behind are referenced by nothing, and the GC takes them.
 * A write that adds nothing (a retag, a blob or manifest held already) is never refused, also above the limit.
 * Concurrent pushes to one repository are checked one by one, so two may each pass and together overshoot.
 */
import { formatBytes } from '../../common/units.js';
import { quotaRuleFor, type Policies, type QuotaRule } from '../../common/policies.js';
import type { RepositoryQuota } from '../../common/repository-policies.js';
import { RegistryError } from '../errors.js';
import type { ManifestInfo } from '../manifest.js';
import type { Digest } from '../reference.js';
import type { MetadataStore, SizedDigest } from '../metadata/store.js';

/** The quota of a repository and its usage now; undefined when no rule applies to it. */
export async function quotaStatus(
  policies: Policies,
  index: MetadataStore,
  name: string,
): Promise<RepositoryQuota | undefined> {
  const rule = quotaRuleFor(policies, name);
  if (!rule) return undefined;
  const { bytes } = await index.quotaUsage(name);
  return { rule: rule.id, repos: rule.repos.source, limitBytes: rule.limitBytes, usedBytes: bytes };
}

function exceeded(name: string, rule: QuotaRule, used: number, push: number): RegistryError {
  return new RegistryError(
    'DENIED',
    { reason: 'quota exceeded', name, rule: rule.id, usedBytes: used, limitBytes: rule.limitBytes, pushBytes: push },
    {
      message:
        `quota exceeded: ${name} holds ${formatBytes(used)} of its ${formatBytes(rule.limitBytes)} quota ` +
        `(${rule.id}, repos ${rule.repos.source.join(', ')}) and this push adds ${formatBytes(push)}; ` +
        'delete tags or ask an admin to raise the limit',
    },
  );
}

/** Throws DENIED when adding `adding` (or `unknownBytes`, digests unknown yet) to `name` would exceed its quota. */
export async function checkQuota(
  policies: Policies,
  index: MetadataStore,
  name: string,
  adding: readonly SizedDigest[],
  unknownBytes = 0,
): Promise<void> {
  const rule = quotaRuleFor(policies, name);
  if (!rule) return;
  // Most pushes fit even if nothing they bring is held already: then which digests are held need not be asked.
  const atMost = adding.reduce((n, d) => n + d.size, unknownBytes);
  if ((await index.quotaUsage(name)).bytes + atMost <= rule.limitBytes) return;
  const usage = await index.quotaUsage(name, adding);
  const push = usage.added + unknownBytes;
  if (push > 0 && usage.bytes + push > rule.limitBytes) throw exceeded(name, rule, usage.bytes, push);
}

/**
 * The bytes a manifest PUT asks the repository to hold: the manifest itself and everything it references, as
 * its facts (metadata/facts.ts) will count them once stored.
 */
export function manifestAdds(digest: Digest, bodySize: number, info: ManifestInfo): SizedDigest[] {
  return [
    { digest: digest.value, size: bodySize },
    ...[...info.blobs, ...info.children].map((d) => ({ digest: d.digest, size: d.size })),
  ];
}

/**
 * The guard a manifest PUT runs holding its tags' locks, before anything is written (ManifestStore.put): refuses
 * the manifest when what it adds would exceed the repository's quota; undefined when no quota applies.
 */
export function quotaGuard(
  policies: Policies,
  index: MetadataStore,
  name: string,
  body: Buffer,
  info: () => ManifestInfo,
): ((tags: readonly string[], digest: Digest) => Promise<void>) | undefined {
  if (!quotaRuleFor(policies, name)) return undefined;
  const parsed = info();
  return (_tags, digest) => checkQuota(policies, index, name, manifestAdds(digest, body.length, parsed));
}
