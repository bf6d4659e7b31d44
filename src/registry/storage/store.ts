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
 * - `index`     repositories, tags, revisions, last push and last use, so that listings never rescan storage
 *               (repository-index.ts: the contract; memory-index.ts: today's implementation)
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
import type { RepositoryIndex } from './repository-index.js';
import { allRepositoryDirs, rebuildIndex } from './repository-walk.js';
import { TagStore } from './tag-store.js';
import { UploadStore } from './upload-store.js';

export type { BlobInfo } from './linked-blob-store.js';
export type { StoredManifest } from './manifest-cache.js';

export class RegistryStore {
  readonly driver: StorageDriver;
  readonly index: RepositoryIndex;
  readonly blobs: BlobStore;
  readonly linked: LinkedBlobStore;
  readonly uploads: UploadStore;
  readonly tags: TagStore;
  readonly manifests: ManifestStore;
  readonly referrers: ReferrerStore;
  /** Held per repository by what creates content in it (upload start, blob link) and by GC removing it empty. */
  readonly repoLock = new KeyedLock();
  private readonly manifestCache = new ManifestCache();

  constructor(driver: StorageDriver, index: RepositoryIndex = new MemoryIndex()) {
    this.driver = driver;
    this.index = index;
    this.blobs = new BlobStore(driver);
    this.linked = new LinkedBlobStore(driver, this.blobs, index, this.repoLock);
    this.uploads = new UploadStore(driver, this.blobs, this.linked, this.repoLock);
    this.tags = new TagStore(driver, index);
    this.manifests = new ManifestStore(driver, index, this.blobs, this.linked, this.tags, this.manifestCache);
    this.referrers = new ReferrerStore(driver, index, this.manifests);
  }

  /**
   * Rebuilds the index from storage. `removeIncompleteTags` (only before the server listens) also deletes tag
   * directories a killed write left without `current/link`; returns how many.
   */
  buildIndex(opts: { removeIncompleteTags?: boolean } = {}): Promise<number> {
    return rebuildIndex(this.driver, this.index, opts);
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
