/**
 * The one lock the maintenance jobs of a registry share: a backup (while it captures and streams) and a GC that
 * deletes (while it sweeps) never run at the same time, so that no blob a backup lists vanishes before it is
 * copied. One holder at a time; a GC dry run deletes nothing and does not take it. Each registry app owns one
 * and hands it to the admin modules through `AdminServices`.
 */
export type MaintenanceJob = 'backup' | 'gc-sweep';

export class MaintenanceLock {
  private current: MaintenanceJob | undefined;

  /** The job holding the lock, if any. */
  get holder(): MaintenanceJob | undefined {
    return this.current;
  }

  /**
   * Takes the lock for `job` when it is free and returns its release (idempotent); undefined when held. The
   * check and the take are one synchronous step, so two requests can never both get it.
   */
  tryAcquire(job: MaintenanceJob): (() => void) | undefined {
    if (this.current !== undefined) return undefined;
    this.current = job;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.current = undefined;
    };
  }
}
