/**
 * Throttling of repeated authentication failures, per key (a client IP, a user name). After `maxFailures`
 * failures within `windowMs`, the key is blocked for `blockMs`; a success clears it.
 */
export interface ThrottleOptions {
  maxFailures: number;
  windowMs: number;
  blockMs: number;
}

interface Entry {
  failures: number;
  firstAt: number;
  blockedUntil: number;
}

export class FailureThrottle {
  private readonly entries = new Map<string, Entry>();
  readonly opts: ThrottleOptions;

  constructor(opts: Partial<ThrottleOptions> = {}) {
    this.opts = {
      maxFailures: opts.maxFailures ?? 10,
      windowMs: opts.windowMs ?? 60_000,
      blockMs: opts.blockMs ?? 30_000,
    };
  }

  /** Milliseconds the key must still wait, 0 when it may try. */
  retryAfterMs(key: string, now = Date.now()): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    return Math.max(0, e.blockedUntil - now);
  }

  fail(key: string, now = Date.now()): void {
    let e = this.entries.get(key);
    if (!e || now - e.firstAt > this.opts.windowMs) {
      e = { failures: 0, firstAt: now, blockedUntil: 0 };
      this.entries.set(key, e);
    }
    e.failures++;
    if (e.failures >= this.opts.maxFailures) {
      e.blockedUntil = now + this.opts.blockMs;
      e.failures = 0;
      e.firstAt = now;
    }
    if (this.entries.size > 100_000) this.prune(now);
  }

  succeed(key: string): void {
    this.entries.delete(key);
  }

  private prune(now: number): void {
    for (const [k, e] of this.entries)
      if (e.blockedUntil < now && now - e.firstAt > this.opts.windowMs) this.entries.delete(k);
  }
}
