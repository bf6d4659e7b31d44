/**
 * The crash harness on replicas: several `regctl serve` processes on one shared storage and metadata store (S3 and
 * PostgreSQL), behind the real Traefik (file provider, round robin, retry and health check as in
 * test/helpers/traefik-process.ts). The workload goes through Traefik; each life ends with SIGKILL of ONE replica,
 * picked at random, while the others keep running. The killed one restarts on its own port (Traefik's servers are
 * fixed) and must find the store as the others left it: its unfinished intents done or dropped, nothing it
 * acknowledged lost.
 *
 * What differs from the single-server harness, and why:
 * - no offline fsck after each kill: the other replicas hold the store (their background work, such as finishing a
 *   dead process's intents, runs then). The fsck and its dangling-link rules run after the last cycle, once every
 *   replica is stopped;
 * - GCs go straight to one replica (at random, the one about to die included), not through Traefik: a GC job's
 *   progress is known only to the replica that runs it, and round robin would send the polls to the others.
 */
import { runFsck } from '../../../../src/registry/storage/fsck.js';
import { RegistryStore } from '../../../../src/registry/storage/store.js';
import { freePort } from '../../../helpers/peers.js';
import type { ServeProcess } from '../../../helpers/serve-process.js';
import { startTraefik, type TraefikProcess } from '../../../helpers/traefik-process.js';
import { CrashHarness } from './crash-harness.js';
import type { CrashOptions, CrashReport } from './crash-report.js';

export interface ReplicaCrashOptions extends CrashOptions {
  replicas: number;
}

export class ReplicaCrashHarness extends CrashHarness {
  private readonly listen: string[] = [];
  private readonly servers: (ServeProcess | undefined)[] = [];
  private traefik: TraefikProcess | undefined;
  /** Kills per replica, for the report's reader: every replica must have died at least once. */
  readonly killsOf: number[];

  constructor(private readonly replicaOpts: ReplicaCrashOptions) {
    super(replicaOpts);
    this.killsOf = Array.from({ length: replicaOpts.replicas }, () => 0);
  }

  private server(i: number): ServeProcess {
    const s = this.servers[i];
    if (!s) throw new Error(`replica ${i} is not running`);
    return s;
  }

  private get front(): { url: string } {
    if (!this.traefik) throw new Error('Traefik is not running');
    return { url: this.traefik.url };
  }

  override async run(): Promise<CrashReport> {
    const started = Date.now();
    await this.prepare();
    try {
      // One after the other: the first imports the (empty) bucket into the store, the others find it done.
      for (let i = 0; i < this.replicaOpts.replicas; i++) {
        this.listen.push(`127.0.0.1:${await freePort()}`);
        this.servers.push(await this.start('60s', this.listen[i]));
      }
      this.traefik = await startTraefik({ servers: this.listen.map((l) => `http://${l}`) });
      for (this.model.cycle = 1; this.model.cycle <= this.opts.kills; this.model.cycle++) {
        await this.cycle();
        if (this.model.cycle % 10 === 0 || this.model.cycle === this.opts.kills) {
          const m = this.model;
          this.log(
            `cycle ${m.cycle}/${this.opts.kills}: ${m.images.length} images, ${m.blobs.length} blobs, kills per replica ${this.killsOf.join('/')}, ${m.violations.length} violations`,
          );
        }
      }
      await this.finish();
    } finally {
      await this.traefik?.stop();
      for (const s of this.servers) await s?.stop().catch(() => undefined);
    }
    return this.report(Date.now() - started);
  }

  /** One life through Traefik, one replica killed, restarted on its port, then the acknowledged writes checked. */
  private async cycle(): Promise<void> {
    const n = this.replicaOpts.replicas;
    const victim = this.rng.int(0, n - 1);
    const gcOn = this.rng.int(0, n - 1);
    const dying = this.server(victim);
    await this.runLife({
      url: this.front.url,
      gcUrl: this.server(gcOn).url,
      output: () => this.servers.map((s) => s?.output() ?? '').join('\n'),
      kill: () => dying.kill(),
    });
    this.killsOf[victim] = (this.killsOf[victim] ?? 0) + 1;
    this.servers[victim] = undefined;
    const t = Date.now();
    try {
      this.servers[victim] = await this.start('60s', this.listen[victim]);
    } catch (err) {
      this.model.violation(`replica ${victim} did not restart: ${(err as Error).message}`);
      throw new Error(this.model.violations.join('\n'), { cause: err });
    }
    this.phases.restart += Date.now() - t;
    const leftTags = await this.storage.incompleteTags();
    if (leftTags.length > 0)
      this.model.violation(`tag directories without current/link after restart: ${leftTags.slice(0, 5).join(', ')}`);
    // Traefik's health check takes the restarted replica back within its interval; the retry middleware covers a
    // request sent to it before.
    const v = Date.now();
    await this.verify(this.front, false);
    this.phases.verify += Date.now() - v;
  }

  /**
   * After the last cycle: everything verified through Traefik; a GC on one replica with no writes around it; then,
   * every replica stopped, no dangling link, `fsck --repair` leaves a store that checks clean, and one replica
   * started with a 1 s purge age removes stale uploads.
   */
  private async finish(): Promise<void> {
    const m = this.model;
    await this.verify(this.front, true);
    await this.finalGc(this.server(0).url);
    await this.traefik?.stop();
    this.traefik = undefined;
    for (let i = 0; i < this.servers.length; i++) {
      await this.servers[i]?.stop();
      this.servers[i] = undefined;
    }
    const afterGc = await runFsck(new RegistryStore(await this.storage.openDriver()));
    for (const p of afterGc.problems) {
      if (p.kind === 'blob-corrupt') m.violation(`after the run: ${p.path}: ${p.detail}`);
      if (p.kind === 'tag-dangling' && !p.detail.includes('points at nothing'))
        m.violation(`after the run: ${p.detail}`);
    }
    for (const v of this.dangling.afterFinalGc(
      afterGc.problems.filter((p) => p.kind === 'link-dangling').map((p) => p.path),
    ))
      m.violation(v);
    await this.repairAndRestart();
  }
}

export function runReplicaCrashHarness(opts: ReplicaCrashOptions): Promise<CrashReport & { killsOf: number[] }> {
  const harness = new ReplicaCrashHarness(opts);
  return harness.run().then((report) => ({ ...report, killsOf: harness.killsOf }));
}
