/**
 * Leases: one holder at a time for work every replica could start but one should do (garbage collection). Unlike
 * `exclusive`, which waits its turn, a lease is taken at once or not at all, and a refused caller learns who holds
 * it, to say so.
 *
 * - PostgreSQL (replicas): a session advisory lock on a connection held for the lease's life, so a holder whose
 *   process dies frees it when its connection closes; the holder's description is kept in `meta` beside it.
 * - SQLite and memory (one process uses the store): an in-process table, `InProcessLeases`.
 */

/** A lease held: `release` ends it (idempotent). */
export interface Lease {
  release(): Promise<void>;
  /**
   * Aborted when the lease is lost while held (PostgreSQL: its connection dropped, which frees the lock for
   * another holder): the work it guarded must stop. Never aborted for an in-process lease.
   */
  readonly lost: AbortSignal;
}

/** Either the lease, or what its current holder recorded (undefined when it recorded nothing yet). */
export type LeaseAttempt = { lease: Lease } | { heldBy: string | undefined };

/** `meta` key where a lease's holder is described while it is held. */
export function leaseMetaKey(name: string): string {
  return `lease:${name}`;
}

/** Leases among the callers of one process. */
export class InProcessLeases {
  private readonly held = new Map<string, string>();

  async tryLease(name: string, holder: string): Promise<LeaseAttempt> {
    if (this.held.has(name)) return { heldBy: this.held.get(name) };
    this.held.set(name, holder);
    let released = false;
    return {
      lease: {
        release: async () => {
          if (released) return;
          released = true;
          this.held.delete(name);
        },
        lost: new AbortController().signal,
      },
    };
  }
}
