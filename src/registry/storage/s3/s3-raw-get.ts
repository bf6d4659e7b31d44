/**
 * A large pull's GET on a plain socket that reads into buffers it reuses. Through undici's dispatcher the body's
 * bytes are copied into its parser's memory and out again as a new Buffer per chunk; measured outside the registry
 * (a 1 GiB object from versitygw copied to a socket), that user time was 0.41–0.52 s per GiB against 0.14–0.18 s
 * read this way, the kernel's part the same (`docs/benchmarks.md`, S3 pull). No HTTP client reads into a caller's
 * buffer, so the answer's head is read here; only a plain answer is taken (the status and length asked for, no
 * transfer coding), anything else is left to the caller, which asks again through the SDK.
 *
 * The socket reads into one buffer (`onread`): READ_BYTES from a small shared set (`readBuffers`) while one is
 * free, SMALL_READ_BYTES of its own otherwise. The body is copied from it into BATCH_BYTES batches handed to the
 * response in turn; while BATCHES of them are on their way, reading stops, and what they could not take stays in
 * the read buffer until one comes back, so a GET holds at most its read buffer and BATCHES batches. When the
 * response is a socket or an HTTP response, neither of which keeps a chunk once its write callback ran, a batch
 * whose callback ran is used again; any other stream may keep what it was given, and gets new batches. One
 * connection per GET, closed at the end: only bodies of RAW_MIN_BYTES and more come here, where a connection's
 * set-up is nothing beside the transfer.
 */
import { ServerResponse } from 'node:http';
import { Socket, connect } from 'node:net';
import type { Writable } from 'node:stream';
import { prematureClose } from '../copy-batched.js';

/** A signed GET: where it goes and every header, the signature included (s3-direct.ts signs it). */
export interface RawRequest {
  origin: string;
  path: string;
  headers: Record<string, string>;
}

/** The smallest body read this way; smaller ones go through the connection pool. */
export const RAW_MIN_BYTES = 8 * 1024 * 1024;
/**
 * Bytes one read takes while the GET holds a large read buffer. Large reads drain the socket in few calls and let
 * the server send in few large steps: per GiB pulled from versitygw here, the registry's CPU went from 1.1-1.4 s
 * with 64 KiB reads to 0.5-0.7 s with 4 MiB ones (the server's own rose by about 0.1 s).
 */
const READ_BYTES = 4 * 1024 * 1024;
/** Bytes one read takes when every large read buffer is in use. */
const SMALL_READ_BYTES = 64 * 1024;
const BATCH_BYTES = 256 * 1024;
/** Batches on their way to the response at most; reading waits for one to come back. */
const BATCHES = 4;
/** An answer's head larger than this is not a plain answer. */
const HEAD_MAX = 64 * 1024;

/** The error code of a GET that did not connect, answer or send in time (see S3Direct.unavailable). */
export const RAW_TIMEOUT_CODE = 'REGCTL_S3_TIMEOUT';

/** An answer's status and headers (names in lower case, the last of a repeated header). */
export interface AnswerHead {
  status: number;
  headers: Map<string, string>;
}

/** The head of an HTTP/1.x answer (without its closing empty line); undefined when it is not one. */
export function parseHead(text: string): AnswerHead | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** The request's head: the signed headers as signed, and a close at the end. */
function requestHead(req: RawRequest): string {
  let head = `GET ${req.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(req.headers)) head += `${name}: ${value}\r\n`;
  return `${head}connection: close\r\n\r\n`;
}

/** Whether an answer is `expected` bytes as asked for: 200 or 206, that length, no transfer coding. */
function isPlain(answer: AnswerHead, expected: number): boolean {
  const length = answer.headers.get('content-length');
  return (
    (answer.status === 200 || answer.status === 206) &&
    length !== undefined &&
    /^\d+$/.test(length) &&
    Number(length) === expected &&
    !answer.headers.has('transfer-encoding')
  );
}

function timeout(what: string): Error {
  return Object.assign(new Error(`S3 did not ${what} in time`), { code: RAW_TIMEOUT_CODE });
}

/**
 * The large read buffers: at most `max` in use at once (a GET beyond that reads into a small buffer of its own) and
 * at most `keep` kept between GETs, so what large reads cost in memory stays bounded under any number of pulls.
 */
export class ReadBuffers {
  private readonly free: Buffer[] = [];
  private readonly large = new WeakSet<Buffer>();
  private used = 0;

  constructor(
    readonly max: number,
    readonly keep: number,
  ) {}

  /** Large buffers handed out and not given back. */
  get inUse(): number {
    return this.used;
  }

  take(): Buffer {
    if (this.used >= this.max) return Buffer.allocUnsafe(SMALL_READ_BYTES);
    this.used++;
    const buf = this.free.pop() ?? Buffer.allocUnsafe(READ_BYTES);
    this.large.add(buf);
    return buf;
  }

  /** Gives back what `take` gave, once its socket can no longer read into it. */
  give(buf: Buffer): void {
    if (!this.large.delete(buf)) return;
    this.used--;
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

/** Every large GET's read buffers: four of 4 MiB at most, two kept. */
export const readBuffers = new ReadBuffers(4, 2);

/**
 * Body bytes copied into BATCH_BYTES batches and written to `out` as each fills. A batch comes back once its write
 * callback ran, to be used again only when `out` is a socket or an HTTP response (see the top of this file).
 */
class Batches {
  private readonly free: Buffer[] = [];
  private readonly reuse: boolean;
  private batch: Buffer | undefined;
  private filled = 0;
  private inFlight = 0;

  constructor(
    private readonly out: Writable,
    /** Told each time a batch's write callback ran. */
    private readonly onBack: () => void,
    private readonly onBytes?: (n: number) => void,
  ) {
    this.reuse = out instanceof ServerResponse || out instanceof Socket;
  }

  /** True while BATCHES are on their way: reading should wait for `onBack`. */
  get full(): boolean {
    return this.inFlight >= BATCHES;
  }

  /**
   * Copies from `src[start, end)`, writing each batch it fills, until BATCHES are on their way; returns where it
   * stopped (`end` when it took everything).
   */
  add(src: Buffer, start: number, end: number): number {
    while (start < end && !this.full) {
      const batch = (this.batch ??= this.free.pop() ?? Buffer.allocUnsafe(BATCH_BYTES));
      const n = Math.min(end - start, batch.length - this.filled);
      src.copy(batch, this.filled, start, start + n);
      this.filled += n;
      start += n;
      if (this.filled === batch.length) this.flush();
    }
    return start;
  }

  /** Writes what the current batch holds. Throws when `out` is closed. */
  flush(): void {
    const batch = this.batch;
    const n = this.filled;
    if (batch === undefined || n === 0) return;
    this.batch = undefined;
    this.filled = 0;
    if (this.out.destroyed || this.out.writableEnded) throw prematureClose();
    this.inFlight++;
    this.out.write(n === batch.length ? batch : batch.subarray(0, n), () => {
      this.inFlight--;
      if (this.reuse) this.free.push(batch);
      this.onBack();
    });
    this.onBytes?.(n);
  }
}

export interface RawGetHooks {
  /** How long connecting may take. */
  connectTimeoutMs: number;
  /** How long the answer's head, or the next bytes of its body, may take. */
  timeoutMs: number;
  /** Told the status of the answer. */
  answered(status: number): void;
  onBytes?: (n: number) => void;
}

/**
 * Writes the `expected` bytes that `req` (a signed GET of a range, over plain HTTP) answers to `out`, not ending
 * it. Resolves true once written; false, with nothing written, when the answer is anything but those bytes; rejects
 * with the error once bytes flowed, and with a RAW_TIMEOUT_CODE error when the endpoint did not connect or answer
 * in time. A closed `out` rejects with ERR_STREAM_PREMATURE_CLOSE.
 */
export function rawCopy(req: RawRequest, expected: number, out: Writable, hooks: RawGetHooks): Promise<boolean> {
  const url = new URL(req.origin);
  return new Promise<boolean>((resolve, reject) => {
    const batches = new Batches(
      out,
      () => {
        if (!waiting || settled) return;
        const left = pending;
        pending = undefined;
        try {
          if (left && !take(left.src, left.start, left.end)) return;
        } catch (err) {
          finish(err as Error);
          return;
        }
        waiting = false;
        socket.setTimeout(hooks.timeoutMs);
        socket.resume();
      },
      hooks.onBytes,
    );
    const readBuffer = readBuffers.take();
    let head: Buffer | undefined = Buffer.alloc(0);
    let remaining = expected;
    /** Bytes read that no batch could take yet. */
    let pending: { src: Buffer; start: number; end: number } | undefined;
    let waiting = false;
    let settled = false;
    /** What the endpoint is waited for, in a time-out's message. */
    let awaited = 'accept the connection';

    const finish = (outcome: boolean | Error): void => {
      if (settled) return;
      settled = true;
      out.off('close', onClose);
      socket.destroy();
      readBuffers.give(readBuffer);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onClose = (): void => finish(prematureClose());

    /**
     * Copies body bytes into batches; false when reading must wait for a batch to come back. What the batches
     * could not take stays where it was read (reading waits, so the read buffer is not written over) until then.
     */
    const take = (src: Buffer, start: number, end: number): boolean => {
      if (end - start > remaining) throw new Error('S3 sent more bytes than the answer holds');
      const stopped = batches.add(src, start, end);
      remaining -= stopped - start;
      if (remaining === 0) {
        batches.flush();
        finish(true);
        return false;
      }
      if (stopped === end && !batches.full) return true;
      if (stopped < end) pending = { src, start: stopped, end };
      // The response is slow, not S3: no time-out while reading waits for it.
      waiting = true;
      socket.setTimeout(0);
      return false;
    };

    /** Reads the answer's head from what arrived; false when it is not the plain answer asked for. */
    const readHead = (chunk: Buffer): boolean => {
      const sofar: Buffer = Buffer.concat([head as Buffer, chunk]);
      const end = sofar.indexOf('\r\n\r\n');
      if (end < 0) {
        if (sofar.length > HEAD_MAX) return false;
        head = sofar;
        return true;
      }
      head = undefined;
      const parsed = parseHead(sofar.subarray(0, end).toString('latin1'));
      if (!parsed) return false;
      hooks.answered(parsed.status);
      if (!isPlain(parsed, expected)) return false;
      awaited = 'send the rest of the body';
      if (end + 4 < sofar.length && !take(sofar, end + 4, sofar.length)) socket.pause();
      return true;
    };

    const socket = connect({
      // An IPv6 address comes bracketed in a URL, not in a socket's options.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 80 : Number(url.port),
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Buffer): boolean => {
          if (settled) return false;
          try {
            if (head !== undefined) {
              if (!readHead(buf.subarray(0, n))) finish(false);
              return !settled && !waiting;
            }
            return take(buf, 0, n);
          } catch (err) {
            finish(err as Error);
            return false;
          }
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(hooks.connectTimeoutMs);
    socket.on('timeout', () => finish(timeout(awaited)));
    socket.once('connect', () => {
      awaited = 'answer';
      socket.setTimeout(hooks.timeoutMs);
      socket.write(requestHead(req));
    });
    // Before the head: the caller asks the SDK, which reports; once the head was read, the pull fails.
    socket.on('error', (err) => finish(head === undefined ? err : false));
    socket.on('close', () =>
      finish(head === undefined ? new Error('S3 closed the connection before the end of the body') : false),
    );
    out.on('close', onClose);
  });
}
