/**
 * The metadata store held in this process's memory: built from storage at start-up and updated on every write,
 * for a registry that is the only writer of its storage and can afford the walk (tests, small volumes).
 * Intents and `meta` live in memory too: a crash loses them along with everything else, and the next start
 * walks storage again.
 */
import type {
  Intent,
  IntentKey,
  IntentKind,
  ManifestFacts,
  ManifestWrite,
  MetadataStore,
  QuotaUsage,
  ReferrerFacts,
  RepositorySnapshot,
  RepositoryStats,
  SizedDigest,
} from '../metadata/store.js';
import { sortedSnapshot } from '../metadata/store.js';
import { InProcessLeases, type LeaseAttempt } from '../metadata/lease.js';
import { KeyedLock } from './keyed-lock.js';
import type { RepositoryRecord } from './repository-index.js';

interface Entry {
  tags: Map<string, string>;
  revisions: Set<string>;
  lastPush: number;
  lastPull: number;
  /** Last pull of each pulled manifest, by digest. */
  pulls: Map<string, number>;
  /** Facts by revision digest; a revision loaded without them makes `referrers` answer undefined. */
  facts: Map<string, ManifestFacts>;
}

/** Each digest the repository holds (its manifests and what they reference) with its size, the largest given. */
function heldSizes(e: Entry): Map<string, number> {
  const sizes = new Map<string, number>();
  const add = (digest: string, size: number) => sizes.set(digest, Math.max(size, sizes.get(digest) ?? 0));
  for (const [digest, f] of e.facts) {
    add(digest, f.size);
    for (const r of f.references) add(r.digest, r.size);
  }
  return sizes;
}

/** Index of the first element of sorted `list` greater than `after`. */
function startAfter(list: string[], after: string | undefined): number {
  if (after === undefined) return 0;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((list[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryIndex implements MetadataStore {
  readonly kind = 'memory';
  readonly persistent = false;
  readonly shared = false;
  private readonly sections = new KeyedLock();
  private readonly leases = new InProcessLeases();
  private readonly repos = new Map<string, Entry>();
  private catalogCache: string[] | undefined;
  private readonly lastUse = new Map<string, number>();
  /** Per digest: a sweep and a protecting use of the same blob never interleave. */
  private readonly useLock = new KeyedLock();
  private readonly intents = new Map<number, Intent>();
  private nextIntent = 1;
  private readonly meta = new Map<string, string>();

  async catalog(): Promise<string[]> {
    this.catalogCache ??= [...this.repos.keys()].sort();
    return this.catalogCache;
  }

  async catalogPage(after: string | undefined, limit: number): Promise<string[]> {
    const all = await this.catalog();
    const start = startAfter(all, after);
    return all.slice(start, limit < 0 ? undefined : start + limit);
  }

  repositoryCount(): number {
    return this.repos.size;
  }

  async hasRepository(name: string): Promise<boolean> {
    return this.repos.has(name);
  }

  async repository(name: string): Promise<RepositoryRecord | undefined> {
    return this.repos.get(name);
  }

  async snapshot(): Promise<RepositorySnapshot[]> {
    // Synchronous: no write can come between two repositories.
    return sortedSnapshot(
      [...this.repos].map(([name, r]) => ({ name, tags: [...r.tags], revisions: [...r.revisions] })),
    );
  }

  async tags(name: string): Promise<string[] | undefined> {
    const e = this.repos.get(name);
    return e ? [...e.tags.keys()].sort() : undefined;
  }

  async tagsPage(name: string, after: string | undefined, limit: number): Promise<string[] | undefined> {
    const all = await this.tags(name);
    if (!all) return undefined;
    const start = startAfter(all, after);
    return all.slice(start, limit < 0 ? undefined : start + limit);
  }

  async tagTarget(name: string, tag: string): Promise<string | undefined> {
    return this.repos.get(name)?.tags.get(tag);
  }

  async tagRevision(name: string, tag: string): Promise<string | undefined> {
    const repo = this.repos.get(name);
    const digest = repo?.tags.get(tag);
    return digest !== undefined && repo?.revisions.has(digest) ? digest : undefined;
  }

  async hasRevision(name: string, digest: string): Promise<boolean> {
    return this.repos.get(name)?.revisions.has(digest) ?? false;
  }

  async addRevision(name: string, digest: string, at: number): Promise<void> {
    const e = this.entry(name);
    e.revisions.add(digest);
    e.lastPush = at;
  }

  async addManifest(name: string, digest: string, at: number, facts: ManifestFacts, w?: ManifestWrite): Promise<void> {
    await this.addRevision(name, digest, at);
    const e = this.entry(name);
    e.facts.set(digest, facts);
    for (const tag of w?.tags ?? []) e.tags.set(tag, digest);
    for (const id of w?.endIntents ?? []) this.intents.delete(id);
  }

  async removeRevision(name: string, digest: string): Promise<void> {
    const e = this.repos.get(name);
    e?.revisions.delete(digest);
    e?.facts.delete(digest);
    e?.pulls.delete(digest);
    this.dropIfEmpty(name);
  }

  async setTag(name: string, tag: string, digest: string, endIntent?: number): Promise<void> {
    this.entry(name).tags.set(tag, digest);
    if (endIntent !== undefined) this.intents.delete(endIntent);
  }

  async removeTag(name: string, tag: string): Promise<void> {
    this.repos.get(name)?.tags.delete(tag);
    this.dropIfEmpty(name);
  }

  async setLastPush(name: string, at: number): Promise<void> {
    const e = this.repos.get(name);
    if (e) e.lastPush = at;
  }

  async clear(): Promise<void> {
    this.repos.clear();
    this.catalogCache = undefined;
  }

  async load(name: string, record: RepositoryRecord): Promise<void> {
    await this.importRepository(name, record, new Map());
  }

  async importRepository(
    name: string,
    record: RepositoryRecord,
    facts: ReadonlyMap<string, ManifestFacts>,
  ): Promise<void> {
    const lastPull = this.repos.get(name)?.lastPull ?? 0;
    const pulls = this.repos.get(name)?.pulls ?? new Map<string, number>();
    this.repos.delete(name);
    this.catalogCache = undefined;
    if (record.tags.size === 0 && record.revisions.size === 0) return;
    this.repos.set(name, {
      tags: new Map(record.tags),
      revisions: new Set(record.revisions),
      lastPush: record.lastPush,
      lastPull,
      pulls: new Map([...pulls].filter(([d]) => record.revisions.has(d))),
      facts: new Map([...facts].filter(([d]) => record.revisions.has(d))),
    });
  }

  async referrers(name: string, subject: string): Promise<ReferrerFacts[] | undefined> {
    const e = this.repos.get(name);
    if (!e) return [];
    if ([...e.revisions].some((d) => !e.facts.has(d))) return undefined;
    const out: ReferrerFacts[] = [];
    for (const [digest, f] of e.facts) {
      if (f.subject !== subject) continue;
      const r: ReferrerFacts = { digest, mediaType: f.mediaType, size: f.size };
      if (f.artifactType !== undefined) r.artifactType = f.artifactType;
      out.push(r);
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  }

  notePull(name: string, at = Date.now()): void {
    const e = this.repos.get(name);
    if (e) e.lastPull = Math.max(e.lastPull, at);
  }

  noteManifestPull(name: string, digest: string, at = Date.now()): void {
    const e = this.repos.get(name);
    if (e?.revisions.has(digest)) e.pulls.set(digest, Math.max(e.pulls.get(digest) ?? 0, at));
  }

  async manifestPulls(name: string): Promise<Map<string, number>> {
    return new Map(this.repos.get(name)?.pulls);
  }

  async stats(name: string): Promise<RepositoryStats | undefined> {
    const e = this.repos.get(name);
    if (!e) return undefined;
    let bytes = 0;
    for (const s of heldSizes(e).values()) bytes += s;
    return {
      name,
      tags: e.tags.size,
      manifests: e.revisions.size,
      lastPush: e.lastPush,
      lastPull: e.lastPull,
      bytes,
    };
  }

  async quotaUsage(name: string, adding: readonly SizedDigest[] = []): Promise<QuotaUsage> {
    const e = this.repos.get(name);
    const held = e ? heldSizes(e) : new Map<string, number>();
    let bytes = 0;
    for (const s of held.values()) bytes += s;
    const added = new Map<string, number>();
    for (const d of adding) if (!held.has(d.digest)) added.set(d.digest, Math.max(d.size, added.get(d.digest) ?? 0));
    return { bytes, added: [...added.values()].reduce((a, b) => a + b, 0) };
  }

  noteUse(digest: string, at = Date.now()): void {
    this.lastUse.set(digest, at);
  }

  async usedSince(digest: string, since: number): Promise<boolean> {
    return (this.lastUse.get(digest) ?? 0) >= since;
  }

  async protectUses(digests: string[], at = Date.now()): Promise<void> {
    for (const d of digests)
      await this.useLock.run(d, async () => this.noteUse(d, Math.max(at, this.lastUse.get(d) ?? 0)));
  }

  async sweepUnused(digest: string, since: number, remove: () => Promise<void>): Promise<boolean> {
    return this.useLock.run(digest, async () => {
      if ((this.lastUse.get(digest) ?? 0) >= since) return false;
      await remove();
      return true;
    });
  }

  async pruneUses(before: number): Promise<void> {
    for (const [d, t] of this.lastUse) if (t < before) this.lastUse.delete(d);
  }

  async beginIntent(kind: IntentKind, name: string, key: string): Promise<number> {
    const id = this.nextIntent++;
    this.intents.set(id, { id, kind, name, key, createdAt: Date.now() });
    return id;
  }

  async beginIntents(intents: readonly IntentKey[]): Promise<number[]> {
    return Promise.all(intents.map((i) => this.beginIntent(i.kind, i.name, i.key)));
  }

  async endIntent(id: number): Promise<void> {
    this.intents.delete(id);
  }

  async pendingIntents(before = Infinity): Promise<Intent[]> {
    return [...this.intents.values()].filter((i) => i.createdAt < before);
  }

  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.sections.run(name, fn);
  }

  holdKeys<T>(_keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  tryLease(name: string, holder: string): Promise<LeaseAttempt> {
    return this.leases.tryLease(name, holder);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.meta.get(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.meta.set(key, value);
  }

  async ping(): Promise<void> {}

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  private entry(name: string): Entry {
    let e = this.repos.get(name);
    if (!e) {
      e = { tags: new Map(), revisions: new Set(), lastPush: 0, lastPull: 0, pulls: new Map(), facts: new Map() };
      this.repos.set(name, e);
      this.catalogCache = undefined;
    }
    return e;
  }

  private dropIfEmpty(name: string): void {
    const e = this.repos.get(name);
    if (e && e.tags.size === 0 && e.revisions.size === 0) {
      this.repos.delete(name);
      this.catalogCache = undefined;
    }
  }
}
