/**
 * Writers that grow a file on S3 in the shapes of s3-staged.ts (plain, or staged: parts in a multipart upload and
 * the tail in a marker object), continued by any process that shares the bucket.
 *
 * A writer fills part buffers taken from the driver's pool (incoming chunks are copied in and freed, parts are
 * exactly `partSize`) and uploads each full one while it fills the next: up to `partsInFlight` parts at once, so the
 * S3 server hashes and stores parts on several cores while the registry receives. It takes a buffer beyond its first
 * only when the pool has one free and no writer waits, and while writers wait it gives each buffer back as soon as
 * its part is sent; nothing is held whole in memory, and the memory for parts is bounded by `buffers.max ×
 * partSize`. The session is written once, at the end, after every part settled.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';
import type { WriterOptions } from '../driver.js';
import { CONTENT_TYPE, MIN_PART_SIZE, type Lease, type S3Context } from './s3-context.js';
import {
  abortUpload,
  abortUploadsUnder,
  copyParts,
  createUpload,
  getBytes,
  head,
  readSession,
  uploadPart,
  writeSession,
  type Part,
} from './s3-staged.js';

/** A part upload in flight and the buffer it reads (given back at once when it settled while a writer waits). */
interface Flight {
  done: Promise<void>;
  lease: Lease;
  released: boolean;
}

interface WriteState {
  uploadId: string | undefined;
  /** The upload's creation while parts wait for it (several may be flushed before it is known). */
  creating: Promise<string> | undefined;
  /** True when this writer created the upload: it aborts it if the writer fails before it is recorded. */
  createdHere: boolean;
  /** The parts recorded so far, in the order their uploads finished (sorted when the session is written). */
  parts: Part[];
  /** The number the next flushed part gets. */
  nextPart: number;
  /** The buffer being filled (undefined only while the writer waits for one) and how much of it holds data. */
  lease: Lease | undefined;
  filled: number;
  /** Part uploads in flight, oldest first, with their buffers: a buffer goes back only once its upload settled. */
  inflight: Flight[];
  /** Set when the writer is destroyed. */
  closed: boolean;
}

/** Copies bytes into the writer's part buffer (they always fit: callers pass less than a part). */
function fill(state: WriteState, bytes: Buffer): void {
  bytes.copy(leaseOf(state).buffer, state.filled);
  state.filled += bytes.length;
}

function leaseOf(state: WriteState): Lease {
  if (!state.lease) throw new Error('S3 writer used while waiting for a part buffer');
  return state.lease;
}

/** Where a writer starts: the file's current parts and tail (or nothing when truncating or absent). */
async function openState(ctx: S3Context, key: string, append: boolean, lease: Lease, attempt = 0): Promise<WriteState> {
  const state: WriteState = {
    uploadId: undefined,
    creating: undefined,
    createdHere: false,
    parts: [],
    nextPart: 1,
    lease,
    filled: 0,
    inflight: [],
    closed: false,
  };
  const found = await head(ctx, key);
  if (!found) return state;
  if (!append) {
    // Truncating a staged file: its parts will never be used.
    if (found.staged) await abortUploadsUnder(ctx, key);
    return state;
  }
  if (found.staged) {
    const staged = await readSession(ctx, key);
    if (staged) {
      state.uploadId = staged.session.uploadId;
      state.parts = staged.session.parts;
      // a tail staged by a process with larger parts is a valid part by itself (over 5 MiB)
      if (staged.tail.length >= lease.buffer.length)
        state.parts.push(await uploadPart(ctx, key, staged.session.uploadId, state.parts.length + 1, staged.tail));
      else fill(state, staged.tail);
      state.nextPart = state.parts.length + 1;
      return state;
    }
    // materialized by another process between the HEAD and the GET: look again (once)
    if (attempt === 0) return openState(ctx, key, append, lease, 1);
    throw new Error(`${key} changed while it was opened for appending`);
  }
  if (found.size < MIN_PART_SIZE) {
    fill(state, (await getBytes(ctx, key)).body);
    return state;
  }
  const uploadId = await createUpload(ctx, key);
  try {
    state.parts = await copyParts(ctx, key, found.size, key, uploadId);
  } catch (err) {
    // no writer exists yet to abort it on failure
    await abortUpload(ctx, key, uploadId).catch(() => undefined);
    throw err;
  }
  state.uploadId = uploadId;
  state.createdHere = true;
  state.nextPart = state.parts.length + 1;
  return state;
}

/** The upload the writer's parts go to, created by the first part that needs it. */
async function uploadIdOf(ctx: S3Context, key: string, state: WriteState): Promise<string> {
  if (state.uploadId !== undefined) return state.uploadId;
  state.creating ??= createUpload(ctx, key).then((id) => {
    state.uploadId = id;
    state.createdHere = true;
    return id;
  });
  return state.creating;
}

/** Starts uploading the full buffer as the next part; the writer has no buffer until `nextBuffer`. */
function startPart(ctx: S3Context, key: string, state: WriteState): void {
  const lease = leaseOf(state);
  const body = lease.buffer.subarray(0, state.filled);
  const n = state.nextPart++;
  const flight: Flight = { done: Promise.resolve(), lease, released: false };
  flight.done = (async () => {
    try {
      const uploadId = await uploadIdOf(ctx, key, state);
      state.parts.push(await uploadPart(ctx, key, uploadId, n, body));
    } finally {
      // another writer waits for a buffer: this one goes back now rather than when this writer next needs one
      if (ctx.buffers.contended) {
        flight.released = true;
        lease.release();
      }
    }
  })();
  // a failure is reported where the upload is awaited (the next buffer, the end, or the writer's destruction)
  flight.done.catch(() => undefined);
  state.inflight.push(flight);
  state.lease = undefined;
  state.filled = 0;
}

/**
 * Gives the writer a buffer to fill: another one from the pool while fewer than `partsInFlight` uploads are in
 * flight and one is free, otherwise the oldest upload's once it finished (so a writer holds at most
 * `partsInFlight` buffers, and 1 uploads part after part). When writers wait for buffers, each finished upload's
 * buffer goes back to the pool and this writer queues for one like them.
 */
async function nextBuffer(ctx: S3Context, state: WriteState): Promise<void> {
  const extra = state.inflight.length < ctx.partsInFlight ? ctx.buffers.tryAcquire() : undefined;
  if (extra) {
    state.lease = extra;
    return;
  }
  const oldest = state.inflight[0];
  if (!oldest) throw new Error('S3 writer has neither a buffer nor a part in flight');
  await oldest.done;
  state.inflight.shift();
  const lease = oldest.released ? await ctx.buffers.acquire() : oldest.lease;
  // a writer destroyed meanwhile gave its buffers back: nothing may be written any more
  if (state.closed) {
    lease.release();
    throw new Error('S3 writer closed while it waited for a part buffer');
  }
  state.lease = lease;
}

/** Waits for every part in flight (the first failure is thrown once all settled) and frees their buffers. */
async function drain(state: WriteState): Promise<void> {
  const flights = [...state.inflight];
  const results = await Promise.allSettled(flights.map((f) => f.done));
  state.inflight = [];
  for (const f of flights) f.lease.release();
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function seal(ctx: S3Context, key: string, state: WriteState): Promise<void> {
  await drain(state);
  const tail = leaseOf(state).buffer.subarray(0, state.filled);
  if (state.uploadId === undefined) {
    await ctx.client.send(
      new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: tail, ContentType: CONTENT_TYPE }),
    );
    return;
  }
  state.parts.sort((a, b) => a.n - b.n);
  await writeSession(ctx, key, { uploadId: state.uploadId, parts: state.parts }, tail);
  state.createdHere = false;
}

/** A writer on `key` (see the module comment); its data is recorded when the stream finishes. */
export async function openWriter(ctx: S3Context, key: string, opts: WriterOptions): Promise<Writable> {
  const first = await ctx.buffers.acquire();
  let state: WriteState;
  try {
    state = await openState(ctx, key, opts.append, first);
  } catch (err) {
    first.release();
    throw err;
  }
  const releaseAll = (): void => {
    state.lease?.release();
    state.lease = undefined;
  };
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      opts.onData?.(chunk);
      let offset = 0;
      const copyIn = (): void => {
        while (offset < chunk.length) {
          const { buffer } = leaseOf(state);
          const n = Math.min(chunk.length - offset, buffer.length - state.filled);
          chunk.copy(buffer, state.filled, offset, offset + n);
          state.filled += n;
          offset += n;
          if (state.filled === buffer.length) {
            startPart(ctx, key, state);
            nextBuffer(ctx, state).then(copyIn, cb);
            return;
          }
        }
        cb();
      };
      copyIn();
    },
    final(cb) {
      seal(ctx, key, state).then(() => {
        releaseAll();
        cb();
      }, cb);
    },
    destroy(err, cb) {
      state.closed = true;
      // Part uploads may still be reading their buffers: those go back to the pool once they settled.
      void drain(state)
        .catch(() => undefined)
        .then(async () => {
          releaseAll();
          // An upload this writer created and never recorded would be orphaned: abort it now.
          if (err && state.createdHere && state.uploadId !== undefined)
            await abortUpload(ctx, key, state.uploadId).catch(() => undefined);
          cb(err);
        });
    },
  });
}
