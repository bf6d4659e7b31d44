/**
 * The index of repositories the registry serves: which repositories exist, their tags and manifest revisions,
 * when each was last pushed to, and when each digest was last used. Catalog and tag listings, tag resolution and
 * the revision check of every manifest request are answered from it, never by scanning storage.
 *
 * Storage stays the source of truth: the index can always be rebuilt from it (`repository-walk.ts`), the stores
 * write storage first and the index after, and delete from the index first and storage after, so an index entry
 * never names what storage does not hold. `MetadataStore` (metadata/store.ts) extends this contract; it is
 * implemented in memory (`memory-index.ts`, rebuilt at every start) and by SQLite and PostgreSQL stores that
 * outlive the process, which is why queries and updates return promises.
 *
 * Contract:
 * - A repository exists while it holds at least one tag or revision: the first `addRevision` or `setTag`
 *   creates it, and the `removeTag` / `removeRevision` that leaves it empty removes it.
 * - Digests are kept as their string form (`sha256:<hex>`); names and tags are validated by the callers.
 * - Callers serialize the writes that must not interleave (the stores' keyed locks), so the index needs no
 *   transactions across calls.
 */
export interface RepositoryRecord {
  /** Tag → the digest it points at. */
  tags: ReadonlyMap<string, string>;
  revisions: ReadonlySet<string>;
  /** When a tag or revision was last written (ms since the epoch); 0 when not known yet. */
  lastPush: number;
}

export interface RepositoryIndex {
  /** Repositories holding at least one tag or manifest, sorted. */
  catalog(): Promise<string[]>;
  /** How many repositories `catalog` lists; kept at hand (for metrics), may lag a shared store slightly. */
  repositoryCount(): number;
  hasRepository(name: string): Promise<boolean>;
  /** A repository's tags and revisions; undefined when it does not exist. The record must not be changed. */
  repository(name: string): Promise<RepositoryRecord | undefined>;
  /** Tags of a repository, sorted; undefined when the repository does not exist. */
  tags(name: string): Promise<string[] | undefined>;
  /** The digest a tag points at. */
  tagTarget(name: string, tag: string): Promise<string | undefined>;
  hasRevision(name: string, digest: string): Promise<boolean>;
  /**
   * The digest `tag` points at when that manifest is a revision of the repository, else undefined: what a GET by
   * tag needs, in one read (one round trip to a shared store) instead of `tagTarget` then `hasRevision`.
   */
  tagRevision(name: string, tag: string): Promise<string | undefined>;

  /** Records a revision stored in the repository, pushed at `at`. */
  addRevision(name: string, digest: string, at: number): Promise<void>;
  removeRevision(name: string, digest: string): Promise<void>;
  /** Points a tag at a revision; ends the intent `endIntent` with it (one transaction) when given. */
  setTag(name: string, tag: string, digest: string, endIntent?: number): Promise<void>;
  removeTag(name: string, tag: string): Promise<void>;
  /** Records when the repository was last pushed to, as found in storage (a no-op for unknown repositories). */
  setLastPush(name: string, at: number): Promise<void>;

  /** Forgets every repository, before a rebuild from storage. */
  clear(): Promise<void>;
  /** Adds a repository found in storage (a rebuild); an empty record adds nothing. */
  load(name: string, record: RepositoryRecord): Promise<void>;

  /**
   * GC's bookkeeping: a digest was linked, checked or referenced at `at`. Called on hot paths, so it does not
   * wait; a shared store may batch it, as long as GC sees it before it sweeps (the grace window covers that).
   */
  noteUse(digest: string, at?: number): void;
  /** Whether the digest was used at or after `since`. */
  usedSince(digest: string, since: number): Promise<boolean>;
  /**
   * Records uses at once, durably, before a link to the blobs is written or their presence is checked for one.
   * Against `sweepUnused` on any process sharing the store: either the sweep finished first (the caller then
   * finds the blob gone) or the sweep sees this use and keeps the blob. A batched `noteUse` cannot promise that.
   */
  protectUses(digests: string[], at?: number): Promise<void>;
  /**
   * GC's sweep of one blob: runs `remove` unless the digest was used at or after `since`, with its use held
   * (a row lock in a shared store) so that a `protectUses` of it waits until the sweep is done. True when removed.
   */
  sweepUnused(digest: string, since: number, remove: () => Promise<void>): Promise<boolean>;
  /** Forgets uses older than `before` (called by GC once it is done). */
  pruneUses(before: number): Promise<void>;
}
