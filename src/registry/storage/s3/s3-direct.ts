/**
 * S3 requests past the SDK's middleware stack, for the calls the registry makes most: HEAD of a key, GET of a
 * small object, PUT of a few bytes, and the GET of a pull (s3-fast-get.ts). A manifest PUT makes about nine such
 * calls; through the SDK each costs the registry near a millisecond of CPU (its middleware, its response parsing),
 * signed here with the SDK's own SigV4 signer and sent through one undici connection pool, a quarter of that.
 *
 * The signer takes the client's credential provider and region, so credentials come from the SDK's standard chain
 * as for every other call; the URL of a key is the one the SDK resolves (path style or virtual host, the endpoint's
 * own path), found once by presigning a probe key locally.
 *
 * Only plain answers are read here: callers take 200 (and 404 where a missing key is an outcome) and hand anything
 * else, or a request that could not be sent, to the SDK path, which retries and turns each answer into the
 * driver's error. So there is one place that knows what S3's errors mean, and a failing endpoint still ends in
 * StorageUnavailableError (503 with Retry-After). Two exceptions keep that fallback from doubling a cost: a call
 * that timed out ends here (the SDK would wait as long again), and a server that keeps refusing this path's
 * signing is left to the SDK for a while.
 */
import { createHash } from 'node:crypto';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { Agent, type Dispatcher } from 'undici';
import { StorageUnavailableError } from '../driver.js';
import { describeS3Error } from './s3-client.js';
import { RAW_TIMEOUT_CODE } from './s3-raw-get.js';

/** The key presigned (locally, never sent) to learn how the SDK addresses the bucket's objects. */
const PROBE_KEY = 'regctl-endpoint-probe';

/** What a request to S3 is made of, signed: where it goes and every header, the signature included. */
export interface SignedRequest {
  origin: string;
  /** The escaped path (and no query). */
  path: string;
  headers: Record<string, string>;
}

/** An answer read whole. */
export interface DirectAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A key's path segments escaped as SigV4 wants them: everything but `A-Za-z0-9-._~`, `/` kept. */
export function escapeKey(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** The user metadata of an answer (`x-amz-meta-*` headers, the prefix removed), as the SDK gives `Metadata`. */
export function metadataOf(headers: DirectAnswer['headers']): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') meta[name.slice('x-amz-meta-'.length)] = value;
  return meta;
}

export interface DirectOptions {
  /** How long a request may wait for an answer, or between bytes of one; default 120 s, as the SDK client's. */
  timeoutMs?: number;
  /** The endpoint, only to name it in error messages. */
  endpoint?: string;
  /** How long calls skip this path after refusals; default a minute. */
  refusalPauseMs?: number;
}

/** Refusals (403) in a row after which calls skip this path for a while (see `answered`). */
const MAX_REFUSALS = 3;

/** undici's codes for an endpoint that did not connect, answer or send in time. */
const TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  RAW_TIMEOUT_CODE,
]);

/** How long connecting to the endpoint may take. */
export const CONNECT_TIMEOUT_MS = 5_000;

/** The bucket's address: the presigned probe's URL, and the path its keys are appended to (ending in `/`). */
interface Base {
  url: URL;
  path: string;
}

export class S3Direct {
  /** Shared with the pull path: one pool of connections to the endpoint. */
  readonly agent: Agent;
  /** How long a request may wait for an answer, or between bytes of one. */
  readonly timeoutMs: number;
  private readonly signer: SignatureV4;
  private base: Promise<Base> | undefined;
  private refusals = 0;
  private pausedUntil = 0;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly opts: DirectOptions = {},
  ) {
    const config = client.config;
    this.signer = new SignatureV4({
      credentials: config.credentials,
      region: config.region,
      service: 's3',
      sha256: config.sha256,
      // S3 signs the path as sent: escaped once (escapeKey), not again.
      uriEscapePath: false,
      applyChecksum: true,
    });
    // The timeouts match the SDK client's (s3-client.ts): connecting fails within seconds, a stalled answer in two
    // minutes.
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.agent = new Agent({
      connect: { timeout: CONNECT_TIMEOUT_MS },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  /** False while calls skip this path and go to the SDK (see `answered`). */
  get open(): boolean {
    return Date.now() >= this.pausedUntil;
  }

  /**
   * Notes the status of an answer on this path. A server that refuses its signing while it takes the SDK's (an
   * S3-compatible server that signs differently, a kind of bucket the SDK signs otherwise) would make every call
   * two requests: after MAX_REFUSALS answers 403 in a row, calls go straight to the SDK for a minute, and then
   * this path is tried again.
   */
  answered(status: number): void {
    if (status !== 403) {
      this.refusals = 0;
      return;
    }
    if (++this.refusals < MAX_REFUSALS) return;
    this.refusals = 0;
    this.pausedUntil = Date.now() + (this.opts.refusalPauseMs ?? 60_000);
  }

  /** Where the bucket's objects are, as the SDK addresses them; asked again after a failure. */
  private where(): Promise<Base> {
    this.base ??= getSignedUrl(this.client, new HeadObjectCommand({ Bucket: this.bucket, Key: PROBE_KEY })).then(
      (signed) => {
        const url = new URL(signed);
        if (!url.pathname.endsWith(`/${PROBE_KEY}`)) throw new Error(`unexpected presigned URL path ${url.pathname}`);
        return { url, path: url.pathname.slice(0, -PROBE_KEY.length) };
      },
    );
    this.base.catch(() => {
      this.base = undefined;
    });
    return this.base;
  }

  /** A request for `key` with `headers`, signed for `payload` (none: the empty payload). */
  async sign(
    method: string,
    key: string,
    headers: Record<string, string> = {},
    payload?: Buffer,
  ): Promise<SignedRequest> {
    const where = await this.where();
    const path = where.path + escapeKey(key);
    const hash = createHash('sha256')
      .update(payload ?? '')
      .digest('hex');
    const { url } = where;
    const all: Record<string, string> = { ...headers, host: url.host, 'x-amz-content-sha256': hash };
    if (payload) all['content-length'] = String(payload.length);
    const signed = await this.signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path,
      query: {},
      headers: all,
    });
    return { origin: url.origin, path, headers: signed.headers };
  }

  /**
   * Sends one small request and reads its answer whole; undefined when it could not be signed, sent or read (the
   * caller asks the SDK, which reports why). Throws StorageUnavailableError when S3 did not answer in time.
   */
  async send(
    method: 'GET' | 'HEAD' | 'PUT',
    key: string,
    opts: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<DirectAnswer | undefined> {
    if (!this.open) return undefined;
    try {
      const req = await this.sign(method, key, opts.headers, opts.body);
      const res = await this.agent.request({
        origin: req.origin,
        path: req.path,
        method,
        headers: req.headers,
        body: opts.body,
      } satisfies Dispatcher.RequestOptions);
      const body =
        method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : Buffer.from(await res.body.arrayBuffer());
      this.answered(res.statusCode);
      return { status: res.statusCode, headers: res.headers, body } satisfies DirectAnswer;
    } catch (err) {
      const unavailable = this.unavailable(err);
      if (unavailable) throw unavailable;
      return undefined;
    }
  }

  /**
   * What a failed request means for its caller: StorageUnavailableError when S3 did not answer in time (it waited
   * as long as the SDK would, so asking the SDK again would double the wait), undefined otherwise (the caller asks
   * the SDK, which retries and reports).
   */
  unavailable(err: unknown): StorageUnavailableError | undefined {
    const code = (err as { code?: unknown } | undefined)?.code;
    if (typeof code !== 'string' || !TIMEOUTS.has(code)) return undefined;
    const message = describeS3Error(Object.assign(new Error(code), { name: 'TimeoutError' }), {
      bucket: this.bucket,
      endpoint: this.opts.endpoint,
    });
    return new StorageUnavailableError(message, { cause: err });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
