/**
 * Blob bytes from S3 on the pull path, without the SDK's response handling. A pull is one GET of one object, and
 * the SDK's stream of the response body costs about twice the CPU per GiB of the same GET made with undici's
 * client: at hundreds of MB/s that CPU is what limits a registry process, whose requests run on one core. So the
 * GET is signed by the SDK (a presigned URL, computed locally from the same credentials and settings) and sent
 * through an undici connection pool.
 *
 * Only a plain answer takes this path: 200 or 206 with the bytes asked for. Anything else (a missing key, a staged
 * upload's marker, a range past the end, an endpoint that refuses) is left to the SDK path, which turns each into
 * the driver's error or outcome, so there is one place that knows what S3's answers mean.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { ByteRange } from '../driver.js';

/** Long enough for a slow start, short enough that a leaked URL is soon useless; URLs are never logged. */
const URL_SECONDS = 300;

export interface FastGetOptions {
  client: S3Client;
  bucket: string;
}

export class FastGet {
  private readonly agent: Dispatcher;

  constructor(private readonly opts: FastGetOptions) {
    // The timeouts match the SDK client's (s3-client.ts): connecting fails within seconds, a stalled body in two
    // minutes.
    this.agent = new Agent({ connect: { timeout: 5_000 }, headersTimeout: 120_000, bodyTimeout: 120_000 });
  }

  /**
   * The bytes of `range` of the object at `key`, or undefined when S3 answered anything but those bytes (the body
   * of that answer is discarded; the caller asks again through the SDK).
   */
  async open(key: string, range: ByteRange): Promise<Readable | undefined> {
    const command = new GetObjectCommand({ Bucket: this.opts.bucket, Key: key });
    let url: URL;
    try {
      url = new URL(await getSignedUrl(this.opts.client, command, { expiresIn: URL_SECONDS }));
    } catch {
      return undefined;
    }
    let answer: Dispatcher.ResponseData;
    try {
      answer = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'GET',
        // Not part of the signature: S3 takes unsigned headers on a presigned request.
        headers: { range: `bytes=${range.start}-${range.end}` },
      });
    } catch {
      return undefined;
    }
    const expected = range.end - range.start + 1;
    const length = Number(answer.headers['content-length']);
    const whole = answer.statusCode === 200 && range.start === 0 && length === expected;
    if ((answer.statusCode === 206 && length === expected) || whole) return answer.body;
    await answer.body.dump().catch(() => undefined);
    return undefined;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
