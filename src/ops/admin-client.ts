/**
 * How the day-two commands reach a running registry, and a small typed client of its admin API and /v2.
 *
 * Resolution (`stackEndpoint`), in one place:
 * - `REGCTL_REGISTRY_URL` (e.g. `http://127.0.0.1:5000` for a registry run with `regctl serve`) wins when set;
 * - otherwise the stack's Traefik on loopback, sending `Host: registry.<host>` so routing is exercised as a
 *   client would: dev → `http://127.0.0.1:<ports.http>`, prod → `https://127.0.0.1:<ports.https>` with the
 *   registry host as TLS server name. The certificate is not verified on this loopback hop (it is our own Traefik,
 *   and an ACME certificate may not be issued yet); nothing leaves the machine.
 * - credentials: the admin user and password of the stack's `.env` (REGISTRY_USERNAME / REGISTRY_PASSWORD).
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { GcJobStatus, GcProgress, GcReport } from '../common/admin-api.js';
import { RegctlError } from '../common/errors.js';
import { readEnvFile } from '../stack/env.js';
import { loadStack } from './stack.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryEndpoint {
  /** Address and port to connect to. */
  address: string;
  port: number;
  tls: boolean;
  /** Host header (and TLS server name). */
  host: string;
  /** What a person types after `docker login`. */
  publicHost: string;
  credentials: Credentials | undefined;
  /** For messages: the public URL and where it is reached. */
  description: string;
}

/** An endpoint from a URL such as `http://127.0.0.1:5000`. */
export function urlEndpoint(url: string, credentials: Credentials | undefined): RegistryEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RegctlError('USAGE', `REGCTL_REGISTRY_URL is not a URL: ${url}`, {
      hint: 'for example http://127.0.0.1:5000',
    });
  }
  const tls = u.protocol === 'https:';
  const port = u.port ? Number(u.port) : tls ? 443 : 80;
  return {
    address: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    tls,
    host: u.host,
    publicHost: u.host,
    credentials,
    description: u.origin,
  };
}

/** Where the stack in `dir` is reached, with the admin credentials of its `.env`. */
export async function stackEndpoint(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryEndpoint> {
  const stack = await loadStack(dir);
  const vars = await readEnvFile(join(stack.dir, '.env'));
  const username = vars.REGISTRY_USERNAME;
  const password = vars.REGISTRY_PASSWORD;
  const credentials = username && password ? { username, password } : undefined;
  if (env.REGCTL_REGISTRY_URL) return urlEndpoint(env.REGCTL_REGISTRY_URL, credentials);
  const { model, config } = stack;
  const tls = model.mode === 'prod';
  const host = model.hostnames.registry;
  const port = tls ? config.ports.https : config.ports.http;
  return {
    address: '127.0.0.1',
    port,
    tls,
    host,
    publicHost: new URL(model.urls.registry).host,
    credentials,
    description: `${model.urls.registry} (through 127.0.0.1:${port})`,
  };
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  body?: unknown;
  /** Credentials other than the endpoint's (or `null` for none). */
  auth?: Credentials | null;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** The OCI error envelope's first message, or the body's start. */
function errorText(res: HttpResult): string {
  try {
    const doc = JSON.parse(res.body.toString('utf8')) as {
      errors?: { code?: string; message?: string; detail?: unknown }[];
    };
    const e = doc.errors?.[0];
    if (e) {
      const detail =
        e.detail && typeof e.detail === 'object' ? (e.detail as Record<string, unknown>).reason : undefined;
      return `${e.code ?? 'ERROR'}: ${e.message ?? ''}${typeof detail === 'string' ? ` (${detail})` : ''}`;
    }
  } catch {
    // not JSON
  }
  return res.body.toString('utf8').slice(0, 200).trim() || `HTTP ${res.status}`;
}

/**
 * 409 from `POST /admin/v1/gc`: a GC already runs on this registry or a replica; one line (no hint) that names it
 * when the registry did and says what to do.
 */
function gcRunningError(res: HttpResult): RegctlError {
  let running: string | undefined;
  try {
    const doc = JSON.parse(res.body.toString('utf8')) as { errors?: { detail?: { runningGc?: unknown } }[] };
    const v = doc.errors?.[0]?.detail?.runningGc;
    if (typeof v === 'string') running = v;
  } catch {
    // not JSON: the generic wording below
  }
  return new RegctlError(
    'REGISTRY_ERROR',
    `garbage collection not started: another one is running${running ? ` (${running})` : ''}; ` +
      'run regctl gc again once it has finished',
  );
}

export class AdminClient {
  endpoint: RegistryEndpoint;

  constructor(endpoint: RegistryEndpoint) {
    this.endpoint = endpoint;
  }

  private authHeader(auth: Credentials | null | undefined): Record<string, string> {
    const creds = auth === null ? undefined : (auth ?? this.endpoint.credentials);
    return creds
      ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` }
      : {};
  }

  /**
   * One request whose response body is returned as a stream (caller consumes it). Network errors reject. A
   * redirect to HTTPS on the same host (a stack started with `--prod` while regctl.yaml says dev) switches the
   * endpoint to HTTPS for this and later requests.
   */
  async open(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const res = await this.send(method, path, opts);
    const location = res.headers.location;
    if (
      !this.endpoint.tls &&
      res.statusCode &&
      res.statusCode >= 301 &&
      res.statusCode <= 308 &&
      location?.startsWith('https://')
    ) {
      const target = new URL(location);
      if (target.hostname === this.endpoint.host.replace(/:\d+$/, '')) {
        res.resume();
        this.endpoint = {
          ...this.endpoint,
          tls: true,
          port: target.port ? Number(target.port) : 443,
          description: `${this.endpoint.description} (redirected to HTTPS)`,
        };
        return this.send(method, path, opts);
      }
    }
    return res;
  }

  private send(method: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
    const e = this.endpoint;
    const payload =
      opts.body === undefined
        ? undefined
        : Buffer.isBuffer(opts.body)
          ? opts.body
          : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = {
      host: e.host,
      'user-agent': 'regctl',
      ...this.authHeader(opts.auth),
      ...(payload
        ? {
            'content-type': Buffer.isBuffer(opts.body) ? 'application/octet-stream' : 'application/json',
            'content-length': String(payload.length),
          }
        : {}),
      ...opts.headers,
    };
    const options = {
      host: e.address,
      port: e.port,
      path,
      method,
      headers,
      ...(e.tls ? { servername: e.host.replace(/:\d+$/, ''), rejectUnauthorized: false } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (e.tls ? httpsRequest : httpRequest)(options, resolve);
      if (opts.timeoutMs)
        req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One request, body read whole. Network errors become STACK_NOT_RUNNING. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<HttpResult> {
    let res: IncomingMessage;
    try {
      res = await this.open(method, path, { timeoutMs: 120_000, ...opts });
    } catch (err) {
      throw this.unreachable(err);
    }
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
  }

  unreachable(err: unknown): RegctlError {
    return new RegctlError(
      'STACK_NOT_RUNNING',
      `the registry at ${this.endpoint.description} does not answer: ${(err as Error).message}`,
      {
        hint: 'start the stack with `regctl up` (or set REGCTL_REGISTRY_URL to where the registry listens)',
        cause: err,
      },
    );
  }

  /** Turns a non-2xx answer into a RegctlError saying what the registry said. */
  fail(what: string, res: HttpResult): RegctlError {
    if (res.status === 401) {
      return new RegctlError(
        'REGISTRY_ERROR',
        `${what}: the registry refused the credentials of ${this.endpoint.credentials?.username ?? '(none)'} (401)`,
        {
          hint: "check REGISTRY_USERNAME / REGISTRY_PASSWORD in the stack's .env against auth/htpasswd",
        },
      );
    }
    if (res.status === 403) {
      return new RegctlError(
        'REGISTRY_ERROR',
        `${what}: ${this.endpoint.credentials?.username ?? 'this user'} is not an admin (403)`,
        {
          hint: 'the user in .env needs admin: true in auth/access.yaml',
        },
      );
    }
    return new RegctlError('REGISTRY_ERROR', `${what}: the registry answered ${res.status}: ${errorText(res)}`);
  }

  async json<T>(what: string, method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, { ...opts, ...(body !== undefined ? { body } : {}) });
    if (res.status < 200 || res.status >= 300) throw this.fail(what, res);
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch {
      throw new RegctlError(
        'REGISTRY_ERROR',
        `${what}: the registry answered ${res.status} with a body that is not JSON`,
      );
    }
  }

  whoami(auth?: Credentials | null): Promise<{ user: string | null; admin: boolean; rules: unknown[] }> {
    return this.json('whoami', 'GET', '/admin/v1/whoami', undefined, auth !== undefined ? { auth } : {});
  }

  reload(auth?: Credentials): Promise<{ reloaded: boolean; users: number; repositories: number }> {
    return this.json('reload', 'POST', '/admin/v1/reload', undefined, auth ? { auth } : {});
  }

  /**
   * Runs a GC as a job (`wait: false`) and polls its status every `pollMs`, passing each progress to
   * `onProgress`; resolves with the report. A registry that answers the POST with the report itself (200) is
   * taken at its word.
   */
  async gc(
    body: { dryRun: boolean; deleteUntagged: boolean; graceSeconds?: number },
    opts: { pollMs?: number; onProgress?: (p: GcProgress) => void; oneRequest?: boolean } = {},
  ): Promise<GcReport> {
    const what = 'garbage collection';
    // Polled as a job: replicas sharing a metadata store publish it there, so a poll may reach any of them.
    const res = await this.request('POST', '/admin/v1/gc', { body: { ...body, wait: opts.oneRequest === true } });
    if (res.status === 200) return JSON.parse(res.body.toString('utf8')) as GcReport;
    if (res.status === 409) throw gcRunningError(res);
    if (res.status !== 202) throw this.fail(what, res);
    const { id } = JSON.parse(res.body.toString('utf8')) as GcJobStatus;
    for (;;) {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
      const job = await this.json<GcJobStatus>(what, 'GET', '/admin/v1/gc');
      if (job.id !== id)
        throw new RegctlError(
          'REGISTRY_ERROR',
          `${what}: the registry no longer knows the job it started (it may have restarted)`,
          { hint: 'run `regctl gc` again' },
        );
      if (job.progress) opts.onProgress?.(job.progress);
      if (job.state === 'done' && job.report) return job.report;
      if (job.state === 'failed')
        throw new RegctlError('REGISTRY_ERROR', `${what} failed in the registry: ${job.error ?? 'no reason given'}`, {
          hint: 'see `regctl logs registry`',
        });
    }
  }

  /** GET /v2/ with the given credentials: the HTTP status (200, 401, …). */
  async v2Status(auth: Credentials | null): Promise<number> {
    return (await this.request('GET', '/v2/', { auth })).status;
  }
}
