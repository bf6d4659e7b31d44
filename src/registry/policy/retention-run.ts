/**
 * Retention runs: read each governed repository's state (tags and revisions from the metadata store, push times
 * from the storage links' modification times, last pulls from the store, index children and subjects from the
 * manifests), decide (retention.ts) and, unless it is a dry run, remove what the decision says. Removing goes
 * through the stores like a client's DELETE would, one tag or manifest at a time, and skips anything that changed
 * since the decision (a tag moved or a new tag on a manifest about to go). Blobs are the GC's: a run frees no bytes
 * by itself, it leaves unreferenced blobs for `regctl gc`.
 *
 * One run at a time in the whole cluster: the metadata store's `retention` lease (replicas on PostgreSQL share
 * it); a run asked for while one runs is refused with `RetentionBusyError`, naming the running one.
 */
import type { EventInput } from '../events/outbox.js';
import { hostname } from 'node:os';
import { retentionRuleFor, type Policies } from '../../common/policies.js';
import type { RetentionDecision, RetentionReport } from '../../common/retention-api.js';
import { parseDigest } from '../reference.js';
import { isNotFound } from '../storage/driver.js';
import { pathFor, type PathSpec } from '../storage/paths.js';
import type { RegistryStore } from '../storage/store.js';
import { decideRetention, type RetentionInput, type RetentionManifest } from './retention.js';

export class RetentionBusyError extends Error {
  constructor(readonly heldBy: string | undefined) {
    super(`a retention run is already running${heldBy ? `: ${heldBy}` : ''}`);
    this.name = 'RetentionBusyError';
  }
}

export interface RetentionRunOptions {
  dryRun: boolean;
  /** Only this repository (it must have a rule). */
  repository?: string;
  now?: number;
  /** Waits until writes are allowed (the read-only fence of a backup) before removing anything. */
  beforeRemoving?: () => Promise<void>;
}

async function modifiedAt(store: RegistryStore, spec: PathSpec): Promise<number | undefined> {
  try {
    return (await store.driver.stat(pathFor(spec))).modifiedAt.getTime();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** What the decision needs of one repository; undefined when it is gone. */
export async function retentionInput(
  store: RegistryStore,
  name: string,
  now: number,
): Promise<RetentionInput | undefined> {
  const record = await store.index.repository(name);
  if (!record) return undefined;
  const pulls = await store.index.manifestPulls(name);
  const tags: RetentionInput['tags'] = [];
  for (const [tag, digest] of record.tags) {
    const pushedAt = await modifiedAt(store, { kind: 'tagCurrentLink', name, tag });
    if (pushedAt !== undefined) tags.push({ tag, digest, pushedAt });
  }
  const manifests: RetentionManifest[] = [];
  for (const digest of record.revisions) {
    const d = parseDigest(digest);
    const pushedAt = (await modifiedAt(store, { kind: 'revisionLink', name, digest: d })) ?? now;
    const m = await store.manifests.read(d);
    const entry: RetentionManifest = {
      digest,
      pushedAt,
      pulledAt: pulls.get(digest) ?? 0,
      children: m?.info.children.map((c) => c.digest) ?? [],
    };
    if (m?.info.subject) entry.subject = m.info.subject.digest;
    manifests.push(entry);
  }
  return { name, now, tags, manifests };
}

function retentionEvent(repository: string, digest: string, tag?: string): EventInput {
  return {
    action: 'retention',
    target: { repository, digest, ...(tag !== undefined ? { tag } : {}) },
    actor: { name: 'retention' },
  };
}

/** `fn` with its events recorded around it when the registry sends events (events/outbox.ts). */
function withEvents<T>(store: RegistryStore, events: EventInput[], fn: () => Promise<T>): Promise<T> {
  return store.events?.active ? store.events.withEvents(events, fn) : fn();
}

/** Removes what `decisions` say goes: referrers first, then indexes, then the rest; tags of kept manifests alone. */
async function apply(store: RegistryStore, name: string, decisions: RetentionDecision[], skipped: string[]) {
  const removedTags = new Set(decisions.filter((d) => d.kind === 'tag' && d.action === 'remove').map((d) => d.ref));
  const goingManifests = decisions.filter((d) => d.kind === 'manifest' && d.action === 'remove');
  const going = new Set(goingManifests.map((d) => d.digest));
  let tags = 0;
  let manifests = 0;
  for (const d of decisions) {
    if (d.kind !== 'tag' || d.action !== 'remove' || going.has(d.digest)) continue;
    if ((await store.index.tagTarget(name, d.ref)) !== d.digest) {
      skipped.push(`${name}:${d.ref} moved since the decision`);
      continue;
    }
    await withEvents(store, [retentionEvent(name, d.digest, d.ref)], () => store.tags.delete(name, d.ref));
    tags++;
  }
  const order = async (d: RetentionDecision): Promise<number> => {
    const m = await store.manifests.read(parseDigest(d.digest));
    return m?.info.subject ? 0 : m?.info.isIndex ? 1 : 2;
  };
  const ranked = await Promise.all(goingManifests.map(async (d) => ({ d, rank: await order(d) })));
  for (const { d } of ranked.sort((a, b) => a.rank - b.rank)) {
    const record = await store.index.repository(name);
    if (!record?.revisions.has(d.digest)) continue;
    const pointing = [...record.tags].filter(([, digest]) => digest === d.digest).map(([t]) => t);
    const fresh = pointing.filter((t) => !removedTags.has(t));
    if (fresh.length > 0) {
      skipped.push(`${name}@${d.digest} was tagged ${fresh.join(', ')} since the decision`);
      continue;
    }
    const events = [retentionEvent(name, d.digest), ...pointing.map((t) => retentionEvent(name, d.digest, t))];
    tags += (await withEvents(store, events, () => store.manifests.delete(name, parseDigest(d.digest)))).length;
    manifests++;
  }
  return { tags, manifests };
}

/** One run over every repository a rule governs (or `repository`), under the store's `retention` lease. */
export async function runRetention(
  store: RegistryStore,
  policies: Policies,
  opts: RetentionRunOptions,
): Promise<RetentionReport> {
  const startedAt = new Date().toISOString();
  const holder = `${opts.dryRun ? 'dry run' : 'run'} on ${hostname()} (pid ${process.pid}), started ${startedAt}`;
  const attempt = await store.index.tryLease('retention', holder);
  if ('heldBy' in attempt) throw new RetentionBusyError(attempt.heldBy);
  try {
    const now = opts.now ?? Date.now();
    const report: RetentionReport = {
      dryRun: opts.dryRun,
      startedAt,
      finishedAt: startedAt,
      repositories: [],
      removed: { tags: 0, manifests: 0 },
      kept: { tags: 0, manifests: 0 },
      skipped: [],
    };
    const names = opts.repository !== undefined ? [opts.repository] : await store.index.catalog();
    let fenced = false;
    for (const name of names) {
      const rule = retentionRuleFor(policies, name);
      if (!rule) continue;
      const input = await retentionInput(store, name, now);
      if (!input) continue;
      const decisions = decideRetention(input, rule, policies);
      report.repositories.push({ name, rule: rule.id, decisions });
      for (const d of decisions) if (d.action === 'keep') report.kept[d.kind === 'tag' ? 'tags' : 'manifests']++;
      const planned = {
        tags: decisions.filter((d) => d.kind === 'tag' && d.action === 'remove').length,
        manifests: decisions.filter((d) => d.kind === 'manifest' && d.action === 'remove').length,
      };
      if (opts.dryRun || planned.tags + planned.manifests === 0) {
        report.removed.tags += planned.tags;
        report.removed.manifests += planned.manifests;
        continue;
      }
      if (attempt.lease.lost.aborted) throw new Error('the retention lease was lost; the run stopped');
      if (!fenced) await opts.beforeRemoving?.();
      fenced = true;
      const done = await apply(store, name, decisions, report.skipped);
      report.removed.tags += done.tags;
      report.removed.manifests += done.manifests;
    }
    report.finishedAt = new Date().toISOString();
    return report;
  } finally {
    await attempt.lease.release();
  }
}
