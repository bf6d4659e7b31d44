/**
 * The registry's storage logic over a `StorageDriver`: blobs, uploads, manifests, tags and referrers in
 * distribution's layout, plus an in-memory index of repositories and tags (built at startup, updated on
 * every write) so that catalog and tag listings never rescan storage.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pMap from 'p-map';
import { RegistryError } from '../errors.js';
import { MAX_MANIFEST_BYTES, MEDIA_TYPES, digestOf, effectiveArtifactType, mustExist, parseManifest, type Descriptor, type ManifestInfo } from '../manifest.js';
import { parseDigest, tryParseDigest, type Digest, type DigestAlgorithm } from '../reference.js';
import { isNotFound, type DirEntry, type StorageDriver } from './driver.js';
import { KeyedLock } from './keyed-lock.js';
import { pathFor, type PathSpec } from './paths.js';

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Storage calls in flight at once while walking every repository (index build, upload purge). */
const WALK_CONCURRENCY = 64;

interface UploadState {
  hash: Hash;
  offset: number;
}

interface RepoEntry {
  tags: Map<string, string>;
  revisions: Set<string>;
  lastPush: number;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  info: ManifestInfo;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

function hashTap(hash: Hash, counter: { bytes: number }): Transform {
  return new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.bytes += chunk.length;
      cb(null, chunk);
    },
  });
}

export class RegistryStore {
  readonly driver: StorageDriver;
  private readonly uploads = new Map<string, UploadState>();
  private readonly uploadLock = new KeyedLock();
  private readonly tagLock = new KeyedLock();
  /** Held per repository and manifest digest by putManifest and deleteManifest, so that a delete never
   *  interleaves with a write of the same manifest (which could leave a tag pointing at a removed revision). */
  private readonly manifestLock = new KeyedLock();
  /** Held per repository by what creates content in it (upload start, blob link) and by GC removing it empty. */
  readonly repoLock = new KeyedLock();
  private readonly repos = new Map<string, RepoEntry>();
  private catalogCache: string[] | undefined;
  private readonly manifestCache = new Map<string, StoredManifest>();
  private manifestCacheBytes = 0;
  /**
   * Manifests are small (a few KiB) and parsed once, so the cache is bounded by an estimate of what each entry
   * holds, not by body bytes alone: 4 MiB is about 2,000 typical manifests, the hot set of a team's registry
   * (a miss costs one file read). A larger bound showed up whole in the server's peak RSS under load.
   */
  private static readonly MANIFEST_CACHE_LIMIT = 4 * 1024 * 1024;
  private static readonly MANIFEST_ENTRY_OVERHEAD = 1024;
  /** When each digest was last linked, checked or referenced: GC never sweeps what was used after it started. */
  private readonly lastUse = new Map<string, number>();

  constructor(driver: StorageDriver) {
    this.driver = driver;
  }

  private p(spec: PathSpec): string {
    return pathFor(spec);
  }

  private async readLink(path: string): Promise<Digest | undefined> {
    try {
      const text = (await this.driver.getContent(path)).toString('utf8').trim();
      return tryParseDigest(text);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await this.driver.stat(path);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  // ---------------------------------------------------------------- index

  /**
   * Walks `repositories/` once and records every repository's tags and manifest revisions. The walk goes
   * one directory level at a time through a fixed pool of workers, so the storage calls in flight, the files
   * open and the memory held stay bounded however many repositories there are.
   *
   * `removeIncompleteTags` (only before the server listens, when no tag write can be in flight) deletes tag
   * directories that have no `current/link`: what a process killed during a tag's first write leaves. They are
   * invisible through the API either way. Returns how many were removed.
   */
  async buildIndex(opts: { removeIncompleteTags?: boolean } = {}): Promise<number> {
    this.repos.clear();
    this.catalogCache = undefined;
    let removed = 0;
    await this.walkRepositories(async (name, entries) => {
      if (entries.some((e) => e.isDir && e.name === '_manifests')) removed += await this.loadRepo(name, opts.removeIncompleteTags ?? false);
    });
    return removed;
  }

  /**
   * Visits every directory under `repositories/` that may be a repository (names not starting with `_`),
   * with its entries, level by level, at most WALK_CONCURRENCY at once.
   */
  private async walkRepositories(visit: (name: string, entries: DirEntry[]) => Promise<void>): Promise<void> {
    let level: { dir: string; name: string }[] = [{ dir: this.p({ kind: 'repositoriesRoot' }), name: '' }];
    while (level.length > 0) {
      const next: { dir: string; name: string }[] = [];
      await pMap(
        level,
        async ({ dir, name }) => {
          let entries: DirEntry[];
          try {
            entries = await this.driver.list(dir);
          } catch (err) {
            if (isNotFound(err)) return;
            throw err;
          }
          if (name) await visit(name, entries);
          for (const e of entries) {
            if (e.isDir && !e.name.startsWith('_')) next.push({ dir: `${dir}/${e.name}`, name: name ? `${name}/${e.name}` : e.name });
          }
        },
        { concurrency: WALK_CONCURRENCY },
      );
      level = next;
    }
  }

  private async loadRepo(name: string, removeIncompleteTags: boolean): Promise<number> {
    let removed = 0;
    const entry: RepoEntry = { tags: new Map(), revisions: new Set(), lastPush: 0 };
    for (const alg of await this.listNames(this.p({ kind: 'revisionsRoot', name }))) {
      for (const hex of await this.listNames(`${this.p({ kind: 'revisionsRoot', name })}/${alg}`)) {
        const d = tryParseDigest(`${alg}:${hex}`);
        if (d) entry.revisions.add(d.value);
      }
    }
    for (const tag of await this.listNames(this.p({ kind: 'tagsRoot', name }))) {
      const current = this.p({ kind: 'tagCurrentLink', name, tag });
      const d = await this.readLink(current);
      if (d) entry.tags.set(tag, d.value);
      else if (removeIncompleteTags && !(await this.exists(current))) {
        await this.driver.delete(this.p({ kind: 'tagDir', name, tag }));
        removed++;
      }
    }
    if (entry.tags.size > 0 || entry.revisions.size > 0) {
      this.repos.set(name, entry);
      this.catalogCache = undefined;
    }
    return removed;
  }

  private async listNames(dir: string): Promise<string[]> {
    try {
      return (await this.driver.list(dir)).filter((e) => e.isDir).map((e) => e.name);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  private repoEntry(name: string): RepoEntry {
    let e = this.repos.get(name);
    if (!e) {
      e = { tags: new Map(), revisions: new Set(), lastPush: 0 };
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

  /** Repositories holding at least one tag or manifest, sorted. */
  catalog(): string[] {
    this.catalogCache ??= [...this.repos.keys()].sort();
    return this.catalogCache;
  }

  hasRepository(name: string): boolean {
    return this.repos.has(name);
  }

  /** Tags of a repository, sorted; undefined when the repository is unknown. */
  tags(name: string): string[] | undefined {
    const e = this.repos.get(name);
    return e ? [...e.tags.keys()].sort() : undefined;
  }

  repositoryState(name: string): { tags: Map<string, string>; revisions: Set<string>; lastPush: number } | undefined {
    return this.repos.get(name);
  }

  /** When a tag of the repository last moved (from the tag links' times; 0 when it has no tags). */
  async lastPush(name: string): Promise<number> {
    const e = this.repos.get(name);
    if (!e) return 0;
    if (e.lastPush > 0) return e.lastPush;
    let latest = 0;
    for (const tag of e.tags.keys()) {
      try {
        latest = Math.max(latest, (await this.driver.stat(this.p({ kind: 'tagCurrentLink', name, tag }))).modifiedAt.getTime());
      } catch {
        // raced with a delete
      }
    }
    e.lastPush = latest;
    return latest;
  }

  // ---------------------------------------------------------------- blobs

  noteUse(digest: string, now = Date.now()): void {
    this.lastUse.set(digest, now);
  }

  usedSince(digest: string, since: number): boolean {
    return (this.lastUse.get(digest) ?? 0) >= since;
  }

  /** Forgets uses older than `before` (called by GC). */
  pruneUses(before: number): void {
    for (const [d, t] of this.lastUse) if (t < before) this.lastUse.delete(d);
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await this.driver.stat(this.p({ kind: 'blobData', digest }))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A blob as seen from a repository: it must be linked there (as a layer or a manifest) and present. */
  async statBlob(name: string, digest: Digest): Promise<BlobInfo | undefined> {
    const linked =
      (await this.readLink(this.p({ kind: 'layerLink', name, digest })))?.value === digest.value ||
      (await this.readLink(this.p({ kind: 'revisionLink', name, digest })))?.value === digest.value;
    if (!linked) return undefined;
    this.noteUse(digest.value);
    const size = await this.blobSize(digest);
    return size === undefined ? undefined : { digest, size };
  }

  async openBlob(digest: Digest, range?: { start: number; end: number }): Promise<Readable> {
    return this.driver.reader(this.p({ kind: 'blobData', digest }), range);
  }

  /**
   * Writes bytes `range` of a blob to `out` (not ending it), through the driver's `copyTo` when it has one,
   * else its reader piped in.
   */
  async copyBlob(digest: Digest, range: { start: number; end: number }, out: Writable, onBytes?: (n: number) => void): Promise<void> {
    const path = this.p({ kind: 'blobData', digest });
    if (this.driver.copyTo) return this.driver.copyTo(path, range, out, onBytes);
    const src = await this.driver.reader(path, range);
    if (onBytes) src.on('data', (c: Buffer) => onBytes(c.length));
    await pipeline(src, out, { end: false });
  }

  async linkBlob(name: string, digest: Digest): Promise<void> {
    this.noteUse(digest.value);
    await this.repoLock.run(name, () => this.driver.putContent(this.p({ kind: 'layerLink', name, digest }), digest.value));
  }

  /** Removes a blob's link from one repository; the content stays until GC finds it unreferenced. */
  async unlinkBlob(name: string, digest: Digest): Promise<boolean> {
    const path = this.p({ kind: 'layerLink', name, digest });
    if (!(await this.exists(path))) return false;
    await this.driver.delete(path.slice(0, -'/link'.length));
    return true;
  }

  /** Links an existing blob from `from` into `name`; false when `from` does not hold it. */
  async mountBlob(name: string, from: string, digest: Digest): Promise<BlobInfo | undefined> {
    const info = await this.statBlob(from, digest);
    if (!info) return undefined;
    await this.linkBlob(name, digest);
    return info;
  }

  // ---------------------------------------------------------------- uploads

  async startUpload(name: string): Promise<string> {
    const id = randomUUID();
    await this.repoLock.run(name, () => this.driver.putContent(this.p({ kind: 'uploadStartedAt', name, id }), new Date().toISOString()));
    const w = await this.driver.writer(this.p({ kind: 'uploadData', name, id }), { append: false });
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
    this.uploads.set(id, { hash: createHash('sha256'), offset: 0 });
    return id;
  }

  private async assertUpload(name: string, id: string): Promise<void> {
    if (!UPLOAD_ID_RE.test(id) || !(await this.exists(this.p({ kind: 'uploadStartedAt', name, id })))) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id });
    }
  }

  /** Bytes received so far. */
  async uploadOffset(name: string, id: string): Promise<number> {
    await this.assertUpload(name, id);
    const state = this.uploads.get(id);
    if (state) return state.offset;
    return this.dataSize(name, id);
  }

  private async dataSize(name: string, id: string): Promise<number> {
    try {
      return (await this.driver.stat(this.p({ kind: 'uploadData', name, id }))).size;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /** The running hash of an upload; rebuilt from the data file when this process did not see it start. */
  private async uploadState(name: string, id: string): Promise<UploadState> {
    const known = this.uploads.get(id);
    if (known) return known;
    const hash = createHash('sha256');
    const counter = { bytes: 0 };
    await this.hashFile(this.p({ kind: 'uploadData', name, id }), hash, counter);
    const state = { hash, offset: counter.bytes };
    this.uploads.set(id, state);
    return state;
  }

  private async hashFile(path: string, hash: Hash, counter: { bytes: number }): Promise<void> {
    let src: Readable;
    try {
      src = await this.driver.reader(path);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for await (const chunk of src) {
      hash.update(chunk as Buffer);
      counter.bytes += (chunk as Buffer).length;
    }
  }

  /**
   * Appends a chunk. `range` is the parsed Content-Range: it must start where the upload stands, else 416
   * with the Range received so far.
   */
  async appendUpload(name: string, id: string, body: Readable, range?: { start: number; end: number }): Promise<number> {
    await this.assertUpload(name, id);
    return this.uploadLock.run(id, async () => {
      const state = await this.uploadState(name, id);
      if (range && (range.start !== state.offset || range.end < range.start)) {
        throw new RegistryError('RANGE_INVALID', { expectedStart: state.offset, received: `${range.start}-${range.end}` }, {
          headers: { Range: `0-${Math.max(0, state.offset - 1)}`, 'Docker-Upload-UUID': id },
        });
      }
      await this.appendLocked(name, id, state, body);
      return state.offset;
    });
  }

  private async appendLocked(name: string, id: string, state: UploadState, body: Readable): Promise<void> {
    const counter = { bytes: 0 };
    const out = await this.driver.writer(this.p({ kind: 'uploadData', name, id }), { append: true });
    try {
      await pipeline(body, hashTap(state.hash, counter), out);
    } catch (err) {
      // The file may hold part of the chunk: forget the running hash, it is rebuilt from the file if needed.
      this.uploads.delete(id);
      throw err;
    }
    state.offset += counter.bytes;
  }

  /**
   * Finishes an upload with an optional last chunk: verifies the digest (on mismatch the upload is removed and
   * nothing is stored), publishes the blob and links it into the repository.
   */
  async completeUpload(name: string, id: string, digest: Digest, body?: Readable, range?: { start: number; end: number }): Promise<BlobInfo> {
    await this.assertUpload(name, id);
    return this.uploadLock.run(id, async () => {
      let state: UploadState;
      try {
        state = await this.uploadState(name, id);
        if (range && range.start !== state.offset) {
          throw new RegistryError('RANGE_INVALID', { expectedStart: state.offset }, { headers: { Range: `0-${Math.max(0, state.offset - 1)}` } });
        }
        if (body) await this.appendLocked(name, id, state, body);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'RANGE_INVALID') throw err;
        await this.dropUpload(name, id);
        throw err;
      }
      const actual = await this.finalDigest(name, id, state, digest.algorithm);
      if (actual !== digest.hex) {
        await this.dropUpload(name, id);
        throw new RegistryError('DIGEST_INVALID', { expected: digest.value, actual: `${digest.algorithm}:${actual}` });
      }
      const size = state.offset;
      const dataPath = this.p({ kind: 'uploadData', name, id });
      if ((await this.blobSize(digest)) === undefined) {
        await this.driver.move(dataPath, this.p({ kind: 'blobData', digest }));
      }
      await this.linkBlob(name, digest);
      await this.dropUpload(name, id);
      return { digest, size };
    });
  }

  private async finalDigest(name: string, id: string, state: UploadState, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === 'sha256') return state.hash.copy().digest('hex');
    const hash = createHash(algorithm);
    await this.hashFile(this.p({ kind: 'uploadData', name, id }), hash, { bytes: 0 });
    return hash.digest('hex');
  }

  private async dropUpload(name: string, id: string): Promise<void> {
    this.uploads.delete(id);
    await this.driver.delete(this.p({ kind: 'uploadDir', name, id }));
  }

  async cancelUpload(name: string, id: string): Promise<void> {
    await this.assertUpload(name, id);
    await this.uploadLock.run(id, () => this.dropUpload(name, id));
  }

  /** Removes uploads started more than `maxAgeMs` ago in every repository; returns how many. */
  async purgeUploads(maxAgeMs: number, now = Date.now()): Promise<number> {
    let purged = 0;
    const names = await this.allRepositoryDirs();
    const lists = new Map<string, string[]>();
    await pMap(
      names,
      async (name) => {
        const ids = await this.listNames(this.p({ kind: 'uploadsRoot', name }));
        if (ids.length > 0) lists.set(name, ids);
      },
      { concurrency: WALK_CONCURRENCY },
    );
    for (const [name, ids] of lists) {
      const root = this.p({ kind: 'uploadsRoot', name });
      for (const id of ids) {
        let started = NaN;
        try {
          started = Date.parse((await this.driver.getContent(this.p({ kind: 'uploadStartedAt', name, id }))).toString('utf8').trim());
        } catch {
          // An upload being started has no startedat yet: its directory's time stands in.
        }
        if (Number.isNaN(started)) started = await this.driver.stat(`${root}/${id}`).then((st) => st.modifiedAt.getTime(), () => now);
        if (now - started > maxAgeMs) {
          await this.uploadLock.run(id, () => this.dropUpload(name, id));
          purged++;
        }
      }
    }
    return purged;
  }

  /** Every repository directory on storage, including ones holding only blobs or uploads. */
  async allRepositoryDirs(): Promise<string[]> {
    const out: string[] = [];
    await this.walkRepositories(async (name, entries) => {
      if (entries.some((e) => e.isDir && e.name.startsWith('_'))) out.push(name);
    });
    return out.sort();
  }

  // ---------------------------------------------------------------- manifests

  /** What an entry of the manifest cache is counted as holding: its body and the parsed form beside it. */
  private static cacheCost(m: StoredManifest): number {
    return m.body.length + RegistryStore.MANIFEST_ENTRY_OVERHEAD;
  }

  private cacheManifest(m: StoredManifest): void {
    if (this.manifestCache.has(m.digest)) return;
    // A small body may be a slice of a larger shared buffer (a request's chunks, Node's buffer pool): the cache
    // keeps a copy of its own so that it does not hold the rest of that buffer alive.
    if (m.body.byteLength < m.body.buffer.byteLength) {
      const own = Buffer.allocUnsafeSlow(m.body.length);
      m.body.copy(own);
      m = { ...m, body: own };
    }
    this.manifestCache.set(m.digest, m);
    this.manifestCacheBytes += RegistryStore.cacheCost(m);
    for (const [key, old] of this.manifestCache) {
      if (this.manifestCacheBytes <= RegistryStore.MANIFEST_CACHE_LIMIT) break;
      this.manifestCache.delete(key);
      this.manifestCacheBytes -= RegistryStore.cacheCost(old);
    }
  }

  clearCaches(): void {
    this.manifestCache.clear();
    this.manifestCacheBytes = 0;
  }

  /** Reads a manifest by digest from blob storage (no repository check). */
  async readManifest(digest: Digest): Promise<StoredManifest | undefined> {
    const cached = this.manifestCache.get(digest.value);
    if (cached) {
      // Least recently used goes first: a hit moves the entry to the end of the Map's order.
      this.manifestCache.delete(digest.value);
      this.manifestCache.set(digest.value, cached);
      return cached;
    }
    let body: Buffer;
    try {
      body = await this.driver.getContent(this.p({ kind: 'blobData', digest }));
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
    this.cacheManifest(m);
    return m;
  }

  async resolveTag(name: string, tag: string): Promise<Digest | undefined> {
    const known = this.repos.get(name)?.tags.get(tag);
    if (known) return parseDigest(known);
    return undefined;
  }

  async hasRevision(name: string, digest: Digest): Promise<boolean> {
    return this.repos.get(name)?.revisions.has(digest.value) ?? false;
  }

  async getManifest(name: string, ref: { tag: string } | { digest: Digest }): Promise<StoredManifest> {
    const digest = 'tag' in ref ? await this.resolveTag(name, ref.tag) : ref.digest;
    if (!digest || !(await this.hasRevision(name, digest))) {
      if (!this.repos.has(name)) throw new RegistryError('NAME_UNKNOWN', { name });
      throw new RegistryError('MANIFEST_UNKNOWN', 'tag' in ref ? { tag: ref.tag } : { digest: digest?.value });
    }
    const m = await this.readManifest(digest);
    if (!m) throw new RegistryError('MANIFEST_UNKNOWN', { digest: digest.value });
    return m;
  }

  /**
   * Stores a manifest under a tag or digest. Every blob it references must be linked in the repository and
   * every index child must be a manifest of the repository. `extraTags` also point at it (PUT by digest with
   * `?tag=`). Returns the digest and the parsed manifest.
   */
  async putManifest(
    name: string,
    ref: { tag: string } | { digest: Digest },
    body: Buffer,
    contentType: string | undefined,
    extraTags: string[] = [],
  ): Promise<{ digest: Digest; info: ManifestInfo }> {
    if (body.length > MAX_MANIFEST_BYTES) throw new RegistryError('MANIFEST_TOO_BIG', { limit: MAX_MANIFEST_BYTES, size: body.length });
    const info = parseManifest(body, contentType);
    const algorithm = 'digest' in ref ? ref.digest.algorithm : 'sha256';
    const hex = createHash(algorithm).update(body).digest('hex');
    const digest = parseDigest(`${algorithm}:${hex}`);
    if ('digest' in ref && ref.digest.hex !== hex) {
      throw new RegistryError('DIGEST_INVALID', { expected: ref.digest.value, actual: digest.value });
    }
    const missing: string[] = [];
    await Promise.all([
      ...info.blobs.filter(mustExist).map(async (d) => {
        if (!(await this.statBlob(name, digestOf(d)))) missing.push(d.digest);
      }),
      ...info.children.map(async (d) => {
        const cd = digestOf(d);
        if (!(await this.hasRevision(name, cd)) && !(await this.exists(this.p({ kind: 'revisionLink', name, digest: cd })))) missing.push(d.digest);
      }),
    ]);
    if (missing.length > 0) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', { missing: missing.sort() });

    return this.manifestLock.run(`${name}@${digest.value}`, async () => {
      this.noteUse(digest.value);
      for (const d of [...info.blobs, ...info.children]) this.noteUse(d.digest);
      if ((await this.blobSize(digest)) === undefined) {
        await this.driver.putContent(this.p({ kind: 'blobData', digest }), body);
      }
      await this.driver.putContent(this.p({ kind: 'revisionLink', name, digest }), digest.value);
      if (info.subject) {
        const subject = parseDigest(info.subject.digest);
        await this.driver.putContent(this.p({ kind: 'referrerLink', name, subject, digest }), digest.value);
      }
      const entry = this.repoEntry(name);
      entry.revisions.add(digest.value);
      entry.lastPush = Date.now();
      for (const tag of new Set(['tag' in ref ? ref.tag : undefined, ...extraTags].filter((t): t is string => t !== undefined))) {
        await this.tagLock.run(`${name}:${tag}`, async () => {
          await this.driver.putContent(this.p({ kind: 'tagIndexLink', name, tag, digest }), digest.value);
          await this.driver.putContent(this.p({ kind: 'tagCurrentLink', name, tag }), digest.value);
          entry.tags.set(tag, digest.value);
        });
      }
      this.cacheManifest({ digest: digest.value, mediaType: info.mediaType, body, info });
      return { digest, info };
    });
  }

  /** Removes one tag; the manifest it pointed at stays. */
  async deleteTag(name: string, tag: string): Promise<void> {
    const entry = this.repos.get(name);
    if (!entry) throw new RegistryError('NAME_UNKNOWN', { name });
    if (!entry.tags.has(tag)) throw new RegistryError('MANIFEST_UNKNOWN', { tag });
    await this.tagLock.run(`${name}:${tag}`, async () => {
      await this.driver.delete(this.p({ kind: 'tagDir', name, tag }));
      entry.tags.delete(tag);
    });
    this.dropIfEmpty(name);
  }

  /** Removes a manifest revision and every tag pointing at it; returns those tags. */
  async deleteManifest(name: string, digest: Digest): Promise<string[]> {
    return this.manifestLock.run(`${name}@${digest.value}`, () => this.deleteManifestLocked(name, digest));
  }

  private async deleteManifestLocked(name: string, digest: Digest): Promise<string[]> {
    const entry = this.repos.get(name);
    if (!entry) throw new RegistryError('NAME_UNKNOWN', { name });
    if (!entry.revisions.has(digest.value)) throw new RegistryError('MANIFEST_UNKNOWN', { digest: digest.value });
    const removed: string[] = [];
    for (const [tag, d] of [...entry.tags]) {
      if (d !== digest.value) continue;
      await this.tagLock.run(`${name}:${tag}`, async () => {
        if (entry.tags.get(tag) !== digest.value) return;
        await this.driver.delete(this.p({ kind: 'tagDir', name, tag }));
        entry.tags.delete(tag);
        removed.push(tag);
      });
    }
    const m = await this.readManifest(digest);
    if (m?.info.subject) {
      const subject = tryParseDigest(m.info.subject.digest);
      if (subject) await this.driver.delete(this.p({ kind: 'referrerLink', name, subject, digest }).slice(0, -'/link'.length));
    }
    await this.driver.delete(this.p({ kind: 'revisionDir', name, digest }));
    entry.revisions.delete(digest.value);
    this.dropIfEmpty(name);
    return removed.sort();
  }

  /** Descriptors of the manifests in `name` whose subject is `subject`, optionally of one artifactType. */
  async referrers(name: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const dir = this.p({ kind: 'referrersDir', name, subject });
    const out: Descriptor[] = [];
    for (const alg of await this.listNames(dir)) {
      for (const hex of await this.listNames(`${dir}/${alg}`)) {
        const d = tryParseDigest(`${alg}:${hex}`);
        if (!d || !(await this.hasRevision(name, d))) continue;
        const m = await this.readManifest(d);
        if (!m || m.info.subject?.digest !== subject.value) continue;
        const type = effectiveArtifactType(m.info);
        if (artifactType !== undefined && type !== artifactType) continue;
        const desc: Descriptor = { mediaType: m.mediaType, digest: d.value, size: m.body.length };
        if (type) desc.artifactType = type;
        if (m.info.annotations) desc.annotations = m.info.annotations;
        out.push(desc);
      }
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }

  /** The referrers response body. */
  static referrersIndex(descriptors: Descriptor[]): Buffer {
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: descriptors }));
  }
}
