/**
 * The registry's request handler: CORS and OPTIONS, health, authentication, per-route authorization, the
 * read-only fence, the route table, the admin API, metrics and one JSON log line per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { statfs } from 'node:fs/promises';
import { ADMIN_MODULES } from './admin/index.js';
import { MaintenanceLock } from './admin/maintenance-lock.js';
import type { AdminRequest, AdminRoute, AdminServices } from './admin/types.js';
import { AccessPolicy } from './auth/access.js';
import type { Authenticator } from './auth/authenticator.js';
import { authorizeRequest } from './auth/authorize.js';
import { clientAddress, type TrustedProxies } from '../common/client-address.js';
import { requestTarget, scopeForRequest, TOKEN_PATH, type TokenService } from './auth/token-service.js';
import { RegistryError, toRegistryError } from './errors.js';
import { Fence } from './fence.js';
import { API_VERSION_HEADER, readBody, sendError, sendJson, send, type RequestState } from './http/context.js';
import type { Ctx, ProxyHooks } from './http/context.js';
import { answerOptions, cors } from './http/cors.js';
import { listCatalog } from './http/listing.js';
import { matchRoute } from './http/routes.js';
import type { LogFn } from './logger.js';
import { Metrics } from './metrics.js';
import { isValidName } from './reference.js';
import type { StorageDriver } from './storage/driver.js';
import { removeTempFiles } from './storage/fsck.js';
import { Membership } from './metadata/instances.js';
import { recoverIntents, SHARED_INTENT_AGE_MS } from './metadata/recover.js';
import { prepareMetadata } from './metadata/startup.js';
import type { MetadataStore } from './metadata/store.js';
import type { PolicyHolder } from './policy/holder.js';
import { RegistryStore } from './storage/store.js';

export interface RegistryAppOptions {
  driver: StorageDriver;
  /** Undefined means the registry runs open (`--no-auth`). */
  auth: Authenticator | undefined;
  log: LogFn;
  corsOrigins?: string[];
  uploadPurgeAgeMs?: number;
  /** Writes are refused while the data directory's free space is below this. */
  minFreeBytes?: number;
  dataDir?: string;
  /** Mounted at /ui/ when set. */
  uiHandler?: (req: IncomingMessage, res: ServerResponse) => void;
  /** How long writes wait for a fence to lift before 503. */
  fenceWaitMs?: number;
  /** Opens the metadata store at `init`; without it the registry keeps its index in memory. */
  openMetadata?: () => Promise<MetadataStore>;
  proxy?: ProxyHooks; // the pull-through cache (proxy/proxy.ts)
  policies?: PolicyHolder; // immutable tags and retention (policy/)
  trustedProxies?: TrustedProxies; // whose forwarding headers name the client (none: the peer is the client)
  tokens?: TokenService; // token auth (auth/token-service.ts): Bearer challenges and /auth/token; needs `auth`
}

export class RegistryApp {
  readonly store: RegistryStore;
  readonly fence = new Fence();
  readonly maintenance = new MaintenanceLock();
  readonly metrics = new Metrics();
  readonly opts: RegistryAppOptions;
  private readonly adminRoutes = new Map<string, AdminRoute>();
  private freeBytes: { value: number; at: number } | undefined;
  /** Set by the server on close: responses then ask clients to close their connections. */
  shuttingDown = false;
  private purgeTimer: NodeJS.Timeout | undefined;
  private recoverTimer: NodeJS.Timeout | undefined;
  private startupMaintenance: Promise<void> = Promise.resolve();
  membership: Membership | undefined; // on a shared store: listed as alive until `leave` (instances.ts)

  constructor(opts: RegistryAppOptions) {
    this.opts = opts;
    this.store = new RegistryStore(opts.driver);
    for (const mod of ADMIN_MODULES) mod((route) => this.adminRoutes.set(`${route.method} ${route.path}`, route));
    this.metrics.gauge('regctl_repositories', 'Repositories holding tags or manifests.', () =>
      this.store.index.repositoryCount(),
    );
    this.metrics.gauge('regctl_fence_active', '1 while the read-only fence is up.', () =>
      this.fence.active() ? 1 : 0,
    );
  }

  get uploadPurgeAgeMs(): number {
    return this.opts.uploadPurgeAgeMs ?? 24 * 3600 * 1000;
  }

  policy(): AccessPolicy {
    return this.opts.auth?.policy ?? AccessPolicy.open();
  }

  /**
   * Opens the storage (writing back what its journal holds after a crash), checks it is writable, opens the
   * metadata store (finishing interrupted writes, importing storage when the store does not describe it yet) or
   * builds the in-memory index, purges stale uploads and starts the purge timer. With a persistent store, start-up
   * reads no more of storage than the writes a crash left: the upload purge and the temporary-file cleanup, which
   * walk storage, run in the background once `init` has returned.
   */
  async init(): Promise<void> {
    await this.opts.driver.open?.();
    await this.opts.driver.checkWritable();
    if (this.opts.openMetadata) this.store.useIndex(await this.opts.openMetadata());
    this.membership = await Membership.join(this.store.index);
    const report = await prepareMetadata(this.store, this.opts.log, await this.membership.goneOwners());
    if (report.incompleteTags > 0)
      this.opts.log('info', 'removed tags left incomplete by an interrupted write', { count: report.incompleteTags });
    const startedAt = Date.now();
    const cleanup = async (): Promise<void> => {
      // Drivers that never leave temporary files (S3) are not walked for them.
      if (this.opts.driver.leavesTempFiles === false) return;
      const n = await removeTempFiles(this.opts.driver, startedAt).catch((err: unknown) => {
        this.opts.log('error', 'temporary file cleanup failed', { error: (err as Error).message });
        return 0;
      });
      if (n > 0) this.opts.log('info', 'removed leftover temporary files', { count: n });
    };
    if (this.store.index.persistent) {
      // Started once `init` has returned, so the walk never delays listening.
      this.startupMaintenance = new Promise<void>((r) => setImmediate(r)).then(() => this.purge()).then(cleanup);
    } else {
      await this.purge();
      void cleanup();
    }
    if (this.store.index.shared) {
      // A replica that died mid-write left an intent no restart of its own may come to finish.
      this.recoverTimer = setInterval(() => void this.recoverStale(), SHARED_INTENT_AGE_MS);
      this.recoverTimer.unref();
    }
    const every = Math.max(1000, Math.min(this.uploadPurgeAgeMs / 4, 3600_000));
    this.purgeTimer = setInterval(() => void this.purge(), every);
    this.purgeTimer.unref();
  }

  close(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    if (this.recoverTimer) clearInterval(this.recoverTimer);
  }

  private async recoverStale(): Promise<void> {
    try {
      const n = await recoverIntents(this.store, Date.now(), await this.membership?.goneOwners());
      if (n > 0) this.opts.log('info', 'finished writes another process left half done', { count: n });
    } catch (err) {
      this.opts.log('error', 'recovery of unfinished writes failed', { error: (err as Error).message });
    }
  }

  /** Resolves once the maintenance started with the server (upload purge, temp cleanup) is done. */
  async maintenanceDone(): Promise<void> {
    await this.startupMaintenance;
  }

  async purge(): Promise<number> {
    try {
      const n = await this.store.uploads.purge(this.uploadPurgeAgeMs);
      if (n > 0) this.opts.log('info', 'purged stale uploads', { count: n });
      return n;
    } catch (err) {
      this.opts.log('error', 'upload purge failed', { error: (err as Error).message });
      return 0;
    }
  }

  adminServices(): AdminServices {
    return {
      store: this.store,
      fence: this.fence,
      maintenance: this.maintenance,
      auth: this.opts.auth,
      policy: () => this.policy(),
      metrics: this.metrics,
      log: this.opts.log,
      uploadPurgeAgeMs: this.uploadPurgeAgeMs,
      dataDir: this.opts.dataDir,
      policies: this.opts.policies,
    };
  }

  /** The Node request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const socketBytesAtStart = socket.bytesRead;
    const state: RequestState = { user: undefined, bytesOut: 0 };
    const ip = clientAddress(req, this.opts.trustedProxies);
    let routeId = 'unmatched';
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const bytesIn = Math.max(0, socket.bytesRead - socketBytesAtStart);
      this.metrics.observeRequest(req.method ?? '', routeId, res.statusCode, seconds, bytesIn, state.bytesOut);
      if (routeId === 'healthz') return;
      this.opts.log('info', 'request', {
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        route: routeId,
        status: res.statusCode,
        bytesIn,
        bytesOut: state.bytesOut,
        ms: Math.round(seconds * 1000),
        user: state.user,
        ...(state.access !== undefined ? { bearer: true } : {}),
        ip,
      });
    });
    for (const [k, v] of Object.entries(API_VERSION_HEADER)) res.setHeader(k, v);
    if (this.shuttingDown) res.setHeader('Connection', 'close');
    cors(req, res, this.opts.corsOrigins ?? []);
    void this.dispatch(req, res, state, (id) => (routeId = id)).catch((err: unknown) => {
      const e = toRegistryError(err);
      const clientGone =
        req.destroyed || res.destroyed || (err as NodeJS.ErrnoException)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
      if (e.code === 'INTERNAL' && !clientGone)
        this.opts.log('error', 'request failed', {
          error: (err as Error)?.message,
          path: (req.url ?? '').split('?')[0],
        });
      sendError(req, res, e);
    });
  };

  private async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    state: RequestState,
    setRoute: (id: string) => void,
  ): Promise<void> {
    // The path is taken as sent: URL parsing would resolve `..` segments before names are validated.
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    const url = new URL('http://registry.invalid/');
    if (q !== -1) url.search = raw.slice(q);
    const { proxy, policies } = this.opts;
    const ctx: Ctx = { req, res, url, path, params: {}, store: this.store, state, proxy, policies };
    if (req.method === 'OPTIONS') {
      setRoute('options');
      return answerOptions(ctx);
    }
    if (path === '/healthz') {
      setRoute('healthz');
      let reason = 'storage not writable';
      try {
        await this.opts.driver.checkWritable();
        reason = 'metadata store unreachable';
        await this.store.index.ping();
        sendJson(ctx, 200, { status: 'ok' });
      } catch (err) {
        sendJson(ctx, 503, { status: 'unavailable', reason }, { 'Retry-After': '5' });
        this.opts.log('error', 'health check failed', { reason, error: (err as Error).message });
      }
      return;
    }
    if (this.opts.uiHandler && (path === '/ui' || path.startsWith('/ui/'))) {
      setRoute('ui');
      this.opts.uiHandler(req, res);
      return;
    }

    if (path === '/metrics') {
      setRoute('metrics');
      await this.authenticate(ctx);
      this.requireAdmin(state.user);
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new RegistryError('METHOD_NOT_ALLOWED', { method: req.method }, { headers: { Allow: 'GET, HEAD' } });
      send(ctx, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }, this.metrics.render());
      return;
    }
    if (path.startsWith('/admin/v1/')) return this.dispatchAdmin(ctx, setRoute);
    if (path === TOKEN_PATH && this.opts.tokens && this.opts.auth) {
      setRoute('token');
      return this.opts.tokens.handle(ctx, clientAddress(req, this.opts.trustedProxies));
    }
    if (!path.startsWith('/v2')) {
      setRoute('unknown');
      throw new RegistryError('NOT_FOUND', { path });
    }
    await this.authenticate(ctx);
    return this.dispatchV2(ctx, setRoute);
  }

  private async authenticate({ req, state, path }: Ctx): Promise<void> {
    if (!this.opts.auth) return;
    const header = req.headers.authorization;
    const tokens = this.opts.tokens;
    try {
      // Tokens carry repository scopes only: the admin API and /metrics take Basic credentials alone.
      if (tokens && /^Bearer\s/i.test(header ?? '') && path.startsWith('/v2')) {
        const verified = await tokens.verify(req, (header as string).replace(/^Bearer\s+/i, '').trim());
        state.user = verified.user;
        state.access = verified.access;
      } else if (header === undefined && path.startsWith('/v2')) {
        // No credentials: an anonymous pull, or the catalog of public repositories, goes on (dispatchV2 checks it
        // against the access file), else 401.
        const target = requestTarget(path, req.method);
        const policy = this.policy();
        const pull = target?.action === 'pull' && policy.anonymousCan(target.name ?? '', 'pull');
        if (!pull && !(target?.action === 'catalog' && policy.hasPublic)) throw this.challenge(req);
      } else {
        state.user = await this.opts.auth.authenticate(header, clientAddress(req, this.opts.trustedProxies));
      }
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'UNAUTHORIZED') this.metrics.authFailures++;
      throw err;
    }
  }

  /** `/admin/v1/<sub>`: the admin module registered for the method and path. */
  private async dispatchAdmin(ctx: Ctx, setRoute: (id: string) => void): Promise<void> {
    const { req, path, state } = ctx;
    const sub = path.slice('/admin/v1/'.length);
    const route = this.adminRoutes.get(`${req.method} ${sub}`);
    setRoute(`admin:${sub}`);
    await this.authenticate(ctx);
    if (!route) {
      const anyMethod = [...this.adminRoutes.values()].some((r) => r.path === sub);
      throw new RegistryError(anyMethod ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', { path });
    }
    const isAdmin = !this.opts.auth || (state.user !== undefined && this.policy().isAdmin(state.user));
    if (route.adminOnly && !isAdmin) throw new RegistryError('DENIED', { reason: 'admin only' });
    const r: AdminRequest = {
      ctx,
      user: state.user,
      isAdmin,
      services: this.adminServices(),
      json: async () => {
        const body = await readBody(
          req,
          1024 * 1024,
          () => new RegistryError('SIZE_INVALID', { reason: 'body too large' }),
        );
        if (body.length === 0) return {};
        try {
          const v: unknown = JSON.parse(body.toString('utf8'));
          if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
        } catch {
          // fall through
        }
        throw new RegistryError(
          'INVALID_REQUEST',
          { reason: 'body must be a JSON object' },
          { message: 'invalid JSON body' },
        );
      },
    };
    await route.handler(r);
  }

  /** `/v2/...` once authenticated: the route table's method, with what its fields ask for around the handler. */
  private async dispatchV2(ctx: Ctx, setRoute: (id: string) => void): Promise<void> {
    const { req, path, url, state } = ctx;
    const match = matchRoute(path);
    if (!match) {
      setRoute('unknown');
      throw new RegistryError('NOT_FOUND', { path });
    }
    const verb = req.method === 'HEAD' && !match.route.methods.HEAD ? 'GET' : (req.method ?? '');
    const method = match.route.methods[verb];
    if (!method) {
      setRoute(match.route.name);
      throw new RegistryError(
        'METHOD_NOT_ALLOWED',
        { method: req.method },
        { headers: { Allow: Object.keys(match.route.methods).join(', ') } },
      );
    }
    setRoute(method.id);
    ctx.params = match.params;
    if (match.params.name !== undefined && !isValidName(match.params.name)) {
      throw new RegistryError('NAME_INVALID', { name: match.params.name });
    }
    await this.opts.proxy?.mapMirror(ctx);
    if (this.opts.auth)
      authorizeRequest({
        policy: this.policy(),
        user: state.user,
        access: state.access,
        name: ctx.params.name,
        action: method.action,
        url,
        mountsFrom: method.mountsFrom === true,
        unauthorized: () => this.challenge(req),
        insufficient: (scope) => this.insufficientScope(ctx, scope),
      });
    if (method.action === 'catalog') {
      const user = state.user;
      const policy = this.policy();
      const visible = (repo: string) =>
        user === undefined ? policy.anonymousCan(repo, 'pull') : policy.can(user, repo, 'pull');
      await listCatalog(ctx, (repo) => !this.opts.auth || visible(repo));
      return;
    }
    if (method.action === 'base') {
      sendJson(ctx, 200, {});
      return;
    }
    this.opts.proxy?.refuseWrite(ctx.params.name as string, method.action);
    ctx.isAdmin = ctx.mountAnywhere =
      !this.opts.auth || (state.user !== undefined && !state.access && this.policy().isAdmin(state.user));
    let release: (() => void) | undefined;
    if (method.fence === 'counted') release = await this.fence.enterWrite(this.opts.fenceWaitMs);
    else if (method.fence === 'wait') await this.fence.waitWritable(this.opts.fenceWaitMs);
    try {
      if (method.needsFreeSpace) await this.checkFreeSpace();
      await method.handler(ctx);
    } finally {
      release?.();
    }
  }

  /** The 401 that asks for credentials: a Bearer challenge with the request's scope, or Basic. */
  private challenge(req: IncomingMessage): RegistryError {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (this.opts.tokens) return this.opts.tokens.unauthorized(req, scopeForRequest(path, req.method));
    return new RegistryError('UNAUTHORIZED', undefined, {
      headers: { 'WWW-Authenticate': this.opts.auth?.challenge ?? '' },
    });
  }

  private insufficientScope({ req }: Ctx, scope: string): RegistryError {
    return this.opts.tokens?.unauthorized(req, scope, 'insufficient_scope') ?? new RegistryError('DENIED', { scope });
  }

  private requireAdmin(user: string | undefined): void {
    if (!this.opts.auth) return;
    if (user === undefined || !this.policy().isAdmin(user)) throw new RegistryError('DENIED', { reason: 'admin only' });
  }

  private async checkFreeSpace(): Promise<void> {
    const min = this.opts.minFreeBytes;
    if (!min || !this.opts.dataDir) return;
    const now = Date.now();
    if (!this.freeBytes || now - this.freeBytes.at > 5000) {
      try {
        const s = await statfs(this.opts.dataDir);
        this.freeBytes = { value: s.bavail * s.bsize, at: now };
      } catch {
        return;
      }
    }
    if (this.freeBytes.value < min) {
      throw new RegistryError(
        'UNAVAILABLE',
        { reason: 'storage almost full', freeBytes: this.freeBytes.value, minFreeBytes: min },
        { headers: { 'Retry-After': '60' } },
      );
    }
  }
}
