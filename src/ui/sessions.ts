/**
 * Server-side sessions. The browser holds only a random id (httpOnly, SameSite=Strict cookie); the password stays
 * in this process's memory for the session's life and is dropped on sign-out, expiry, or when the registry stops
 * accepting it. Each session carries its CSRF token and its own caches, so one user's view never leaks into
 * another's.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { TtlCache } from './cache.js';
import type { WhoAmI } from '../common/admin-api.js';

export interface Session {
  id: string;
  user: string;
  password: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
  /** From `GET /admin/v1/whoami`; undefined when the registry has no admin API (then every user may do everything). */
  whoami: WhoAmI | undefined;
  cache: TtlCache<unknown>;
  /** A one-time message shown on the next page (for example "tag deleted"). */
  flash: Notice | undefined;
}

export interface Notice {
  kind: 'ok' | 'error' | 'warn';
  title: string;
  text?: string;
}

export interface SessionStoreOptions {
  /** A session unused this long ends. */
  idleMs?: number;
  /** A session ends this long after sign-in, used or not. */
  maxAgeMs?: number;
  /** How long catalog and tag-list metadata are reused. */
  cacheTtlMs?: number;
  now?: () => number;
}

export type SessionLookup = { session: Session } | { session: undefined; expired: boolean };

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Ids that ended recently, so a request carrying one is told "expired" rather than "please sign in". */
  private readonly ended = new Map<string, number>();
  readonly idleMs: number;
  readonly maxAgeMs: number;
  readonly cacheTtlMs: number;
  private readonly now: () => number;

  constructor(opts: SessionStoreOptions = {}) {
    this.idleMs = opts.idleMs ?? 8 * 3600_000;
    this.maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000;
    this.cacheTtlMs = opts.cacheTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  create(user: string, password: string, whoami: WhoAmI | undefined): Session {
    this.sweep();
    const now = this.now();
    const session: Session = {
      id: randomToken(32),
      user,
      password,
      csrf: randomToken(32),
      createdAt: now,
      lastSeen: now,
      whoami,
      cache: new TtlCache<unknown>(this.cacheTtlMs, 20_000, this.now),
      flash: undefined,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  lookup(id: string | undefined): SessionLookup {
    if (!id) return { session: undefined, expired: false };
    const session = this.sessions.get(id);
    if (!session) return { session: undefined, expired: this.ended.has(id) };
    const now = this.now();
    if (now - session.lastSeen > this.idleMs || now - session.createdAt > this.maxAgeMs) {
      this.end(id);
      return { session: undefined, expired: true };
    }
    session.lastSeen = now;
    return { session };
  }

  end(id: string): void {
    const session = this.sessions.get(id);
    if (session) {
      session.password = '';
      session.cache.clear();
    }
    this.sessions.delete(id);
    this.ended.set(id, this.now());
  }

  /** Ends every session of a user (for example when the registry rejects their password). */
  endUser(user: string): void {
    for (const s of [...this.sessions.values()]) if (s.user === user) this.end(s.id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const s of [...this.sessions.values()]) {
      if (now - s.lastSeen > this.idleMs || now - s.createdAt > this.maxAgeMs) this.end(s.id);
    }
    for (const [id, at] of this.ended) if (now - at > this.maxAgeMs) this.ended.delete(id);
  }
}

/**
 * Throttles sign-in failures per user name and per client address: after `freeAttempts` failures within
 * `windowMs`, each further attempt must wait, doubling from `baseDelayMs` up to `maxDelayMs`.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; first: number; last: number }>();
  private readonly freeAttempts: number;
  private readonly windowMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly now: () => number;

  constructor(
    opts: {
      freeAttempts?: number;
      windowMs?: number;
      baseDelayMs?: number;
      maxDelayMs?: number;
      now?: () => number;
    } = {},
  ) {
    this.freeAttempts = opts.freeAttempts ?? 5;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.baseDelayMs = opts.baseDelayMs ?? 2_000;
    this.maxDelayMs = opts.maxDelayMs ?? 5 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** Milliseconds the caller must still wait before trying `keys` again; 0 when allowed. */
  retryAfterMs(keys: readonly string[]): number {
    let wait = 0;
    const now = this.now();
    for (const key of keys) {
      const f = this.failures.get(key);
      if (!f) continue;
      if (now - f.last > this.windowMs) {
        this.failures.delete(key);
        continue;
      }
      const over = f.count - this.freeAttempts;
      if (over < 0) continue;
      const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** over);
      wait = Math.max(wait, f.last + delay - now);
    }
    return Math.max(0, wait);
  }

  fail(keys: readonly string[]): void {
    const now = this.now();
    for (const key of keys) {
      const f = this.failures.get(key);
      if (!f || now - f.last > this.windowMs) this.failures.set(key, { count: 1, first: now, last: now });
      else {
        f.count++;
        f.last = now;
      }
    }
    if (this.failures.size > 50_000) {
      for (const [key, f] of this.failures) if (now - f.last > this.windowMs) this.failures.delete(key);
    }
  }

  succeed(keys: readonly string[]): void {
    for (const key of keys) this.failures.delete(key);
  }
}
