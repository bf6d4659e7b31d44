/**
 * The old generation's growing factor, raised while a large upload is in flight.
 *
 * The filesystem registry runs with a small fixed growing factor (`--heap-growing-percent=30`, process-env.ts), which
 * keeps the garbage of many small requests off its peak RSS. Under a large upload the same factor costs CPU: every
 * chunk of the body is a new Buffer whose memory V8 counts as external, and with the old generation's limit only
 * 30 % above its live size that churn alone reaches the limit, so full collections follow one another (69 in one
 * push of 512 MiB whole and one in 16 MiB chunks, against 2 with a factor of 4 from the start). V8 reads the factor
 * at each full collection, so it is raised while uploads run and put back a moment after the last one ends: small
 * requests keep the small factor, a stream gets room. Putting it back runs one full collection at once: the limit
 * V8 set under the large factor (4× the live size) would otherwise hold until the next one, and the garbage of the
 * small requests that follow would fill it first (10–18 MiB more peak RSS in the manifest phase after the pushes).
 *
 * While large uploads run, a young-generation collection is also asked for every SCAVENGE_EVERY_BYTES of their
 * bytes received (read from their sockets' counters on a short timer). Each chunk read from a socket is a Buffer
 * whose memory lives outside V8's heap and goes back only when a collection finds the Buffer dead; the chunks cost
 * the young generation so little of its own room that several concurrent uploads (skopeo pushing its layers side by
 * side) read 25–30 MiB of chunks between two collections, all resident at once. A scavenge of the 1 MiB young
 * generation takes well under a millisecond, so one per 8 MiB costs a push about a hundred of them per GiB.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The factor while uploads run: 4× the live size (see REGISTRY_S3_NODE_FLAGS, which runs with it always). */
export const UPLOAD_GROWING_PERCENT = 300;
/** Upload bytes received (all large uploads together) between two young-generation collections. */
export const SCAVENGE_EVERY_BYTES = 8 * 1024 * 1024;
/** How often the uploads' byte counters are read. */
export const SCAVENGE_CHECK_MS = 10;

/** A request body at least this large (or of unknown length) counts as a large upload. */
export const LARGE_UPLOAD_BYTES = 1024 * 1024;
/** How long after the last large upload the factor is put back: the next chunk of a chunked push comes sooner. */
export const RESTORE_AFTER_MS = 2000;

const FLAG = '--heap-growing-percent';

/**
 * V8's full collection, as `--expose-gc` gives it: the flag set now applies to contexts made after it, so a new
 * context hands the function over. Undefined when V8 refuses.
 */
function fullCollection(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** The growing factor a process was started with (`--heap-growing-percent=N`), 0 (V8's own choice) without one. */
export function startGrowingPercent(execArgv: readonly string[]): number {
  let percent = 0;
  for (const arg of execArgv) {
    const m = /^--heap[-_]growing[-_]percent=(\d+)$/.exec(arg);
    if (m) percent = Number(m[1]);
  }
  return percent;
}

/** V8's young-generation collection, through the same function (undefined when V8 refuses). */
function minorCollection(): (() => void) | undefined {
  const gc = fullCollection() as ((options: { type: 'minor' }) => void) | undefined;
  return gc ? () => gc({ type: 'minor' }) : undefined;
}

/** What an upload's bytes are counted from: its socket (`bytesRead` only grows). */
export interface ByteCounter {
  readonly bytesRead: number;
}

let collector: (() => void) | undefined;
let scavenger: (() => void) | undefined;

export class UploadHeapGrowth {
  private inFlight = 0;
  private raised = false;
  private timer: NodeJS.Timeout | undefined;
  /** Each upload's counter in flight, and its value when last read. */
  private readonly counters = new Map<ByteCounter, number>();
  private sinceScavenge = 0;
  private ticker: NodeJS.Timeout | undefined;

  /**
   * `base` is the factor the process runs with; nothing changes when it is already UPLOAD_GROWING_PERCENT or more.
   * `setFlags`, `collect` and `scavenge` are V8's (a test passes its own, to see the calls).
   */
  constructor(
    private readonly base: number,
    private readonly setFlags: (flags: string) => void = setFlagsFromString,
    private readonly collect: () => void = () => (collector ??= fullCollection() ?? (() => undefined))(),
    private readonly scavenge: () => void = () => (scavenger ??= minorCollection() ?? (() => undefined))(),
  ) {}

  /** For this process: its start factor, from its command line. */
  static forThisProcess(): UploadHeapGrowth {
    return new UploadHeapGrowth(startGrowingPercent(process.execArgv));
  }

  /** Whether this process changes anything during uploads (not when it runs with the upload factor already). */
  private get active(): boolean {
    return this.base < UPLOAD_GROWING_PERCENT;
  }

  /** A large upload begins; `bytes` counts what it receives, for the young-generation collections. */
  begin(bytes?: ByteCounter): void {
    this.inFlight++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.active) return;
    if (bytes && !this.counters.has(bytes)) {
      this.counters.set(bytes, bytes.bytesRead);
      this.ticker ??= setInterval(() => this.countBytes(), SCAVENGE_CHECK_MS).unref();
    }
    if (this.raised) return;
    this.set(UPLOAD_GROWING_PERCENT);
    this.raised = true;
  }

  /** Adds what each upload received since the last reading; one young-generation collection per SCAVENGE_EVERY_BYTES. */
  private countBytes(): void {
    for (const [counter, last] of this.counters) {
      const now = counter.bytesRead;
      this.sinceScavenge += Math.max(0, now - last);
      this.counters.set(counter, now);
    }
    if (this.sinceScavenge < SCAVENGE_EVERY_BYTES) return;
    // One collection however much arrived: a burst needs no more, and the rest counts towards the next.
    this.sinceScavenge %= SCAVENGE_EVERY_BYTES;
    try {
      this.scavenge();
    } catch {
      // V8's own collections still come.
    }
  }

  end(bytes?: ByteCounter): void {
    if (bytes && this.counters.has(bytes)) {
      this.countBytes();
      this.counters.delete(bytes);
      if (this.counters.size === 0) this.stopTicker();
    }
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.inFlight > 0 || !this.raised || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.inFlight > 0) return;
      this.set(this.base);
      this.raised = false;
      try {
        this.collect();
      } catch {
        // Without it the limit comes down at V8's next full collection.
      }
    }, RESTORE_AFTER_MS);
    this.timer.unref();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  /** Puts the start factor back at once (the server closing). */
  close(): void {
    this.counters.clear();
    this.stopTicker();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.raised) this.set(this.base);
    this.raised = false;
  }

  private set(percent: number): void {
    try {
      this.setFlags(`${FLAG}=${percent}`);
    } catch {
      // A V8 that refuses flags after start keeps the factor it has: slower uploads, nothing wrong.
    }
  }
}

/** Whether `req` sends a blob upload's bytes and is large (or of unknown length). */
export function isLargeUpload(req: IncomingMessage): boolean {
  const method = req.method;
  if (method !== 'PATCH' && method !== 'PUT' && method !== 'POST') return false;
  if (!(req.url ?? '').includes('/blobs/uploads')) return false;
  const length = req.headers['content-length'];
  if (length === undefined) return req.headers['transfer-encoding'] !== undefined;
  return Number(length) >= LARGE_UPLOAD_BYTES;
}

/** `handler`, telling `growth` of each large upload from its start until its response closes. */
export function trackingUploads(handler: RequestListener, growth: UploadHeapGrowth): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (isLargeUpload(req)) {
      const socket = req.socket as ByteCounter | undefined;
      growth.begin(socket);
      res.once('close', () => growth.end(socket));
    }
    handler(req, res);
  };
}
