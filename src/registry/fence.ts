/**
 * The read-only fence (for consistent backups): while it is up, writes wait up to `maxWaitMs` for it to lift,
 * then fail with 503 UNAVAILABLE and a Retry-After of the time left.
 */
import { RegistryError } from './errors.js';

export class Fence {
  private until = 0;
  private writers = 0;

  set(ttlSeconds: number, now = Date.now()): { until: string } {
    this.until = now + ttlSeconds * 1000;
    return { until: new Date(this.until).toISOString() };
  }

  clear(): void {
    this.until = 0;
  }

  active(now = Date.now()): boolean {
    return this.until > now;
  }

  status(now = Date.now()): { active: boolean; until: string | null } {
    return this.active(now)
      ? { active: true, until: new Date(this.until).toISOString() }
      : { active: false, until: null };
  }

  /** Manifest and tag writes currently past the fence. */
  get writesInProgress(): number {
    return this.writers;
  }

  /**
   * Like `waitWritable`, then counts the caller as a write in progress until it calls the returned release.
   * The fence check and the count happen in one synchronous step, so once `set` has run, `drain` waits for
   * every write that got past the fence and no new one can start.
   */
  async enterWrite(maxWaitMs = 2000): Promise<() => void> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      if (!this.active()) {
        this.writers++;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.writers--;
        };
      }
      await this.waitWritable(Math.max(0, deadline - Date.now()));
    }
  }

  /** Waits until no counted write is in progress; false when `timeoutMs` passed first. */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.writers > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  async waitWritable(maxWaitMs = 2000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (this.active()) {
      const now = Date.now();
      if (now >= deadline) {
        throw new RegistryError(
          'UNAVAILABLE',
          { reason: 'registry is read-only for maintenance' },
          {
            headers: { 'Retry-After': String(Math.max(1, Math.ceil((this.until - now) / 1000))) },
          },
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(100, deadline - now)));
    }
  }
}
