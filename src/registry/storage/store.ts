/**
 * The registry's storage, in distribution's layout over a `StorageDriver`, as a handful of small stores that
 * handlers and admin jobs reach through one `RegistryStore`:
 *
 * - `blobs`     blob content by digest, shared by all repositories             (blob-store.ts)
 * - `linked`    blobs as a repository sees them: links, mounts, unlinks        (linked-blob-store.ts)
 * - `uploads`   uploads in progress, verified and published as linked blobs    (upload-store.ts)
 * - `manifests` manifests by tag or digest: revisions, tags and referrer links (manifest-store.ts)
 * - `tags`      tag links                                                      (tag-store.ts)
 * - `referrers` the referrers API                                              (referrer-store.ts)
 * - `index`     the metadata store: repositories, tags, revisions, manifest facts, last push, pull and use, so
 *               that listings never rescan storage (metadata/store.ts: the contract; memory-index.ts, and
 *               metadata/sqlite-store.ts and postgres-store.ts for a store that outlives the process)
 *
 * Storage layout lives in paths.ts alone; every store reads and writes through the driver.
 */
import type { StorageDriver } from './driver.js';
import { BlobStore } from './blob-store.js';
import { KeyedLock } from './keyed-lock.js';
import { LinkedBlobStore } from './linked-blob-store.js';
import { ManifestCache } from './manifest-cache.js';
import { ManifestStore } from './manifest-store.js';
import { MemoryIndex } from './memory-index.js';
import { ReferrerStore } from './referrer-store.js';
import { IMPORT_STATE_KEY, type MetadataStore } from '../metadata/store.js';
import { allRepositoryDirs, rebuildIndex } from './repository-walk.js';
import { TagStore } from './tag-store.js';
import { UploadStore } from './upload-store.js';
import type { EventOutbox } from '../events/outbox.js';

export type { BlobInfo } from './linked-blob-store.js';
export type { StoredManifest } from './manifest-cache.js';

export class RegistryStore {
  readonly driver: StorageDriver;
  readonly blobs: BlobStore;
  /** Held per repository by what creates content in it (upload start, blob link) and by GC removing it empty. */
  readonly repoLock = new KeyedLock();
  /** The outbox of events, when the registry sends them (events/outbox.ts); set by the server. */
  events: EventOutbox | undefined;
  private readonly manifestCache = new ManifestCache();
  // Set together by `useIndex`, which runs once before the server listens.
  private current!: {
    index: MetadataStore;
    linked: LinkedBlobStore;
    uploads: UploadStore;
    tags: TagStore;
    manifests: ManifestStore;
    referrers: ReferrerStore;
  };

  constructor(driver: StorageDriver, index: MetadataStore = new MemoryIndex()) {
    this.driver = driver;
    this.blobs = new BlobStore(driver);
    this.useIndex(index);
  }

  get index(): MetadataStore {
    return this.current.index;
  }
  get linked(): LinkedBlobStore {
    return this.current.linked;
  }
  get uploads(): UploadStore {
    return this.current.uploads;
  }
  get tags(): TagStore {
    return this.current.tags;
  }
  get manifests(): ManifestStore {
    return this.current.manifests;
  }
  get referrers(): ReferrerStore {
    return this.current.referrers;
  }

  /** Puts the stores on another metadata store (opened asynchronously at start-up, before any request). */
  useIndex(index: MetadataStore): void {
    const { driver, blobs, repoLock } = this;
    const linked = new LinkedBlobStore(driver, blobs, index, repoLock);
    const tags = new TagStore(driver, index);
    const manifests = new ManifestStore(driver, index, blobs, linked, tags, this.manifestCache);
    this.current = {
      index,
      linked,
      uploads: new UploadStore(driver, blobs, linked, repoLock),
      tags,
      manifests,
      referrers: new ReferrerStore(driver, index, manifests),
    };
  }

  /**
   * Rebuilds the index from storage. `removeIncompleteTags` (only before the server listens) also deletes tag
   * directories a killed write left without `current/link`; returns how many. A store that keeps manifest facts
   * (`persistent`) gets them too, read from each revision's manifest.
   */
  async buildIndex(opts: { removeIncompleteTags?: boolean } = {}): Promise<number> {
    const index = this.index;
    // A persistent store cut off mid-rebuild must not pass for complete at the next start: it imports again.
    if (index.persistent) await index.setMeta(IMPORT_STATE_KEY, 'running');
    const removed = await rebuildIndex(this.driver, index, {
      ...opts,
      facts: index.persistent ? (d) => this.manifests.read(d) : undefined,
    });
    if (index.persistent) await index.setMeta(IMPORT_STATE_KEY, 'done');
    return removed;
  }

  /** Every repository directory on storage, including ones holding only blobs or uploads, sorted. */
  allRepositoryDirs(): Promise<string[]> {
    return allRepositoryDirs(this.driver);
  }

  /** Forgets cached manifests (after GC or a repair removed content). */
  clearCaches(): void {
    this.manifestCache.clear();
  }
}
