/**
 * Manifests: content in blob storage, a revision link per repository (`_manifests/revisions/<alg>/<hex>/link`),
 * tags and referrer links beside. A manifest is stored only once everything it references is in the
 * repository; a write and a delete of the same manifest in the same repository never interleave.
 * Writes go intent → storage → metadata, deletes intent → metadata → storage (see metadata/store.ts).
 */
import { createHash } from 'node:crypto';
import { RegistryError } from '../errors.js';
import { MAX_MANIFEST_BYTES, digestOf, mustExist, parseManifest, type ManifestInfo } from '../manifest.js';
import { parseDigest, tryParseDigest, type Digest } from '../reference.js';
import type { BlobStore } from './blob-store.js';
import { isNotFound, putAll, type ContentEntry, type StorageDriver } from './driver.js';
import { KeyedLock } from './keyed-lock.js';
import type { LinkedBlobStore } from './linked-blob-store.js';
import { pathExists } from './links.js';
import type { ManifestCache, StoredManifest } from './manifest-cache.js';
import { pathFor } from './paths.js';
import { manifestFacts } from '../metadata/facts.js';
import { revisionKey, tagKey, type MetadataStore } from '../metadata/store.js';
import type { TagStore } from './tag-store.js';

export type ManifestRef = { tag: string } | { digest: Digest };

export class ManifestStore {
  /** Held per repository and manifest digest by `put` and `delete`, so that a delete never interleaves with a
   *  write of the same manifest (which could leave a tag pointing at a removed revision). */
  private readonly lock = new KeyedLock();

  constructor(
    private readonly driver: StorageDriver,
    private readonly index: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly linked: LinkedBlobStore,
    private readonly tags: TagStore,
    private readonly cache: ManifestCache,
  ) {}

  /** Reads a manifest by digest from blob storage (no repository check); undefined when absent or unparsable. */
  async read(digest: Digest): Promise<StoredManifest | undefined> {
    const cached = this.cache.get(digest.value);
    if (cached) return cached;
    let body: Buffer;
    try {
      body = await this.driver.getContent(pathFor({ kind: 'blobData', digest }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    let info: ManifestInfo;
    try {
      info = parseManifest(body, undefined);
    } catch {
      return undefined;
    }
    const m = { digest: digest.value, mediaType: info.mediaType, body, info };
    this.cache.add(m);
    return m;
  }

  /** A manifest of the repository by tag or digest; NAME_UNKNOWN or MANIFEST_UNKNOWN otherwise. */
  async get(name: string, ref: ManifestRef): Promise<StoredManifest> {
    const digest =
      'tag' in ref
        ? await this.tags.resolve(name, ref.tag)
        : (await this.index.hasRevision(name, ref.digest.value))
          ? ref.digest
          : undefined;
    if (!digest) {
      if (!(await this.index.hasRepository(name))) throw new RegistryError('NAME_UNKNOWN', { name });
      throw new RegistryError('MANIFEST_UNKNOWN', 'tag' in ref ? { tag: ref.tag } : { digest: ref.digest.value });
    }
    const m = await this.read(digest);
    if (!m) throw new RegistryError('MANIFEST_UNKNOWN', { digest: digest.value });
    this.index.notePull(name);
    return m;
  }

  /**
   * Stores a manifest under a tag or digest. Every blob it references must be linked in the repository and
   * every index child must be a manifest of the repository. `extraTags` also point at it (PUT by digest with
   * `?tag=`). Returns the digest and the parsed manifest. `lazy` (the pull-through cache) skips the reference
   * check: a cached manifest's blobs and children are fetched from the upstream when first asked for. `guard` runs
   * holding the tags' locks, before anything is written, and refuses the write by throwing (immutable tags:
   * policy/immutable.ts).
   */
  async put(
    name: string,
    ref: ManifestRef,
    body: Buffer,
    contentType: string | undefined,
    extraTags: string[] = [],
    opts: { lazy?: boolean; guard?: (tags: readonly string[], digest: Digest) => Promise<void> } = {},
  ): Promise<{ digest: Digest; info: ManifestInfo }> {
    if (body.length > MAX_MANIFEST_BYTES)
      throw new RegistryError('MANIFEST_TOO_BIG', { limit: MAX_MANIFEST_BYTES, size: body.length });
    const info = parseManifest(body, contentType);
    const algorithm = 'digest' in ref ? ref.digest.algorithm : 'sha256';
    const hex = createHash(algorithm).update(body).digest('hex');
    const digest = parseDigest(`${algorithm}:${hex}`);
    if ('digest' in ref && ref.digest.hex !== hex) {
      throw new RegistryError('DIGEST_INVALID', { expected: ref.digest.value, actual: digest.value });
    }
    // Protected before their presence is checked: a GC on any replica either swept them before (the check
    // fails) or keeps them. The manifest's own blob too, as an identical body may be stored unreferenced.
    await this.index.protectUses([
      digest.value,
      ...info.blobs.map((d) => d.digest),
      ...info.children.map((d) => d.digest),
    ]);
    if (!opts.lazy) await this.checkReferences(name, info);
    const tags = [...new Set(['tag' in ref ? ref.tag : undefined, ...extraTags])]
      .filter((t): t is string => t !== undefined)
      .sort();
    // One intent transaction, one storage sync and one metadata transaction for the manifest and its tags; the
    // same keys held across replicas (holdKeys) as in this process.
    const keys = [revisionKey(name, digest.value), ...tags.map((t) => tagKey(name, t))];
    return this.lock.run(revisionKey(name, digest.value), () =>
      this.tags.holding(name, tags, () =>
        this.index.holdKeys(keys, async () => {
          await opts.guard?.(tags, digest);
          const intents = await this.index.beginIntents([
            { kind: 'revision-put', name, key: digest.value },
            ...tags.map((tag) => ({ kind: 'tag-put' as const, name, key: tag })),
          ]);
          // The content before the links that name it, the revision before its tags: `putAll` keeps that order
          // through a crash, and recovery finishes the intents in the order they were begun.
          const writes: ContentEntry[] = [];
          if ((await this.blobs.size(digest)) === undefined)
            writes.push({ path: pathFor({ kind: 'blobData', digest }), data: body });
          writes.push({ path: pathFor({ kind: 'revisionLink', name, digest }), data: digest.value });
          if (info.subject) {
            const subject = parseDigest(info.subject.digest);
            writes.push({ path: pathFor({ kind: 'referrerLink', name, subject, digest }), data: digest.value });
          }
          for (const tag of tags) writes.push(...this.tags.writes(name, tag, digest));
          await putAll(this.driver, writes);
          await this.index.addManifest(name, digest.value, Date.now(), manifestFacts(info, body.length), {
            tags,
            endIntents: intents,
          });
          this.cache.add({ digest: digest.value, mediaType: info.mediaType, body, info });
          return { digest, info };
        }),
      ),
    );
  }

  /** Removes a manifest revision and every tag pointing at it; returns those tags, sorted. */
  async delete(name: string, digest: Digest): Promise<string[]> {
    return this.lock.run(revisionKey(name, digest.value), () =>
      this.index.holdKeys([revisionKey(name, digest.value)], async () => {
        if (!(await this.index.hasRepository(name))) throw new RegistryError('NAME_UNKNOWN', { name });
        if (!(await this.index.hasRevision(name, digest.value)))
          throw new RegistryError('MANIFEST_UNKNOWN', { digest: digest.value });
        // Holding the revision's key: no write of this manifest, on any replica, can point a tag at it meanwhile.
        const removed = await this.tags.deletePointingAt(name, digest);
        const intent = await this.index.beginIntent('revision-delete', name, digest.value);
        await this.index.removeRevision(name, digest.value);
        await this.removeFromStorage(name, digest);
        await this.index.endIntent(intent);
        return removed;
      }),
    );
  }

  /** Deletes a revision's link and its referrer link from storage (the metadata no longer lists it). */
  async removeFromStorage(name: string, digest: Digest): Promise<void> {
    const m = await this.read(digest);
    if (m?.info.subject) {
      const subject = tryParseDigest(m.info.subject.digest);
      if (subject)
        await this.driver.delete(pathFor({ kind: 'referrerLink', name, subject, digest }).slice(0, -'/link'.length));
    }
    await this.driver.delete(pathFor({ kind: 'revisionDir', name, digest }));
  }

  /** MANIFEST_BLOB_UNKNOWN unless every blob is linked in the repository and every child is one of its manifests. */
  private async checkReferences(name: string, info: ManifestInfo): Promise<void> {
    const missing: string[] = [];
    await Promise.all([
      ...info.blobs.filter(mustExist).map(async (d) => {
        if (!(await this.linked.stat(name, digestOf(d)))) missing.push(d.digest);
      }),
      ...info.children.map(async (d) => {
        const cd = digestOf(d);
        if (
          !(await this.index.hasRevision(name, cd.value)) &&
          !(await pathExists(this.driver, pathFor({ kind: 'revisionLink', name, digest: cd })))
        )
          missing.push(d.digest);
      }),
    ]);
    if (missing.length > 0) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { missing: missing.sort() });
  }
}
