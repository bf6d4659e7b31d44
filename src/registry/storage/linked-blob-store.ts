/**
 * Blobs as a repository sees them: a blob belongs to a repository once it is linked there
 * (`_layers/<alg>/<hex>/link`), or when it is one of the repository's manifest revisions.
 */
import type { Digest } from '../reference.js';
import type { BlobStore } from './blob-store.js';
import type { StorageDriver } from './driver.js';
import type { KeyedLock } from './keyed-lock.js';
import { pathExists, readLink } from './links.js';
import { pathFor } from './paths.js';
import type { MetadataStore } from '../metadata/store.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export class LinkedBlobStore {
  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly index: MetadataStore,
    /** Held per repository by what creates content in it and by GC removing it empty. */
    private readonly repoLock: KeyedLock,
  ) {}

  /** A blob as seen from a repository: it must be linked there (as a layer or a manifest) and present. */
  async stat(name: string, digest: Digest): Promise<BlobInfo | undefined> {
    const linked =
      (await readLink(this.driver, pathFor({ kind: 'layerLink', name, digest })))?.value === digest.value ||
      (await readLink(this.driver, pathFor({ kind: 'revisionLink', name, digest })))?.value === digest.value;
    if (!linked) return undefined;
    this.index.noteUse(digest.value);
    const size = await this.blobs.size(digest);
    return size === undefined ? undefined : { digest, size };
  }

  /**
   * Records a use of the blob durably (`protectUses`), against a GC sweeping it on this or another replica, before
   * a caller checks that it is stored and links it.
   */
  async protect(digest: Digest): Promise<void> {
    await this.index.protectUses([digest.value]);
  }

  /**
   * Links a stored blob into `name`; false when it is not stored (any more). The use is recorded first, so a GC
   * sweep either came before (the blob is found absent) or keeps the blob.
   */
  async link(name: string, digest: Digest): Promise<boolean> {
    await this.protect(digest);
    if ((await this.blobs.size(digest)) === undefined) return false;
    await this.linkProtected(name, digest);
    return true;
  }

  /** Writes the link of a blob the caller protected and found (or put) in storage after protecting it. */
  async linkProtected(name: string, digest: Digest): Promise<void> {
    await this.repoLock.run(name, () =>
      this.driver.putContent(pathFor({ kind: 'layerLink', name, digest }), digest.value),
    );
  }

  /** Removes a blob's link from one repository; the content stays until GC finds it unreferenced. */
  async unlink(name: string, digest: Digest): Promise<boolean> {
    const path = pathFor({ kind: 'layerLink', name, digest });
    if (!(await pathExists(this.driver, path))) return false;
    await this.driver.delete(path.slice(0, -'/link'.length));
    return true;
  }

  /** Links an existing blob from `from` into `name`; undefined when `from` does not hold it. */
  async mount(name: string, from: string, digest: Digest): Promise<BlobInfo | undefined> {
    await this.protect(digest);
    const info = await this.stat(from, digest);
    if (!info) return undefined;
    await this.linkProtected(name, digest);
    return info;
  }
}
