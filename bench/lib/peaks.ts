import type { MetricSpec } from './model.js';
import type { RegistryName, RunningServer } from './servers.js';

const MiB = 1024 * 1024;

/** The lifetime peak target row: the highest VmHWM of any start of ours as deployed, start-up included. */
export const PEAK_SPEC: MetricSpec = {
  id: 'peakRssMiB',
  label:
    "Peak RSS over a process's whole life (VmHWM since start, never reset), highest of every start of the registry as deployed",
  unit: 'MiB',
  better: 'lower',
  targets: [{ kind: 'max', value: 120 }],
};

/** One process's peak resident set over its whole life (VmHWM since start, start-up included). */
export interface LifetimePeak {
  server: RegistryName;
  /** `default` for ours as deployed; otherwise what differs (e.g. the credential cache off). */
  config: string;
  /** What the process did: which pass or phase, on which volume. */
  where: string;
  peakMiB: number;
}

/** Every registry process the run started, with its lifetime peak, recorded as each one stops. */
export class PeakLedger {
  readonly entries: LifetimePeak[] = [];

  add(server: RegistryName, config: string, where: string, peakBytes: number): void {
    if (peakBytes > 0) this.entries.push({ server, config, where, peakMiB: peakBytes / MiB });
  }

  /** Stops `server` and records its lifetime peak, read just before it was stopped. */
  async stop(server: RunningServer, where: string, config = 'default'): Promise<void> {
    await server.stop();
    this.add(server.name, config, where, await server.lifetimePeakBytes());
  }

  /** The highest lifetime peak of `server` in its `default` configuration, and where it was. */
  highest(server: RegistryName): LifetimePeak | undefined {
    let top: LifetimePeak | undefined;
    for (const e of this.entries)
      if (e.server === server && e.config === 'default' && (!top || e.peakMiB > top.peakMiB)) top = e;
    return top;
  }
}
