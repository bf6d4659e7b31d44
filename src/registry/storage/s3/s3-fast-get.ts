/**
 * Blob bytes from S3 on the pull path, without the SDK's response handling. A pull is one GET of one object, and
 * the SDK's stream of the response body costs about twice the CPU per GiB of the same GET made with undici's
 * client: at hundreds of MB/s that CPU is what limits a registry process, whose requests run on one core. So the
 * GET is signed by the SDK's signer and sent through undici's connection pool (s3-direct.ts), whose body chunks
 * go straight from its handler into the response in batches (copy-batched.ts): no body stream between them, and
 * the socket paused while the response has no room.
 *
 * A large body over plain HTTP is read on a socket of its own into reused buffers (s3-raw-get.ts).
 *
 * Only a plain answer takes this path: 200 or 206 with the bytes asked for. Anything else (a missing key, a staged
 * upload's marker, a range past the end, an endpoint that refuses) is left to the SDK path, which turns each into
 * the driver's error or outcome, so there is one place that knows what S3's answers mean.
 */
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { prematureClose, ResponseBatch, roomIn } from '../copy-batched.js';
import type { ByteRange } from '../driver.js';
import { CONNECT_TIMEOUT_MS } from './s3-direct.js';
import type { S3Direct, SignedRequest } from './s3-direct.js';
import { RAW_MIN_BYTES, rawCopy } from './s3-raw-get.js';

export class FastGet {
  constructor(private readonly direct: S3Direct) {}

  /**
   * Writes the bytes of `range` of the object at `key` to `out` (not ending it); false, with nothing written, when
   * S3 answered anything but those bytes or could not be reached (the caller asks again through the SDK). Once
   * bytes flow, a failure of either side rejects, and a closed `out` rejects with ERR_STREAM_PREMATURE_CLOSE.
   */
  async copy(key: string, range: ByteRange, out: Writable, onBytes?: (n: number) => void): Promise<boolean> {
    if (!this.direct.open) return false;
    let req: SignedRequest;
    try {
      req = await this.direct.sign('GET', key, { range: `bytes=${range.start}-${range.end}` });
    } catch {
      return false;
    }
    const expected = range.end - range.start + 1;
    if (expected >= RAW_MIN_BYTES && req.origin.startsWith('http:')) {
      const hooks = {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        timeoutMs: this.direct.timeoutMs,
        answered: (status: number) => this.direct.answered(status),
        ...(onBytes ? { onBytes } : {}),
      };
      try {
        return await rawCopy(req, expected, out, hooks);
      } catch (err) {
        throw this.direct.unavailable(err) ?? err;
      }
    }
    return new Promise<boolean>((resolve, reject) => {
      const batch = new ResponseBatch(out, onBytes);
      let flowing = false;
      let settled = false;
      let controller: Dispatcher.DispatchController | undefined;
      const settle = (outcome: boolean | Error): void => {
        if (settled) return;
        settled = true;
        out.off('close', onClose);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const onClose = (): void => {
        settle(prematureClose());
        controller?.abort(prematureClose());
      };
      out.on('close', onClose);
      this.direct.agent.dispatch(
        { origin: req.origin, path: req.path, method: 'GET', headers: req.headers },
        {
          onRequestStart: (c) => {
            controller = c;
          },
          onResponseStart: (c, status, headers) => {
            this.direct.answered(status);
            const length = Number(headers['content-length']);
            const whole = status === 200 && range.start === 0 && length === expected;
            if ((status === 206 && length === expected) || whole) {
              flowing = true;
              return;
            }
            settle(false);
            c.abort(new Error(`S3 answered ${status}`));
          },
          onResponseData: (c, chunk) => {
            if (settled) return;
            try {
              if (batch.add(chunk)) return;
            } catch (err) {
              settle(err as Error);
              c.abort(err as Error);
              return;
            }
            c.pause();
            // A close while waiting is `onClose`'s.
            roomIn(out).then(
              () => c.resume(),
              () => undefined,
            );
          },
          onResponseEnd: () => {
            try {
              batch.write();
              settle(true);
            } catch (err) {
              settle(err as Error);
            }
          },
          // Before any byte, a timeout ends the pull (the SDK would wait as long again); anything else is the SDK's.
          onResponseError: (_c, err) => settle(flowing ? err : (this.direct.unavailable(err) ?? false)),
        },
      );
    });
  }
}
