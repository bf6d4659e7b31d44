/**
 * The registry's metadata store: the `RepositoryIndex` contract (repositories, tags, revisions, last push, last
 * use) plus what a store that outlives the process needs: manifest facts (media type, size, config, subject,
 * artifact type, the blobs each manifest references), referrers, last-pull times, per-repository usage, paged
 * listings in bytewise order, write intents for crash recovery, and a small key/value table of its own state.
 *
 * Three implementations run the same contract suite: `MemoryIndex` (this process only, rebuilt by a storage walk
 * at every start), `SqliteMetadataStore` (embedded, a file, the default for one host) and
 * `PostgresMetadataStore` (shared by replicas). The two SQL ones share `SqlMetadataStore` and differ only in
 * their connection and migrations.
 *
 * Consistency with storage (storage is the source of truth, the store can always be rebuilt from it):
 * - a write (tag, revision) records an intent, writes storage, then updates the store and ends the intent;
 * - a delete records an intent, updates the store, then deletes from storage and ends the intent;
 * so a crash between the two steps leaves an intent, and `recoverIntents` (at start-up) re-reads exactly those
 * keys from storage and rolls them forward (a write) or finishes them (a delete). A delete is never undone by a
 * rebuild, because the intent finishes it in storage first.
 */
import type { RepositoryIndex, RepositoryRecord } from '../storage/repository-index.js';
import type { LeaseAttempt } from './lease.js';

export interface ManifestFacts {
  mediaType: string;
  /** Bytes of the manifest itself. */
  size: number;
  configDigest?: string;
  /** The `subject` digest: this manifest is a referrer of it. */
  subject?: string;
  /** The artifact type the referrers API reports (`artifactType`, else the config's media type). */
  artifactType?: string;
  /** Blobs and child manifests it references, with the sizes its descriptors give (for usage). */
  references: { digest: string; size: number }[];
}

/** A referrer as the store knows it; annotations come from the manifest body (immutable, cached by digest). */
export interface ReferrerFacts {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
}

export interface RepositoryStats {
  name: string;
  tags: number;
  manifests: number;
  /** ms since the epoch; 0 when not known. */
  lastPush: number;
  lastPull: number;
  /** Distinct bytes its manifests and what they reference take (shared blobs counted once per repository). */
  bytes: number;
}

export interface SizedDigest {
  digest: string;
  size: number;
}

/** What a repository holds as quotas count it, and how much a write would add (MetadataStore.quotaUsage). */
export interface QuotaUsage {
  /** The same distinct sum as `RepositoryStats.bytes`. */
  bytes: number;
  /** Of the digests asked about (each counted once), the bytes the repository does not hold yet. */
  added: number;
}

export type IntentKind = 'tag-put' | 'tag-delete' | 'revision-put' | 'revision-delete';

export interface Intent {
  id: number;
  kind: IntentKind;
  name: string;
  /** The tag, or the digest of the revision. */
  key: string;
  createdAt: number;
  /** The process that began it (instances.ts), on a shared store; undefined when none was recorded. */
  owner?: string;
}

/** One repository as a backup copies it: its tags (name, digest) and its revisions, each sorted bytewise. */
export interface RepositorySnapshot {
  name: string;
  tags: [string, string][];
  revisions: string[];
}

/** Sorts a snapshot's lists bytewise (the order of distribution's layout), whatever order the store gave. */
export function sortedSnapshot(repos: RepositorySnapshot[]): RepositorySnapshot[] {
  const byte = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return repos
    .map((r) => ({
      name: r.name,
      tags: [...r.tags].sort(([a], [b]) => byte(a, b)),
      revisions: [...r.revisions].sort(byte),
    }))
    .sort((a, b) => byte(a.name, b.name));
}

/** What an intent names (see `Intent`). */
export type IntentKey = Pick<Intent, 'kind' | 'name' | 'key'>;

/** The `holdKeys` key of a revision (by digest) of a repository. */
export function revisionKey(name: string, digest: string): string {
  return `${name}@${digest}`;
}

/** The `holdKeys` key of a tag of a repository. */
export function tagKey(name: string, tag: string): string {
  return `${name}:${tag}`;
}

/** The `holdKeys` key an intent names. */
export function intentKey({ kind, name, key }: IntentKey): string {
  return kind === 'tag-put' || kind === 'tag-delete' ? tagKey(name, key) : revisionKey(name, key);
}

/** What `addManifest` writes in the same transaction as the manifest. */
export interface ManifestWrite {
  /** Tags of the repository pointed at the manifest. */
  tags?: readonly string[];
  /** Intents ended with the write. */
  endIntents?: readonly number[];
}

export interface MetadataStore extends RepositoryIndex {
  /** `memory`, `sqlite` or `postgres`. */
  readonly kind: string;
  /** True when the store outlives the process, so start-up need not walk storage once it was imported. */
  readonly persistent: boolean;
  /** True when other processes may write the store at the same time (replicas on PostgreSQL). */
  readonly shared: boolean;

  /** Runs `fn` while no other process sharing the store runs a section of the same name (the import). */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Takes the lease `name` at once when no holder, in any process sharing the store, has it; otherwise resolves
   * with the description the holder gave (`holder`), without waiting. See lease.ts.
   */
  tryLease(name: string, holder: string): Promise<LeaseAttempt>;
  /**
   * Runs `fn` while no other process sharing the store holds any of `keys` (a revision `name@digest`, a tag
   * `name:tag`), so that writes of one revision or tag on different replicas do not interleave (key-locks.ts). A
   * store one process uses runs `fn` at once: the stores' own in-process locks already keep those writes apart.
   */
  holdKeys<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;

  /** Up to `limit` repository names after `after` (exclusive), in bytewise order; a negative limit: all. */
  catalogPage(after: string | undefined, limit: number): Promise<string[]>;
  /** Up to `limit` tags of a repository after `after`, bytewise; undefined when the repository does not exist. */
  tagsPage(name: string, after: string | undefined, limit: number): Promise<string[] | undefined>;

  /**
   * `addRevision` with the manifest's facts (referrers and usage need them), in one transaction with what a
   * manifest PUT writes beside it: `tags` pointed at the manifest, and the intents `endIntents` ended.
   */
  addManifest(name: string, digest: string, at: number, facts: ManifestFacts, also?: ManifestWrite): Promise<void>;
  /** Replaces a repository's rows with what storage holds (import, rebuild), in one transaction. */
  importRepository(name: string, record: RepositoryRecord, facts: ReadonlyMap<string, ManifestFacts>): Promise<void>;
  /** Referrers of `subject` in the repository, by digest; undefined when the store lacks manifest facts for it
   *  (the memory index after a walk), and the caller reads storage instead. */
  referrers(name: string, subject: string): Promise<ReferrerFacts[] | undefined>;

  /** A manifest of the repository was pulled at `at`; may be batched like `noteUse`. */
  notePull(name: string, at?: number): void;
  /**
   * The manifest `digest` of the repository was pulled (GET, not HEAD) at `at`. Never waits: a store batches it
   * and may keep one note a minute per manifest (sql-pulls.ts), so a recorded time may be up to a minute early.
   */
  noteManifestPull(name: string, digest: string, at?: number): void;
  /** Last pull of each manifest of the repository that was pulled (ms since the epoch), by digest. */
  manifestPulls(name: string): Promise<Map<string, number>>;
  stats(name: string): Promise<RepositoryStats | undefined>;
  /**
   * The repository's bytes (as `stats().bytes`, without the rest of its stats) and, of `adding`, the bytes of the
   * digests it holds neither as a manifest nor as something its manifests reference: what a write would add.
   */
  quotaUsage(name: string, adding?: readonly SizedDigest[]): Promise<QuotaUsage>;

  beginIntent(kind: IntentKind, name: string, key: string): Promise<number>;
  /** Several intents in one transaction (a manifest PUT with its tags); their ids in the same order. */
  beginIntents(intents: readonly IntentKey[]): Promise<number[]>;
  endIntent(id: number): Promise<void>;
  /**
   * Intents left by writes that did not finish, oldest first; when `before` is given, only those begun before it
   * and those whose owner is one of `deadOwners` (processes known to be gone).
   */
  pendingIntents(before?: number, deadOwners?: readonly string[]): Promise<Intent[]>;
  /**
   * Every repository with its tags and revisions as of one moment, also while other processes write (one read
   * transaction): what a backup copies, consistent without holding other replicas' writes.
   */
  snapshot(): Promise<RepositorySnapshot[]>;
  /** The process whose intents this store begins from now on (recorded with each); undefined: none. */
  intentOwner?: string;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  /** Resolves when the store answers (for /healthz); throws when it cannot be reached. */
  ping(): Promise<void>;

  /** Writes what `noteUse` and `notePull` batched. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** `meta` key of the import state: `done` once storage was imported whole. */
export const IMPORT_STATE_KEY = 'import_state';
