/**
 * Uploads in progress (`_uploads/<uuid>/`): started, appended to in chunks, hashed as they stream, then
 * verified against the client's digest and published as a blob linked into the repository (on a mismatch
 * nothing is stored).
 *
 * Any process sharing the storage may receive any request of an upload (replicas behind a load balancer). The
 * running hash lives in the memory of the process that saw the bytes, valid only while the data file still has
 * the length it counted: the offset is always read from storage, and when it differs from the hash's (another
 * process appended) or this process never saw the upload, appends go on without a hash and completion re-hashes
 * the data file once (storage drivers that stage data, such as S3, only make it readable as a whole then).
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../errors.js';
import type { Digest, DigestAlgorithm } from '../reference.js';
import type { BlobStore } from './blob-store.js';
import { ContentMismatchError, isNotFound, settled, type ByteRange, type StorageDriver } from './driver.js';
import { KeyedLock } from './keyed-lock.js';
import type { BlobInfo, LinkedBlobStore } from './linked-blob-store.js';
import { pathExists } from './links.js';
import { pathFor } from './paths.js';
import { allUploadDirs } from './repository-walk.js';

const UPLOAD_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface UploadState {
  /** The sha256 of bytes 0..offset, or undefined when they were not all seen here (re-hashed on completion). */
  hash: Hash | undefined;
  offset: number;
}

export class UploadStore {
  private readonly states = new Map<string, UploadState>();
  /** Held per upload id: chunks, completion and cancellation of one upload never interleave. */
  private readonly lock = new KeyedLock();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly linked: LinkedBlobStore,
    private readonly repoLock: KeyedLock,
  ) {}

  /** Starts an upload in `name`; returns its id. */
  async start(name: string): Promise<string> {
    const id = randomUUID();
    await this.repoLock.run(name, () =>
      this.driver.putContent(pathFor({ kind: 'uploadStartedAt', name, id }), new Date().toISOString()),
    );
    const w = await this.driver.writer(pathFor({ kind: 'uploadData', name, id }), { append: false });
    await new Promise<void>((resolve, reject) => w.end((err?: Error | null) => (err ? reject(err) : resolve())));
    this.states.set(id, { hash: createHash('sha256'), offset: 0 });
    return id;
  }

  /** Bytes received so far. */
  async offset(name: string, id: string): Promise<number> {
    await this.assertExists(name, id);
    return this.storedSize(name, id);
  }

  private async storedSize(name: string, id: string): Promise<number> {
    try {
      return (await this.driver.stat(pathFor({ kind: 'uploadData', name, id }))).size;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /**
   * Appends a chunk. `range` is the parsed Content-Range: it must start where the upload stands, else 416
   * with the Range received so far.
   */
  async append(name: string, id: string, body: Readable, range?: ByteRange): Promise<number> {
    await this.assertExists(name, id);
    return this.lock.run(id, async () => {
      const state = await this.state(name, id);
      if (range && (range.start !== state.offset || range.end < range.start)) {
        throw new RegistryError(
          'RANGE_INVALID',
          { expectedStart: state.offset, received: `${range.start}-${range.end}` },
          {
            headers: { Range: `0-${Math.max(0, state.offset - 1)}`, 'Docker-Upload-UUID': id },
          },
        );
      }
      await this.appendLocked(name, id, state, body);
      return state.offset;
    });
  }

  /**
   * Finishes an upload with an optional last chunk: verifies the digest (on mismatch the upload is removed and
   * nothing is stored), publishes the blob and links it into the repository. `length` is the last chunk's
   * declared length, when the request gave one: see `completeDirect`.
   */
  async complete(
    name: string,
    id: string,
    digest: Digest,
    body?: Readable,
    range?: ByteRange,
    length?: number,
  ): Promise<BlobInfo> {
    await this.assertExists(name, id);
    return this.lock.run(id, async () => {
      let state: UploadState;
      try {
        state = await this.state(name, id);
        if (body && length !== undefined && state.offset === 0 && (!range || range.start === 0)) {
          const direct = await this.completeDirect(name, id, digest, body, length);
          if (direct) return direct;
        }
        if (range && range.start !== state.offset) {
          throw new RegistryError(
            'RANGE_INVALID',
            { expectedStart: state.offset },
            { headers: { Range: `0-${Math.max(0, state.offset - 1)}` } },
          );
        }
        if (body) await this.appendLocked(name, id, state, body);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'RANGE_INVALID') throw err;
        await this.drop(name, id);
        throw err;
      }
      const actual = await this.finalDigest(name, id, state, digest.algorithm);
      if (actual !== digest.hex) {
        await this.drop(name, id);
        throw new RegistryError('DIGEST_INVALID', { expected: digest.value, actual: `${digest.algorithm}:${actual}` });
      }
      const size = state.offset;
      // Protected before the presence check: a GC sweeping an older copy of this blob cannot remove it after.
      await this.linked.protect(digest);
      if ((await this.blobs.size(digest)) === undefined) {
        await this.driver.move(pathFor({ kind: 'uploadData', name, id }), pathFor({ kind: 'blobData', digest }));
      }
      await this.linked.linkProtected(name, digest);
      await this.drop(name, id);
      return { digest, size };
    });
  }

  /**
   * A whole blob in one request (`POST ?digest=` with its length declared) on a driver with `putVerified`: written
   * once, straight to the blob's place, and only if it hashes to the digest, with no upload session at all (on S3
   * a staged upload costs its own objects, a completion and a server-side copy). Undefined, having read nothing of
   * the body, when the driver does not take it (no `putVerified`, another algorithm, too large, or the blob is
   * stored already): the caller then goes through an upload session as usual.
   */
  async putWhole(name: string, digest: Digest, body: Readable, length: number): Promise<BlobInfo | undefined> {
    if (!this.driver.putVerified || digest.algorithm !== 'sha256') return undefined;
    // Protected before the presence check and the write, as in the staged path: a GC sweep cannot remove it after.
    await this.linked.protect(digest);
    if ((await this.blobs.size(digest)) !== undefined) return undefined;
    try {
      const taken = await this.driver.putVerified(pathFor({ kind: 'blobData', digest }), body, {
        length,
        sha256: digest.hex,
      });
      if (!taken) return undefined;
    } catch (err) {
      if (err instanceof ContentMismatchError) {
        throw new RegistryError('DIGEST_INVALID', {
          expected: digest.value,
          actual: `sha256:${err.actual}`,
          bytes: err.bytes,
          declared: length,
        });
      }
      throw err;
    }
    await this.linked.linkProtected(name, digest);
    return { digest, size: length };
  }

  /** `putWhole` for the last chunk of a session that received nothing before it; the session goes either way. */
  private async completeDirect(
    name: string,
    id: string,
    digest: Digest,
    body: Readable,
    length: number,
  ): Promise<BlobInfo | undefined> {
    let done: BlobInfo | undefined;
    try {
      done = await this.putWhole(name, digest, body, length);
    } catch (err) {
      await this.drop(name, id);
      throw err;
    }
    if (done) await this.drop(name, id);
    return done;
  }

  async cancel(name: string, id: string): Promise<void> {
    await this.assertExists(name, id);
    await this.lock.run(id, () => this.drop(name, id));
  }

  /** Removes uploads started more than `maxAgeMs` ago in every repository; returns how many. */
  async purge(maxAgeMs: number, now = Date.now()): Promise<number> {
    let purged = 0;
    for (const [name, ids] of await allUploadDirs(this.driver)) {
      for (const id of ids) {
        if (now - (await this.startedAt(name, id, now)) > maxAgeMs) {
          await this.lock.run(id, () => this.drop(name, id));
          purged++;
        }
      }
    }
    return purged;
  }

  /**
   * When the upload started, for the purge; `now` (not stale) while that cannot be known yet. An unreadable
   * `startedat` (storage failing for a moment) is no evidence of age: the upload is kept for a later purge to judge.
   * Without one (an upload a crash left half removed), the data file's last write stands in, then the directory's
   * time where the driver keeps directories (S3 has none: a prefix has no time, and the driver reports 0).
   */
  private async startedAt(name: string, id: string, now: number): Promise<number> {
    try {
      const started = Date.parse(
        (await this.driver.getContent(pathFor({ kind: 'uploadStartedAt', name, id }))).toString('utf8').trim(),
      );
      if (!Number.isNaN(started)) return started;
    } catch (err) {
      if (!isNotFound(err)) return now;
    }
    for (const kind of ['uploadData', 'uploadDir'] as const) {
      const time = await this.driver.stat(pathFor({ kind, name, id })).then(
        (st) => st.modifiedAt.getTime(),
        () => 0,
      );
      if (time > 0) return time;
    }
    return now;
  }

  private async assertExists(name: string, id: string): Promise<void> {
    if (!UPLOAD_ID_RE.test(id) || !(await pathExists(this.driver, pathFor({ kind: 'uploadStartedAt', name, id })))) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', { uuid: id });
    }
  }

  /**
   * Where the upload stands on storage, with the running hash when this process saw every byte up to there.
   * Read under the upload's lock: another process may have appended since this one last did.
   */
  private async state(name: string, id: string): Promise<UploadState> {
    const offset = await this.storedSize(name, id);
    const known = this.states.get(id);
    if (known?.hash && known.offset === offset) return known;
    const state: UploadState = { hash: offset === 0 ? createHash('sha256') : undefined, offset };
    this.states.set(id, state);
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

  private async appendLocked(name: string, id: string, state: UploadState, body: Readable): Promise<void> {
    const counter = { bytes: 0 };
    const out = await this.driver.writer(pathFor({ kind: 'uploadData', name, id }), {
      append: true,
      onData: (chunk) => {
        state.hash?.update(chunk);
        counter.bytes += chunk.length;
      },
    });
    try {
      await pipeline(body, out);
    } catch (err) {
      // The file may hold part of the chunk: forget the running hash, it is rebuilt from the file if needed.
      this.states.delete(id);
      // and the upload stays locked until the writer has settled what it started, so the next append sees it
      await settled(out);
      throw err;
    }
    state.offset += counter.bytes;
  }

  private async finalDigest(name: string, id: string, state: UploadState, algorithm: DigestAlgorithm): Promise<string> {
    if (algorithm === 'sha256' && state.hash) return state.hash.copy().digest('hex');
    const hash = createHash(algorithm);
    const counter = { bytes: 0 };
    await this.hashFile(pathFor({ kind: 'uploadData', name, id }), hash, counter);
    if (counter.bytes !== state.offset) {
      // another process appended while this one completed: the client broke the protocol, nothing is published
      throw new RegistryError('BLOB_UPLOAD_INVALID', { reason: 'the upload changed while it was completed' });
    }
    return hash.digest('hex');
  }

  private async drop(name: string, id: string): Promise<void> {
    this.states.delete(id);
    await this.driver.delete(pathFor({ kind: 'uploadDir', name, id }));
  }
}
