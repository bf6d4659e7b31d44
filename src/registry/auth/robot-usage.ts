/**
 * When each robot was last used (a token issued to it), recorded cheaply: in memory at each use, written to the
 * metadata store's `meta` rows at most once a minute (and at close). One row per robot (`robot-last-use:NAME`), so
 * replicas sharing a PostgreSQL store never overwrite each other's robots, and a write keeps the later of the
 * stored and the new time, so two replicas using one robot end with the latest. With SQLite or PostgreSQL it
 * survives a restart; the in-memory store keeps it for the process only, as it does everything else.
 */

/** The slice of the metadata store this needs. */
export interface MetaStore {
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
}

const KEY_PREFIX = 'robot-last-use:';

export class RobotUsage {
  private readonly pending = new Map<string, number>();
  private store: MetaStore | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  /** Records a use now: a map write, nothing else. */
  record(name: string, atMs: number = Date.now()): void {
    this.pending.set(name, Math.max(atMs, this.pending.get(name) ?? 0));
  }

  /** Starts writing recorded uses to `store` every `intervalMs` (at most once a minute by default). */
  start(store: MetaStore, intervalMs = 60_000, onError?: (err: Error) => void): void {
    this.store = store;
    this.timer = setInterval(() => void this.flush().catch((err: Error) => onError?.(err)), intervalMs);
    this.timer.unref();
  }

  /** Writes what was recorded since the last flush; a failed write keeps its entries for the next one. */
  flush(): Promise<void> {
    const run = this.flushing.then(async () => {
      const store = this.store;
      if (!store || this.pending.size === 0) return;
      const batch = [...this.pending];
      this.pending.clear();
      for (const [i, [name, at]] of batch.entries()) {
        try {
          const stored = Date.parse((await store.getMeta(KEY_PREFIX + name)) ?? '');
          if (Number.isNaN(stored) || stored < at) await store.setMeta(KEY_PREFIX + name, new Date(at).toISOString());
        } catch (err) {
          for (const [n, t] of batch.slice(i)) this.record(n, t);
          throw err;
        }
      }
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
  }

  /** The last use of `name`: the later of the stored time and one not yet written; undefined if never used. */
  async lastUse(name: string): Promise<string | undefined> {
    const stored = this.store ? Date.parse((await this.store.getMeta(KEY_PREFIX + name)) ?? '') : NaN;
    const best = Math.max(Number.isNaN(stored) ? 0 : stored, this.pending.get(name) ?? 0);
    return best === 0 ? undefined : new Date(best).toISOString();
  }
}
