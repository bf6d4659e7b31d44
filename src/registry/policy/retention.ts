/**
 * Retention's decision, as a pure function of one repository's state: which tags and manifests a rule keeps and
 * which it removes, each with the reason a person reads in `regctl retention --dry-run`.
 *
 * Tags, in this order (the first that holds decides):
 * 1. kept when an immutable-tag rule protects it;
 * 2. kept when it matches `keepTags`;
 * 3. kept when its manifest was pulled within `keepPulledWithin` (what is deployed survives);
 * 4. kept when it is among the `keepLast` most recently pushed tags (ties: the greater name counts as newer);
 * 5. kept when it was pushed more recently than `removeOlderThan`;
 * 6. kept when the rule has neither `keepLast` nor `removeOlderThan` (it only governs untagged manifests);
 * 7. otherwise removed: beyond the newest N, and/or older than the duration.
 *
 * Manifests: one with a kept tag is kept; one whose tags are all removed goes with them; one that never had a tag
 * goes when older than `untaggedOlderThan` and not pulled within the window (kept when the rule has no
 * `untaggedOlderThan`). Whatever a kept manifest references is kept too: an index's children, and the referrers of
 * a kept manifest. A referrer (its `subject` field, or cosign's `sha256-<hex>.sig|.att|.sbom` tag naming a manifest
 * of the repository) is decided by its subject alone, and its tags by it: it goes with its subject and never
 * outlives it, and its tags take no place among the newest N.
 */
import { immutableRuleFor, type Policies, type RetentionRule } from '../../common/policies.js';
import type { RetentionDecision } from '../../common/retention-api.js';
import { formatDuration } from '../../common/units.js';

export interface RetentionTag {
  tag: string;
  digest: string;
  /** When the tag last moved (ms since the epoch). */
  pushedAt: number;
}

export interface RetentionManifest {
  digest: string;
  pushedAt: number;
  /** Last pull, 0 or absent when never pulled (as far as the registry recorded). */
  pulledAt?: number;
  /** Index children. */
  children: string[];
  subject?: string;
}

export interface RetentionInput {
  name: string;
  now: number;
  tags: RetentionTag[];
  manifests: RetentionManifest[];
}

const COSIGN_TAG = /^sha256-([0-9a-f]{64})\.(?:sig|att|sbom)$/;

function ago(input: RetentionInput, at: number): string {
  return `${formatDuration(Math.max(0, input.now - at))} ago`;
}

/** The subject each referrer goes with: its `subject`, or the manifest a cosign-style tag names. */
function subjectsOf(input: RetentionInput, present: ReadonlySet<string>): Map<string, string> {
  const subject = new Map<string, string>();
  for (const m of input.manifests) if (m.subject && present.has(m.subject)) subject.set(m.digest, m.subject);
  for (const t of input.tags) {
    const named = COSIGN_TAG.exec(t.tag);
    const target = named ? `sha256:${named[1] as string}` : undefined;
    if (target && present.has(target) && target !== t.digest && !subject.has(t.digest)) subject.set(t.digest, target);
  }
  return subject;
}

function tagDecision(
  input: RetentionInput,
  rule: RetentionRule,
  policies: Policies,
  t: RetentionTag,
  rank: number,
  pulledAt: number,
): { keep: boolean; reason: string } {
  const immutable = immutableRuleFor(policies, input.name, t.tag);
  if (immutable) return { keep: true, reason: `immutable (${immutable.id})` };
  if (rule.keepTags?.test(t.tag)) return { keep: true, reason: `matches keepTags ${rule.keepTags.source}` };
  if (rule.keepPulledWithin !== undefined && pulledAt > 0 && input.now - pulledAt <= rule.keepPulledWithin)
    return {
      keep: true,
      reason: `pulled ${ago(input, pulledAt)}, within keepPulledWithin ${formatDuration(rule.keepPulledWithin)}`,
    };
  if (rule.keepLast !== undefined && rank < rule.keepLast)
    return { keep: true, reason: `among the newest ${rule.keepLast} (#${rank + 1})` };
  const age = input.now - t.pushedAt;
  if (rule.removeOlderThan !== undefined && age < rule.removeOlderThan)
    return {
      keep: true,
      reason: `pushed ${ago(input, t.pushedAt)}, younger than removeOlderThan ${formatDuration(rule.removeOlderThan)}`,
    };
  if (rule.keepLast === undefined && rule.removeOlderThan === undefined)
    return { keep: true, reason: 'the rule removes no tags (no keepLast, no removeOlderThan)' };
  const why: string[] = [];
  if (rule.keepLast !== undefined) why.push(`beyond the newest ${rule.keepLast} (#${rank + 1})`);
  if (rule.removeOlderThan !== undefined)
    why.push(`pushed ${ago(input, t.pushedAt)}, older than removeOlderThan ${formatDuration(rule.removeOlderThan)}`);
  return { keep: false, reason: why.join(', ') };
}

/** Every tag and manifest of the repository, kept or removed, with the reason; tags first, newest first. */
export function decideRetention(input: RetentionInput, rule: RetentionRule, policies: Policies): RetentionDecision[] {
  const byDigest = new Map(input.manifests.map((m) => [m.digest, m]));
  const present = new Set(byDigest.keys());
  const subjectOf = subjectsOf(input, present);
  const pulled = (digest: string): number => byDigest.get(digest)?.pulledAt ?? 0;
  // Tags of referrers follow their manifest (decided below) and take no place among the newest N.
  const ordered = input.tags
    .filter((t) => !subjectOf.has(t.digest))
    .sort((a, b) => b.pushedAt - a.pushedAt || (a.tag < b.tag ? 1 : -1));

  const tagOut: RetentionDecision[] = [];
  const keptTagsOf = new Map<string, string[]>();
  const tagsOf = new Map<string, string[]>();
  ordered.forEach((t, rank) => {
    const d = tagDecision(input, rule, policies, t, rank, pulled(t.digest));
    tagOut.push({ kind: 'tag', ref: t.tag, digest: t.digest, action: d.keep ? 'keep' : 'remove', reason: d.reason });
    (tagsOf.get(t.digest) ?? tagsOf.set(t.digest, []).get(t.digest))?.push(t.tag);
    if (d.keep) (keptTagsOf.get(t.digest) ?? keptTagsOf.set(t.digest, []).get(t.digest))?.push(t.tag);
  });

  // Roots: manifests kept for their own sake. Referrers are never roots: they follow their subject.
  const kept = new Map<string, string>();
  const removedWhy = new Map<string, string>();
  for (const m of input.manifests) {
    if (subjectOf.has(m.digest)) continue;
    const keptTags = keptTagsOf.get(m.digest);
    if (keptTags) kept.set(m.digest, `tagged ${keptTags.slice(0, 3).join(', ')}${keptTags.length > 3 ? ', …' : ''}`);
    else if (tagsOf.has(m.digest))
      removedWhy.set(m.digest, `its tags are all removed (${tagsOf.get(m.digest)?.length})`);
    else untaggedDecision(input, rule, m, kept, removedWhy);
  }
  // What kept manifests reference stays: children of kept indexes, referrers of kept subjects.
  const referrersOf = new Map<string, string[]>();
  for (const [r, s] of subjectOf) (referrersOf.get(s) ?? referrersOf.set(s, []).get(s))?.push(r);
  const queue = [...kept.keys()];
  for (let digest = queue.pop(); digest !== undefined; digest = queue.pop()) {
    const reached = [
      ...(byDigest.get(digest)?.children ?? []).map((c) => [c, `a child of the kept index ${digest}`] as const),
      ...(referrersOf.get(digest) ?? []).map((r) => [r, `a referrer of the kept manifest ${digest}`] as const),
    ];
    for (const [d, why] of reached) {
      if (!present.has(d) || kept.has(d)) continue;
      kept.set(d, why);
      queue.push(d);
    }
  }
  const manifestOut: RetentionDecision[] = input.manifests.map((m) => {
    const keepWhy = kept.get(m.digest);
    if (keepWhy) return { kind: 'manifest', ref: m.digest, digest: m.digest, action: 'keep', reason: keepWhy };
    const subject = subjectOf.get(m.digest);
    const reason = subject ? `goes with its subject ${subject}` : (removedWhy.get(m.digest) ?? 'not reached');
    return { kind: 'manifest', ref: m.digest, digest: m.digest, action: 'remove', reason };
  });
  for (const t of input.tags) {
    const subject = subjectOf.get(t.digest);
    if (subject === undefined) continue;
    const keep = kept.has(t.digest);
    const reason = keep ? `its manifest, a referrer of ${subject}, is kept` : `goes with its subject ${subject}`;
    tagOut.push({ kind: 'tag', ref: t.tag, digest: t.digest, action: keep ? 'keep' : 'remove', reason });
  }
  return [...tagOut, ...manifestOut.sort((a, b) => (a.ref < b.ref ? -1 : 1))];
}

function untaggedDecision(
  input: RetentionInput,
  rule: RetentionRule,
  m: RetentionManifest,
  kept: Map<string, string>,
  removedWhy: Map<string, string>,
): void {
  const pulledAt = m.pulledAt ?? 0;
  if (rule.untaggedOlderThan === undefined) {
    kept.set(m.digest, 'untagged; the rule has no untaggedOlderThan');
  } else if (rule.keepPulledWithin !== undefined && pulledAt > 0 && input.now - pulledAt <= rule.keepPulledWithin) {
    kept.set(m.digest, `untagged, pulled ${ago(input, pulledAt)}, within keepPulledWithin`);
  } else if (input.now - m.pushedAt < rule.untaggedOlderThan) {
    const limit = formatDuration(rule.untaggedOlderThan);
    kept.set(m.digest, `untagged, pushed ${ago(input, m.pushedAt)}, younger than untaggedOlderThan ${limit}`);
  } else {
    const limit = formatDuration(rule.untaggedOlderThan);
    removedWhy.set(m.digest, `untagged, pushed ${ago(input, m.pushedAt)}, older than untaggedOlderThan ${limit}`);
  }
}
