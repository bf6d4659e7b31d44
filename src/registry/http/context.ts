import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError, errorEnvelope } from '../errors.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { Digest } from '../reference.js';
import type { ManifestRef } from '../storage/manifest-store.js';
import type { RegistryStore, StoredManifest } from '../storage/store.js';
import type { AccessEntry } from '../auth/token-scope.js';

export interface RequestState {
  user: string | undefined;
  bytesOut: number;
  /** The `access` claim of the Bearer token the request came with; undefined for Basic credentials. */
  access?: AccessEntry[];
}

/** What a route handler receives. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  /** Query parameters (in `url.searchParams`); the path is `path`, exactly as the client sent it. */
  url: URL;
  path: string;
  params: Record<string, string>;
  store: RegistryStore;
  state: RequestState;
  /** Whether a mount without `from` may link any blob present in storage (the user can pull everything). */
  mountAnywhere?: boolean;
  /** The registry runs open or the user is an admin (set once the request is authorized). */
  isAdmin?: boolean;
  /** The policies in force (immutable tags, retention); none when absent. */
  policies?: PolicyHolder;
  /** The pull-through cache, when proxies are configured. */
  proxy?: ProxyHooks;
}

/** What the read paths ask of the pull-through cache (proxy/proxy.ts) for repositories under a proxy prefix. */
export interface ProxyHooks {
  owns(name: string): boolean;
  /** The upstream URL a repository under a proxy prefix is cached from; undefined for the registry's own. */
  upstreamOf(name: string): string | undefined;
  /**
   * Before authorization: maps containerd's mirror form (`?ns=<upstream host>`) onto the proxy prefix of that
   * upstream, and dockerd's (unprefixed Docker Hub names, when an entry answers it) onto that entry's prefix, by
   * rewriting `ctx.params.name`, so that access is checked on the name served.
   */
  mapMirror(ctx: Ctx): Promise<void>;
  /** After authorization: refuses (DENIED) any action but pull in a proxied repository. */
  refuseWrite(name: string, action: string): void;
  manifest(ctx: Ctx, name: string, ref: ManifestRef): Promise<StoredManifest>;
  /** True when the blob is now linked in `name` (serve it from storage); false when the request was answered. */
  serveBlob(ctx: Ctx, name: string, digest: Digest): Promise<boolean>;
}

export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/** A `Location` for `path`: absolute when a proxy told us how clients reach us, relative otherwise. */
export function location(req: IncomingMessage, path: string): string {
  const host = firstHeader(req.headers['x-forwarded-host']);
  if (!host) return path;
  const proto = firstHeader(req.headers['x-forwarded-proto']) ?? 'http';
  return `${proto}://${host}${path}`;
}

export function firstHeader(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s?.split(',')[0]?.trim() || undefined;
}

export function send(ctx: Ctx, status: number, headers: Record<string, string | number>, body?: Buffer | string): void {
  const { res } = ctx;
  const buf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (!res.hasHeader('Content-Length')) res.setHeader('Content-Length', buf?.length ?? 0);
  if (buf && ctx.req.method !== 'HEAD') {
    ctx.state.bytesOut += buf.length;
    res.end(buf);
  } else res.end();
}

export function sendJson(
  ctx: Ctx,
  status: number,
  value: unknown,
  headers: Record<string, string | number> = {},
): void {
  send(ctx, status, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, JSON.stringify(value));
}

export async function sendStream(
  ctx: Ctx,
  status: number,
  headers: Record<string, string | number>,
  body: Readable,
): Promise<void> {
  const { res } = ctx;
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  body.on('data', (chunk: Buffer) => (ctx.state.bytesOut += chunk.length));
  await pipeline(body, res);
}

/** Writes a RegistryError as the OCI error envelope. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: RegistryError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(JSON.stringify(errorEnvelope(err)));
  res.statusCode = err.status;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  if (!req.complete) {
    // The request body was not read: close the connection rather than read a possibly huge body.
    res.setHeader('Connection', 'close');
  }
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** True when the request carries a body (a non-zero Content-Length or a chunked transfer). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/** The body's length when the request declares it (Content-Length, not chunked), else undefined. */
export function declaredLength(req: IncomingMessage): number | undefined {
  if (req.headers['transfer-encoding'] !== undefined) return undefined;
  const len = req.headers['content-length'];
  if (len === undefined || !/^\d+$/.test(len)) return undefined;
  return Number(len);
}

/** Reads a small body whole, refusing more than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number, tooBig: () => RegistryError): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooBig();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooBig();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

export function query(ctx: Ctx, key: string): string | undefined {
  const v = ctx.url.searchParams.get(key);
  return v === null ? undefined : v;
}
