import { createHash } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

/** A body to send: one buffer, or a sequence of buffers streamed with backpressure (the same buffer may repeat). */
export type Body = Buffer | Iterable<Buffer>;

export interface RequestOptions {
  headers?: Record<string, string | number>;
  body?: Body;
  /** What to do with the response body: keep it, hash it while it streams, or drop it. Default `buffer`. */
  consume?: 'buffer' | 'hash' | 'discard';
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body when `consume` was `buffer`. */
  body: Buffer;
  /** `sha256:<hex>` of the body when `consume` was `hash` or `buffer`. */
  digest: string;
  bytes: number;
}

/** A failed check: wrong status, wrong digest, wrong byte count. The phase that hits one is reported as failed. */
export class VerifyError extends Error {
  override name = 'VerifyError';
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function bodyLength(body: Body | undefined): number {
  if (body === undefined) return 0;
  if (Buffer.isBuffer(body)) return body.length;
  let n = 0;
  for (const b of body) n += b.length;
  return n;
}

/** An HTTP/1.1 keep-alive client for one host:port with Basic credentials sent on every request. */
export class HttpClient {
  readonly agent: Agent;
  readonly authorization: string | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    credentials?: { user: string; password: string },
    maxSockets = 64,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
    this.authorization = credentials
      ? `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`
      : undefined;
  }

  get origin(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Every origin this client sends requests to (one here; a client of several servers names them all). */
  origins(): string[] {
    return [this.origin];
  }

  /** Resolves a `Location` header (absolute or relative) to a path with query. */
  pathOf(location: string | undefined): string {
    if (!location) throw new VerifyError('response carries no Location header');
    const url = new URL(location, this.origin);
    return `${url.pathname}${url.search}`;
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const { body, consume = 'buffer' } = options;
    const headers: Record<string, string | number> = { ...options.headers };
    if (this.authorization) headers['authorization'] = this.authorization;
    if (body !== undefined || method === 'PUT' || method === 'POST' || method === 'PATCH') {
      headers['content-length'] = bodyLength(body);
    }
    return new Promise<Response>((resolve, reject) => {
      const req = httpRequest({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const hash = consume === 'discard' ? undefined : createHash('sha256');
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash?.update(chunk);
          if (consume === 'buffer') chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: consume === 'buffer' ? Buffer.concat(chunks) : Buffer.alloc(0),
            digest: hash ? `sha256:${hash.digest('hex')}` : '',
            bytes,
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body === undefined) {
        req.end();
      } else if (Buffer.isBuffer(body)) {
        req.end(body);
      } else {
        void writeAll(req, body).then(
          () => req.end(),
          (err: unknown) => req.destroy(err instanceof Error ? err : new Error(String(err))),
        );
      }
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function writeAll(req: ReturnType<typeof httpRequest>, body: Iterable<Buffer>): Promise<void> {
  for (const chunk of body) {
    if (!req.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          req.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          req.off('drain', onDrain);
          reject(err);
        };
        req.once('drain', onDrain);
        req.once('error', onError);
      });
    }
  }
}

export function expectStatus(res: Response, expected: number | number[], what: string): void {
  const list = Array.isArray(expected) ? expected : [expected];
  if (!list.includes(res.status)) {
    const detail = res.body.length > 0 ? `: ${res.body.subarray(0, 300).toString('utf8')}` : '';
    throw new VerifyError(`${what}: HTTP ${res.status}, expected ${list.join(' or ')}${detail}`);
  }
}

export function expectDigestHeader(res: Response, digest: string, what: string): void {
  const got = res.headers['docker-content-digest'];
  if (got !== digest) throw new VerifyError(`${what}: Docker-Content-Digest ${String(got)}, expected ${digest}`);
}
