/**
 * Enforcing `policies.signatures` on the manifest routes (http/manifests.ts):
 * - `enforce: pull`: a GET or HEAD of a manifest by a matching tag is refused 403 `DENIED` unless the manifest the
 *   tag names carries a valid signature by one of the rule's keys. A pull by digest is not a pull by tag and is not
 *   checked (clients resolve the tag first, so a pull by tag never gets past it).
 * - `enforce: push`: a matching tag can only be set (PUT by tag, or by digest with `?tag=`) on a manifest that
 *   already carries such a signature. The workflow: push the manifest by digest, sign that digest (the signature
 *   lands beside it as a referrer or a `sha256-<hex>.sig` tag), then set the tag.
 * cosign's own attachment tags (`sha256-<hex>.sig`, `.att`, `.sbom`) are never subject to a rule: they are how a
 * signature arrives. Repositories of the pull-through cache are not checked (their signatures live upstream).
 */
import { createHash } from 'node:crypto';
import { isAttachmentTag } from '../../common/artifact-kinds.js';
import { signatureRulesFor, type Policies, type SignatureRule } from '../../common/policies.js';
import { RegistryError } from '../errors.js';
import type { Ctx } from '../http/context.js';
import { tryParseDigest } from '../reference.js';
import type { RegistryStore } from '../storage/store.js';
import { SignatureVerifier, type SignatureSource } from './signatures.js';

const verifier = new SignatureVerifier();

/** The repository's referrers, tags and linked blobs, as the verifier reads them. */
export function storeSource(store: RegistryStore): SignatureSource {
  return {
    referrers: async (name, subject) => {
      const d = tryParseDigest(subject);
      return d ? store.referrers.list(name, d) : [];
    },
    manifest: async (name, ref) => {
      const digest = 'digest' in ref ? tryParseDigest(ref.digest) : undefined;
      if ('digest' in ref && !digest) return undefined;
      return store.manifests.get(name, digest ? { digest } : (ref as { tag: string })).catch((err: unknown) => {
        if (err instanceof RegistryError) return undefined;
        throw err;
      });
    },
    blob: async (name, digest, limit) => {
      const d = tryParseDigest(digest);
      const info = d && (await store.linked.stat(name, d));
      if (!d || !info || info.size > limit) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of await store.blobs.open(d)) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      return `sha256:${createHash('sha256').update(body).digest('hex')}` === digest ? body : undefined;
    },
  };
}

function describe(rule: SignatureRule): string {
  const tags = rule.tags ? `, tags ${rule.tags.source}` : '';
  return `${rule.id} (repos ${rule.repos.source.join(', ')}${tags}, enforce ${rule.enforce})`;
}

/** Throws DENIED naming the first rule among `rules` whose keys did not sign `digest`. */
async function requireSignatures(
  ctx: Ctx,
  name: string,
  tag: string,
  digest: string,
  rules: SignatureRule[],
  what: string,
  hint = '',
): Promise<void> {
  const source = storeSource(ctx.store);
  for (const rule of rules) {
    if (await verifier.signedBy(source, name, digest, rule.keys)) continue;
    throw new RegistryError(
      'DENIED',
      { name, tag, digest, rule: rule.id },
      {
        message:
          `a signature is required by policy ${describe(rule)}: ${what} ${tag} of ${name}, ${digest}, carries no ` +
          `valid signature by the rule's keys${hint}`,
      },
    );
  }
}

function rulesFor(ctx: Ctx, name: string, tag: string, enforce: SignatureRule['enforce']): SignatureRule[] {
  const policies: Policies | undefined = ctx.policies?.current;
  if (!policies || policies.signatures.length === 0 || isAttachmentTag(tag) || ctx.proxy?.owns(name)) return [];
  return signatureRulesFor(policies, name, tag, enforce);
}

/** Before answering a GET/HEAD by `tag` with the manifest `digest`. */
export async function checkPullSignature(ctx: Ctx, name: string, tag: string, digest: string): Promise<void> {
  const rules = rulesFor(ctx, name, tag, 'pull');
  if (rules.length > 0) await requireSignatures(ctx, name, tag, digest, rules, 'the pull of tag');
}

/**
 * Before a manifest PUT that sets `tags` on the manifest `body` (or `digest`, for a PUT by digest). The message
 * says how to get there: sign by digest first, then tag.
 */
export async function checkPushSignature(
  ctx: Ctx,
  name: string,
  tags: readonly string[],
  body: Buffer,
  digest?: string,
): Promise<void> {
  let target = digest;
  for (const tag of new Set(tags)) {
    const rules = rulesFor(ctx, name, tag, 'push');
    if (rules.length === 0) continue;
    // hashed only when a rule applies: pushes in a registry without signature rules pay nothing
    target ??= `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const hint = `; push it by digest, sign ${target}, then set the tag`;
    await requireSignatures(ctx, name, tag, target, rules, 'setting tag', hint);
  }
}
