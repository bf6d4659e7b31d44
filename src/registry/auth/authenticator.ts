/**
 * Basic authentication against a bcrypt htpasswd file, with the access policy next to it.
 * - Both files are re-read when they change: `fs.watch` on their directories (an atomic replace renames over
 *   the watched name) plus an mtime/size/inode poll as a fallback for bind mounts and filesystems without events.
 * - Verified credentials are cached under a SHA-256 of user + password (cleared on every reload), and concurrent
 *   checks of the same credentials share one bcrypt run, so bcrypt is paid once per credential, not per request.
 *   With `credentialCache: false` neither happens: every request pays its own bcrypt compare, as distribution's
 *   htpasswd does (for comparisons with it, or where no verified secret may stay in memory). A verified client
 *   then has no cache entry to get past a user lock-out, so others' failures lock it out too.
 * - Unknown users are compared against a dummy hash of the same cost, and every failure is the same 401.
 * - Repeated failures are throttled per client IP and per user name (429 + Retry-After).
 * - Old secrets listed in the grace file next to htpasswd (`<htpasswd>.grace`, see grace.ts) are accepted until
 *   their expiry, checked at every request: no reload is needed for them to stop working, and cache entries
 *   made from them carry the same expiry.
 * - Robot accounts (`robots.yaml` beside htpasswd, robots.ts) are loaded and watched with them; a `robot$` name is
 *   refused here and accepted only by `authenticateRobot`, which the token endpoint alone calls. A robot bound to
 *   an OIDC issuer has no secret: its password is an ID token from that issuer, verified by oidc.ts.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import bcrypt from 'bcryptjs';
import { RegistryError } from '../errors.js';
import { AccessPolicy } from './access.js';
import { graceFilePath, liveGraceEntries, parseGraceFile, type GraceEntry } from './grace.js';
import { parseHtpasswd } from './htpasswd.js';
import { OidcVerifier, type OidcOptions } from './oidc.js';
import { RobotUsage } from './robot-usage.js';
import { parseRobotsFile, robotName, robotRefusal, ROBOTS_FILE_NAME, RobotSet } from './robots.js';
import { FailureThrottle, type ThrottleOptions } from './throttle.js';

export interface AuthenticatorOptions {
  htpasswdPath: string;
  /** The robots file (default: `robots.yaml` beside htpasswd). */
  robotsPath?: string;
  accessPath?: string;
  realm: string;
  throttle?: Partial<ThrottleOptions>;
  pollMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Cache verified credentials (default true); false runs bcrypt on every request. */
  credentialCache?: boolean;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** JWKS fetching of OIDC-bound robots (oidc.ts). */
  oidc?: OidcOptions;
}

interface CheckResult {
  ok: boolean;
  /** Set when only a grace secret matched: when it stops working (ms). */
  expiresAt?: number;
}

const CACHE_LIMIT = 10_000;

function fileKey(s: { mtimeMs: number; size: number; ino: number }): string {
  return `${s.mtimeMs}:${s.size}:${s.ino}`;
}

export class Authenticator {
  private readonly opts: AuthenticatorOptions;
  private users = new Map<string, string>();
  policy: AccessPolicy = AccessPolicy.open();
  /** Compared against for unknown users; replaced at load by a hash of the users' own cost. */
  private dummyHash = '$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';
  private readonly cache = new Map<string, { user: string; expiresAt: number | undefined }>();
  private readonly inflight = new Map<string, Promise<CheckResult>>();
  private grace = new Map<string, GraceEntry[]>();
  private readonly gracePath: string;
  private readonly robotsPath: string;
  private robots = new RobotSet();
  /** Last use of each robot (in memory; flushed to the metadata store once the server starts it). */
  readonly robotUsage = new RobotUsage();
  private readonly now: () => number;
  private readonly caching: boolean;
  private readonly throttle: FailureThrottle;
  private readonly oidc: OidcVerifier;
  private watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private seen = new Map<string, string>();
  private generation = 0;

  constructor(opts: AuthenticatorOptions) {
    this.opts = opts;
    this.throttle = new FailureThrottle(opts.throttle);
    this.gracePath = graceFilePath(opts.htpasswdPath);
    this.robotsPath = opts.robotsPath ?? join(dirname(opts.htpasswdPath), ROBOTS_FILE_NAME);
    this.now = opts.now ?? Date.now;
    this.caching = opts.credentialCache ?? true;
    this.oidc = new OidcVerifier(opts.oidc);
  }

  get realm(): string {
    return this.opts.realm;
  }

  get challenge(): string {
    return `Basic realm="${this.opts.realm.replace(/"/g, '')}"`;
  }

  get userCount(): number {
    return this.users.size;
  }

  /**
   * A digest of the user's current htpasswd hash, undefined for an unknown user: refresh tokens carry it, so a new
   * password or a removed user revokes them.
   */
  passwordFingerprint(user: string): string | undefined {
    const robot = robotName(user);
    const entry = robot === undefined ? undefined : this.robots.get(robot);
    if (robot !== undefined && robotRefusal(entry, this.now()) !== undefined) return undefined;
    // An OIDC robot's refresh tokens are bound to its binding: changing issuer, audience or claims revokes them.
    const binding = entry?.oidc && `oidc:${JSON.stringify(entry.oidc)}`;
    const hash = robot === undefined ? this.users.get(user) : (entry?.secret ?? binding);
    return hash === undefined ? undefined : createHash('sha256').update(hash).digest('base64url').slice(0, 22);
  }

  /** Loads both files (the htpasswd must be readable) and starts watching them. */
  async start(): Promise<void> {
    await this.reload({ strict: true });
    const dirs = new Set([
      dirname(this.opts.htpasswdPath),
      dirname(this.robotsPath),
      ...(this.opts.accessPath ? [dirname(this.opts.accessPath)] : []),
    ]);
    const names = new Set([
      basename(this.opts.htpasswdPath),
      basename(this.gracePath),
      basename(this.robotsPath),
      ...(this.opts.accessPath ? [basename(this.opts.accessPath)] : []),
    ]);
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, filename) => {
          if (!filename || names.has(filename.toString())) this.scheduleReload();
        });
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        // The poll below still notices changes.
      }
    }
    this.pollTimer = setInterval(() => void this.poll(), this.opts.pollMs ?? 2000);
    this.pollTimer.unref();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private scheduleReload(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload().catch(() => undefined), 50);
    this.debounce.unref();
  }

  private async poll(): Promise<void> {
    for (const path of [this.opts.htpasswdPath, this.opts.accessPath, this.gracePath, this.robotsPath]) {
      if (!path) continue;
      let key = 'absent';
      try {
        key = fileKey(await stat(path));
      } catch {
        // absent
      }
      if (this.seen.get(path) !== key) {
        this.scheduleReload();
        return;
      }
    }
  }

  private reloadChain: Promise<void> = Promise.resolve();

  /**
   * Re-reads htpasswd and access files now. With `strict`, an unreadable htpasswd or invalid access file throws.
   * Reloads run one after another, so when one resolves the files as they were when it was asked are in force.
   */
  reload(opts: { strict?: boolean } = {}): Promise<void> {
    const run = this.reloadChain.then(() => this.readFiles(opts));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private async readFiles(opts: { strict?: boolean }): Promise<void> {
    const log = this.opts.log ?? (() => undefined);
    const gen = ++this.generation;
    const seen = new Map<string, string>();
    let users: Map<string, string> | undefined;
    try {
      seen.set(this.opts.htpasswdPath, fileKey(await stat(this.opts.htpasswdPath)));
      const parsed = parseHtpasswd(await readFile(this.opts.htpasswdPath, 'utf8'));
      for (const w of parsed.warnings) log('warn', `htpasswd: ${w}`);
      users = parsed.users;
    } catch (err) {
      if (opts.strict)
        throw new Error(`cannot read htpasswd file ${this.opts.htpasswdPath}: ${(err as Error).message}`, {
          cause: err,
        });
      seen.set(this.opts.htpasswdPath, 'absent');
      log('warn', 'htpasswd file unreadable, keeping the previous users', { path: this.opts.htpasswdPath });
    }
    let grace: Map<string, GraceEntry[]> | undefined;
    try {
      let text = '';
      try {
        seen.set(this.gracePath, fileKey(await stat(this.gracePath)));
        text = await readFile(this.gracePath, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        seen.set(this.gracePath, 'absent');
      }
      const parsed = parseGraceFile(text);
      for (const w of parsed.warnings) log('warn', `htpasswd.grace: ${w}`);
      grace = new Map();
      for (const e of liveGraceEntries(parsed.entries, Math.floor(this.now() / 1000))) {
        const list = grace.get(e.user) ?? [];
        list.push(e);
        grace.set(e.user, list);
      }
    } catch (err) {
      log('warn', 'grace file unreadable, keeping the previous grace secrets', { error: (err as Error).message });
    }
    let policy: AccessPolicy | undefined;
    if (this.opts.accessPath) {
      try {
        let text: string | undefined;
        try {
          seen.set(this.opts.accessPath, fileKey(await stat(this.opts.accessPath)));
          text = await readFile(this.opts.accessPath, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          seen.set(this.opts.accessPath, 'absent');
          log('warn', 'access file absent: every authenticated user is admin until it exists', {
            path: this.opts.accessPath,
          });
        }
        policy = text === undefined ? AccessPolicy.open() : AccessPolicy.parse(text);
      } catch (err) {
        if (opts.strict) throw err;
        log('error', `access file not reloaded: ${(err as Error).message}`);
      }
    }
    const robots = await this.readRobots(seen, opts);
    if (gen !== this.generation) return;
    if (users) this.users = users;
    if (grace) this.grace = grace;
    if (robots) this.robots = robots;
    if (policy) this.policy = policy;
    this.policy.robots = this.robots;
    this.seen = seen;
    this.cache.clear();
    this.inflight.clear();
    const first = this.users.values().next().value;
    if (first) {
      const cost = Number(first.slice(4, 6));
      if (Number.isInteger(cost) && cost !== Number(this.dummyHash.slice(4, 6))) {
        this.dummyHash = await bcrypt.hash(randomBytes(16).toString('hex'), cost);
      }
    }
    log('info', 'credentials loaded', {
      users: this.users.size,
      robots: this.robots.size,
      access: this.policy.hasFile,
    });
  }

  /** The robots file (absent: no robots); undefined keeps the robots in force (with `strict`, throws instead). */
  private async readRobots(seen: Map<string, string>, opts: { strict?: boolean }): Promise<RobotSet | undefined> {
    try {
      let text = '';
      try {
        seen.set(this.robotsPath, fileKey(await stat(this.robotsPath)));
        text = await readFile(this.robotsPath, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        seen.set(this.robotsPath, 'absent');
      }
      return new RobotSet(parseRobotsFile(text), this.now);
    } catch (err) {
      if (opts.strict) throw err;
      this.opts.log?.('error', `robots file not reloaded: ${(err as Error).message}`);
      return undefined;
    }
  }

  /**
   * Verifies an Authorization header. Returns the user name; throws UNAUTHORIZED (one generic failure) or
   * TOOMANYREQUESTS while the client or user is throttled.
   */
  async authenticate(header: string | undefined, clientIp: string): Promise<string> {
    const unauthorized = () =>
      new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': this.challenge } });
    const creds = parseBasic(header);
    const ipKey = `ip:${clientIp}`;
    const tooMany = (wait: number) =>
      new RegistryError('TOOMANYREQUESTS', undefined, { headers: { 'Retry-After': String(Math.ceil(wait / 1000)) } });
    const ipWait = this.throttle.retryAfterMs(ipKey);
    if (ipWait > 0) throw tooMany(ipWait);
    if (!creds) throw unauthorized();
    if (robotName(creds.user) !== undefined) {
      // Robots are token-only: their secret is never Basic credentials for /v2/ or the admin API.
      this.throttle.fail(ipKey);
      throw new RegistryError(
        'UNAUTHORIZED',
        { reason: 'robot accounts sign in at the token endpoint only' },
        {
          headers: { 'WWW-Authenticate': this.challenge },
        },
      );
    }
    const key = createHash('sha256').update(creds.user).update('\0').update(creds.password).digest('hex');
    const cached = this.caching ? this.cache.get(key) : undefined;
    if (cached !== undefined) {
      // Verified credentials pass while others' failures lock the user: someone guessing from elsewhere must
      // not lock out the client that knows the password (the guessing address stays blocked above).
      if (cached.expiresAt !== undefined && this.now() >= cached.expiresAt) this.cache.delete(key);
      else if (safeEqual(cached.user, creds.user)) return creds.user;
    }
    const userWait = this.throttle.retryAfterMs(`user:${creds.user}`);
    if (userWait > 0) throw tooMany(userWait);
    let check = this.caching ? this.inflight.get(key) : undefined;
    if (!check && !this.caching) {
      check = this.verify(creds.password, this.users.get(creds.user), this.grace.get(creds.user) ?? []);
    } else if (!check) {
      const hash = this.users.get(creds.user);
      const graceHashes = this.grace.get(creds.user) ?? [];
      const gen = this.generation;
      check = this.verify(creds.password, hash, graceHashes);
      this.inflight.set(key, check);
      void check
        .finally(() => {
          if (this.inflight.get(key) === check) this.inflight.delete(key);
        })
        .then(
          (r) => {
            if (r.ok && gen === this.generation) {
              if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
              this.cache.set(key, { user: creds.user, expiresAt: r.expiresAt });
            }
          },
          () => undefined,
        );
    }
    const result = await check.catch((): CheckResult => ({ ok: false }));
    const ok = result.ok && (result.expiresAt === undefined || this.now() < result.expiresAt);
    if (!ok) {
      this.throttle.fail(ipKey);
      this.throttle.fail(`user:${creds.user}`);
      throw unauthorized();
    }
    this.throttle.succeed(ipKey);
    this.throttle.succeed(`user:${creds.user}`);
    return creds.user;
  }

  /**
   * Verifies a robot's `robot$NAME` + secret at the token endpoint; returns the user name `robot$NAME`. A wrong
   * secret is the generic 401 (and counts towards throttling); a right secret of a revoked or expired robot is a
   * 401 saying which, so its owner knows to make a new one. Each success is recorded as the robot's last use.
   */
  async authenticateRobot(user: string, secret: string, clientIp: string): Promise<string> {
    const name = robotName(user) ?? '';
    const ipKey = `ip:${clientIp}`;
    const wait = Math.max(this.throttle.retryAfterMs(ipKey), this.throttle.retryAfterMs(`user:${user}`));
    if (wait > 0)
      throw new RegistryError('TOOMANYREQUESTS', undefined, {
        headers: { 'Retry-After': String(Math.ceil(wait / 1000)) },
      });
    const entry = this.robots.get(name);
    const key = createHash('sha256').update(user).update('\0').update(secret).digest('hex');
    let ok = !entry?.oidc && this.caching && this.cache.get(key)?.user === user;
    if (entry?.oidc) {
      // The password is an ID token of the robot's issuer: never cached (each is short-lived and single-purpose).
      ok = await this.oidc.verify(secret, entry.oidc).then(
        () => true,
        (err: Error) => {
          this.opts.log?.('warn', 'OIDC token refused', { robot: name, reason: err.message });
          return false;
        },
      );
    } else if (!ok) {
      const gen = this.generation;
      ok = (await bcrypt.compare(secret, entry?.secret ?? this.dummyHash)) && entry !== undefined;
      if (ok && this.caching && gen === this.generation) this.cache.set(key, { user, expiresAt: undefined });
    }
    if (!ok) {
      this.throttle.fail(ipKey);
      this.throttle.fail(`user:${user}`);
      throw new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': this.challenge } });
    }
    const refusal = robotRefusal(entry, this.now());
    if (refusal !== undefined)
      throw new RegistryError(
        'UNAUTHORIZED',
        { robot: name, reason: `robot account ${refusal}` },
        {
          message: `robot account ${name} is ${refusal.split(' ')[0]}: create a new one with regctl robots add`,
        },
      );
    this.throttle.succeed(ipKey);
    this.robotUsage.record(name, this.now());
    return user;
  }

  /** Whether `user` is a robot bound to an OIDC issuer (its refresh tokens are short: token-service.ts). */
  isOidcRobot(user: string): boolean {
    const robot = robotName(user);
    return robot !== undefined && this.robots.get(robot)?.oidc !== undefined;
  }

  /** bcrypt against the current hash (or the dummy), then against the user's unexpired grace secrets. */
  private async verify(password: string, hash: string | undefined, grace: GraceEntry[]): Promise<CheckResult> {
    if ((await bcrypt.compare(password, hash ?? this.dummyHash)) && hash !== undefined) return { ok: true };
    for (const e of grace) {
      if (e.expiresAt * 1000 <= this.now()) continue;
      if (await bcrypt.compare(password, e.hash)) return { ok: true, expiresAt: e.expiresAt * 1000 };
    }
    return { ok: false };
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
