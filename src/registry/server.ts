/**
 * The registry as a program: `createRegistryServer(options)` → `{ listen(), close() }`.
 * Refuses to run open unless `noAuth` is set explicitly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { RegistryApp } from './app.js';
import type { Fence } from './fence.js';
import { Authenticator } from './auth/authenticator.js';
import type { ThrottleOptions } from './auth/throttle.js';
import type { OidcOptions } from './auth/oidc.js';
import { TrustedProxies } from '../common/client-address.js';
import { TokenService } from './auth/token-service.js';
import { createLogger, type LogFn, type LogLevel } from './logger.js';
import type { StorageDriver } from './storage/driver.js';
import { FsDriver } from './storage/fs-driver.js';
import type { S3Settings } from './storage/s3/s3-config.js';
import { openMetadataStore, s3SqliteFile, type MetadataSetting } from './metadata/settings.js';
import type { ProxyEntry } from './proxy/config.js';
import { RegistryProxy } from './proxy/proxy.js';
import type { Policies } from '../common/policies.js';
import { PolicyHolder } from './policy/holder.js';
import { wantsEvent } from '../common/events.js';
import { EventOutbox } from './events/outbox.js';
import { EventSender } from './events/sender.js';
import { RetentionSchedule } from './policy/retention-schedule.js';
import { trackingUploads, type UploadHeapGrowth } from './upload-heap.js';

/** How long a presigned blob URL stays valid (distribution's default is 20 minutes too). */
const S3_REDIRECT_SECONDS = 20 * 60;

/**
 * The S3 driver for `s3`, to pass as `driver` with `s3` (also what `regctl fsck` and `restore` open for a
 * bucket; `log` takes the SDK's own warnings, none are printed without it). Its modules, the AWS SDK among them
 * (about 20 MiB resident), are loaded here, so a registry on the filesystem never loads them.
 */
export async function openS3Driver(s3: S3Settings, log?: LogFn): Promise<StorageDriver> {
  const [{ S3Driver }, { createS3Client }] = await Promise.all([
    import('./storage/s3/s3-driver.js'),
    import('./storage/s3/s3-client.js'),
  ]);
  return new S3Driver({
    client: createS3Client(s3, log),
    bucket: s3.bucket,
    prefix: s3.prefix,
    endpoint: s3.endpoint,
    redirectSeconds: s3.redirect ? S3_REDIRECT_SECONDS : undefined,
  });
}

export interface RegistryServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Data directory for the filesystem driver (ignored when `driver` is given). */
  dataDir?: string;
  /** Store in S3 instead of `dataDir`: `driver` is then its driver, from `openS3Driver`. */
  s3?: S3Settings;
  driver?: StorageDriver;
  htpasswd?: string;
  access?: string;
  noAuth?: boolean;
  realm?: string;
  corsOrigins?: string[];
  uploadPurgeAgeMs?: number;
  minFreeBytes?: number;
  logLevel?: LogLevel;
  log?: LogFn;
  uiHandler?: (req: IncomingMessage, res: ServerResponse) => void;
  /** The process's growing factor raised during large uploads (upload-heap.ts); `regctl serve` passes it. */
  heapGrowth?: UploadHeapGrowth;
  throttle?: Partial<ThrottleOptions>;
  /** Addresses, CIDR blocks or host names of the proxies whose X-Forwarded-For is believed (default none). */
  trustedProxies?: readonly string[];
  /** `token`: Bearer tokens from the registry's own token endpoint (auth/token-service.ts); default `basic`. */
  authMode?: 'basic' | 'token';
  /** The token signing key file (created when missing); required with `authMode: 'token'`. */
  tokenKey?: string;
  authPollMs?: number;
  /** JWKS fetching of OIDC-bound robots (auth/oidc.ts; tests shorten its cooldown). */
  oidc?: OidcOptions;
  /** Cache verified credentials (default true); false runs bcrypt on every authenticated request. */
  credentialCache?: boolean;
  fenceWaitMs?: number;
  /** How long `close()` lets in-flight requests finish. */
  shutdownGraceMs?: number;
  /**
   * Where repositories, tags and manifest facts are kept (metadata/settings.ts). Default: `sqlite` under the
   * data directory (S3: in the state directory, `s3SqliteFile`), or `memory` when a `driver` is given.
   */
  metadata?: MetadataSetting;
  /** The PostgreSQL password, or a file holding it (the file wins). */
  metadataPassword?: string;
  metadataPasswordFile?: string;
  /** With `s3`: the directory of the default SQLite store (default: `dataDir`, else `./data`). */
  stateDir?: string;
  /** Pull-through cache entries (proxy/config.ts); their credentials are read from files or `env`. */
  proxies?: ProxyEntry[];
  env?: NodeJS.ProcessEnv;
  /**
   * The config file whose `policies:` the registry applies, read at `listen` (a mistake refuses to start:
   * `PolicyFileError`) and on reload; or fixed `policies` (tests).
   */
  policiesFile?: string;
  policies?: Policies;
  /** How often the event sender looks at the outbox (default 1 s). */
  eventsTickMs?: number;
  /** How often the policies file is checked for changes (default 2 s). */
  policiesPollMs?: number;
}

export interface RegistryServer {
  listen(): Promise<{ host: string; port: number; url: string }>;
  close(): Promise<void>;
  readonly app: RegistryApp;
  readonly server: Server;
}

export class RegistryConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryConfigError';
  }
}

/** The registry's outbox of events (set on its store) and the sender that delivers them to the configured endpoints. */
function eventSender(
  app: RegistryApp,
  driver: StorageDriver,
  policies: PolicyHolder,
  log: LogFn,
  tickMs: number | undefined,
): EventSender {
  app.store.events = new EventOutbox(
    driver,
    (e) => wantsEvent(policies.events.events, e.action, e.target.repository),
    () => policies.events.events.endpoints.length > 0,
  );
  return new EventSender(app.store, app.store.events, policies, log, { tickMs });
}

/** Who may do what: the htpasswd authenticator, token auth on top of it, and the proxies whose headers count. */
function authServices(
  opts: RegistryServerOptions,
  log: LogFn,
): { auth: Authenticator | undefined; tokens: TokenService | undefined; trustedProxies: TrustedProxies } {
  const auth =
    opts.htpasswd && !opts.noAuth
      ? new Authenticator({
          htpasswdPath: resolve(opts.htpasswd),
          accessPath: opts.access ? resolve(opts.access) : undefined,
          realm: opts.realm ?? 'regctl',
          throttle: opts.throttle,
          pollMs: opts.authPollMs,
          credentialCache: opts.credentialCache,
          oidc: opts.oidc,
          log,
        })
      : undefined;
  if (opts.authMode === 'token' && auth && !opts.tokenKey)
    throw new RegistryConfigError('token auth needs a signing key file: pass --token-key FILE (created when missing)');
  const tokens =
    opts.authMode === 'token' && auth && opts.tokenKey
      ? new TokenService({ keyPath: resolve(opts.tokenKey), service: opts.realm ?? 'regctl', authenticator: auth, log })
      : undefined;
  const trustedProxies = new TrustedProxies(opts.trustedProxies ?? [], { log });
  return { auth, tokens, trustedProxies };
}

export function createRegistryServer(opts: RegistryServerOptions): RegistryServer {
  if (!opts.htpasswd && !opts.noAuth) {
    throw new RegistryConfigError(
      'no htpasswd file given: pass --htpasswd FILE, or --no-auth to run the registry open',
    );
  }
  const log = opts.log ?? createLogger(opts.logLevel ?? 'info');
  if (opts.s3 && !opts.driver) throw new Error('S3 storage needs its driver: pass `driver: await openS3Driver(s3)`');
  const dataDir = opts.driver || opts.s3 ? undefined : resolve(opts.dataDir ?? './data');
  const driver: StorageDriver =
    opts.driver ??
    new FsDriver(dataDir as string, {
      // The journal belongs to one process. Replicas share a data directory only with a shared metadata
      // store (PostgreSQL): there each write is synced on its own.
      journal: opts.metadata?.kind !== 'postgres',
      onError: (err) => log('error', 'journal checkpoint failed', { error: (err as Error).message }),
    });
  const { auth, tokens, trustedProxies } = authServices(opts, log);
  const proxy = opts.proxies?.length
    ? new RegistryProxy(opts.proxies, {
        log,
        env: opts.env,
        spoolDir: dataDir ?? opts.stateDir,
        fence: (): Fence => app.fence,
      })
    : undefined;
  const policies = new PolicyHolder(opts.policiesFile && resolve(opts.policiesFile), log, opts.policies);
  const app = new RegistryApp({
    proxy,
    policies,
    driver,
    auth,
    log,
    trustedProxies,
    tokens,
    corsOrigins: opts.corsOrigins,
    uploadPurgeAgeMs: opts.uploadPurgeAgeMs,
    minFreeBytes: opts.minFreeBytes,
    dataDir,
    uiHandler: opts.uiHandler,
    fenceWaitMs: opts.fenceWaitMs,
    openMetadata: () =>
      openMetadataStore(opts.metadata ?? (opts.driver && !opts.s3 ? { kind: 'memory' } : { kind: 'sqlite' }), {
        dataDir,
        sqliteFile: opts.s3 ? s3SqliteFile(resolve(opts.stateDir ?? opts.dataDir ?? './data'), opts.s3) : undefined,
        password: opts.metadataPassword,
        passwordFile: opts.metadataPasswordFile,
        onError: (err) => log('error', 'metadata database connection lost', { error: err.message }),
      }),
  });
  const retention = new RetentionSchedule(app.store, policies, log, () => app.fence.waitWritable());
  const sender = eventSender(app, driver, policies, log, opts.eventsTickMs);
  const server = createServer(
    { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000, highWaterMark: 1024 * 1024 },
    opts.heapGrowth ? trackingUploads(app.handle, opts.heapGrowth) : app.handle,
  );

  return {
    app,
    server,
    async listen() {
      if (auth) await auth.start();
      await proxy?.check();
      await policies.load();
      policies.watch(opts.policiesPollMs);
      await trustedProxies.start();
      await tokens?.start();
      await app.init();
      auth?.robotUsage.start(app.store.index, 60_000, (err) =>
        log('warn', 'robot last use not written', { error: err.message }),
      );
      retention.start();
      sender.start();
      const host = opts.host ?? '127.0.0.1';
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(opts.port ?? 5000, host, () => {
          server.off('error', rej);
          res();
        });
      });
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return { host: addr.address, port: addr.port, url: `http://${shown}:${addr.port}` };
    },
    async close() {
      opts.heapGrowth?.close();
      auth?.close();
      await auth?.robotUsage.close();
      policies.unwatch();
      trustedProxies.close();
      tokens?.close();
      app.close();
      await retention.stop();
      await sender.stop();
      if (!server.listening) {
        await app.maintenanceDone();
        await app.membership?.leave();
        await app.store.index.close();
        return driver.close?.();
      }
      app.shuttingDown = true;
      const closed = new Promise<void>((res) => server.close(() => res()));
      // Connections become idle as their in-flight requests finish: close them as they do.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      const timer = setTimeout(() => server.closeAllConnections(), opts.shutdownGraceMs ?? 5000);
      timer.unref();
      await closed;
      clearInterval(sweep);
      clearTimeout(timer);
      await app.maintenanceDone();
      await app.membership?.leave();
      await app.store.index.close();
      await driver.close?.();
    },
  };
}
