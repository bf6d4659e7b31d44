/**
 * Scheduled retention inside the registry: every `policies.retention.schedule` (re-armed when the policies
 * change), a run of the rules, a dry run when `policies.retention.dryRun` is set. Each replica keeps its own
 * timer; the store's `retention` lease lets one run at a time, and a replica that finds one running skips its turn
 * (the running one already does the work). Each run is logged with what it removed; blobs are left to the GC.
 */
import type { Policies } from '../../common/policies.js';
import type { LogFn } from '../logger.js';
import type { RegistryStore } from '../storage/store.js';
import type { PolicyHolder } from './holder.js';
import { RetentionBusyError, runRetention } from './retention-run.js';

export class RetentionSchedule {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: RegistryStore,
    private readonly policies: PolicyHolder,
    private readonly log: LogFn,
    private readonly waitWritable: () => Promise<void>,
  ) {
    policies.onChange((p) => this.arm(p));
  }

  start(): void {
    this.arm(this.policies.current);
  }

  /** Stops the timer and waits for a run under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private arm(p: Policies): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const every = p.retention.scheduleMs;
    if (this.stopped || every === undefined || p.retention.rules.length === 0) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.arm(this.policies.current);
      });
    }, every);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const p = this.policies.current;
    try {
      const report = await runRetention(this.store, p, {
        dryRun: p.retention.dryRun,
        beforeRemoving: this.waitWritable,
      });
      this.log('info', 'retention', {
        trigger: 'schedule',
        dryRun: report.dryRun,
        removed: report.removed,
        kept: report.kept,
        skipped: report.skipped.length,
      });
    } catch (err) {
      if (err instanceof RetentionBusyError) this.log('info', 'scheduled retention skipped', { reason: err.message });
      else this.log('error', 'scheduled retention failed', { error: (err as Error).message });
    }
  }
}
