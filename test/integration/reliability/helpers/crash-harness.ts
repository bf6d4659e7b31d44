/**
 * Crash consistency harness: `regctl serve` (a child process) on one data directory under the workload of
 * crash-workload.ts; SIGKILL at a random moment, offline fsck of the data directory, restart, then checks
 * against the model of what the server acknowledged (crash-model.ts, crash-verify.ts).
 *
 * The model only trusts acknowledgements: an operation whose response did not arrive before the kill may or may
 * not have happened, and the checks accept both outcomes for it alone. What a GC may take away is decided by
 * the rules of crash-rules.ts, from the reports the harness read and the GCs a kill cut short.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { runFsck, type FsckProblem } from '../../../../src/registry/storage/fsck.js';
import { RegistryStore } from '../../../../src/registry/storage/store.js';
import { basicAuth } from '../../../helpers/auth.js';
import { startServe, type ServeProcess } from '../../../helpers/serve-process.js';
import { RegistryClient } from './client.js';
import { CrashModel } from './crash-model.js';
import { quantiles, type CrashOptions, type CrashReport } from './crash-report.js';
import { DanglingLinks } from './crash-rules.js';
import { verifyAcknowledged, verifyCatalog } from './crash-verify.js';
import { CrashWorkload, REPOS } from './crash-workload.js';
import { filesystemStorage, type CrashStorage } from './crash-storage.js';
import { Rng } from './rng.js';

export { crashMarkdown, type CrashOptions, type CrashReport } from './crash-report.js';

const USER = 'crash-admin';
/** The grace window of every GC the harness starts: long against a server life, short against the run. */
export const CRASH_GC_GRACE_MS = 10_000;
/** Past the grace window before the final GC: uses are written in batches stamped when the read happened. */
const FINAL_GC_SLACK_MS = 1_000;

export class CrashHarness {
  readonly model: CrashModel;
  protected readonly rng: Rng;
  protected readonly workload: CrashWorkload;
  protected readonly dangling = new DanglingLinks();
  protected readonly storage: CrashStorage;
  protected readonly htpasswd: string;
  private readonly password = randomBytes(12).toString('hex');
  protected readonly auth = basicAuth(USER, this.password);
  protected readonly log: (line: string) => void;
  protected readonly startupMs: number[] = [];
  private readonly fsckAfterKill: Record<string, number> = {};
  protected readonly phases = { life: 0, fsck: 0, restart: 0, tempClean: 0, verify: 0 };
  private tempFilesLeftAfterKill = 0;
  private itemsVerified = 0;

  constructor(protected readonly opts: CrashOptions) {
    this.log = opts.progress ?? (() => undefined);
    this.rng = new Rng(opts.seed);
    this.model = new CrashModel(opts.seed, CRASH_GC_GRACE_MS, this.log);
    this.workload = new CrashWorkload(this.model, this.rng, opts.maxLive);
    this.storage = opts.storage ?? filesystemStorage(join(opts.dir, 'data'));
    this.htpasswd = join(opts.dir, 'htpasswd');
  }

  /** The whole run: kills, then the final checks; the report lists every violation. */
  async run(): Promise<CrashReport> {
    const started = Date.now();
    await this.prepare();
    let srv = await this.start();
    for (this.model.cycle = 1; this.model.cycle <= this.opts.kills; this.model.cycle++) {
      await this.runLifeAndKill(srv);
      await this.fsckOffline();
      srv = await this.restart();
      const t = Date.now();
      await this.verify(srv, false);
      this.phases.verify += Date.now() - t;
      const m = this.model;
      if (m.cycle % 10 === 0 || m.cycle === this.opts.kills) {
        this.log(
          `cycle ${m.cycle}/${this.opts.kills}: ${m.images.length} images, ${m.blobs.length} blobs, ${this.workload.interrupted} interrupted, ${m.violations.length} violations`,
        );
      }
    }
    await this.finalChecks(srv);
    return this.report(Date.now() - started);
  }

  /** The storage made ready and the harness's user written. */
  protected async prepare(): Promise<void> {
    await this.storage.prepare();
    await writeFile(this.htpasswd, `${USER}:${bcrypt.hashSync(this.password, 5)}\n`, { mode: 0o600 });
  }

  /** Starts a server (on `listen`, else a free port) and checks it answers `/healthz`. */
  async start(purgeAge = '60s', listen?: string): Promise<ServeProcess> {
    const t0 = Date.now();
    const srv = await startServe(
      [
        ...this.storage.serveArgs(),
        '--htpasswd',
        this.htpasswd,
        '--log-level',
        'warn',
        '--upload-purge-age',
        purgeAge,
        ...(listen ? ['--listen', listen] : []),
      ],
      { env: this.storage.env() },
    );
    this.startupMs.push(Date.now() - t0);
    const health = await fetch(`${srv.url}/healthz`);
    if (health.status !== 200) this.model.violation(`healthz after restart → ${health.status}`);
    await health.arrayBuffer();
    return srv;
  }

  /** Runs the workers for a random life, then SIGKILL; GCs still in flight become "maybe". */
  async runLifeAndKill(srv: ServeProcess): Promise<void> {
    await this.runLife({ url: srv.url, output: () => srv.output(), kill: () => srv.kill() });
  }

  /**
   * The workload against `url` for a random life, then `kill`; GCs still in flight become "maybe". The workers
   * stop as the kill comes, so a request the kill breaks counts as interrupted, never as a violation.
   */
  protected async runLife(target: { url: string; output(): string; kill(): Promise<void>; gcUrl?: string }) {
    const [lifeMin, lifeMax] = this.opts.lifeMs ?? [150, 1500];
    const client = new RegistryClient(target.url, this.auth, { timeoutMs: 20_000 });
    const gcClient = target.gcUrl ? new RegistryClient(target.gcUrl, this.auth, { timeoutMs: 20_000 }) : client;
    let stop = false;
    const serverErrors = () =>
      target
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":"error"'))
        .slice(-3);
    const workers = this.workload.run(client, this.opts.workers ?? 6, () => stop, serverErrors, gcClient);
    const life = this.rng.int(lifeMin, lifeMax);
    this.phases.life += life;
    await new Promise((r) => setTimeout(r, life));
    stop = true;
    await target.kill();
    const killAt = Date.now();
    await workers;
    this.model.settleAtKill(killAt);
  }

  /** The registry's own fsck on the killed server's directory: no corrupt blob, no tag to a missing manifest. */
  async fsckOffline(): Promise<FsckProblem[]> {
    const t = Date.now();
    const m = this.model;
    const report = await runFsck(new RegistryStore(await this.storage.openDriver()));
    const danglingPaths: string[] = [];
    for (const p of report.problems) {
      this.fsckAfterKill[p.kind] = (this.fsckAfterKill[p.kind] ?? 0) + 1;
      if (p.kind === 'blob-corrupt') m.violation(`after kill: ${p.path}: ${p.detail}`);
      // "points at nothing": a tag directory without current/link, from a first tag write cut short; restart()
      // checks that the server removes it before listening.
      if (p.kind === 'tag-dangling' && !p.detail.includes('points at nothing')) m.violation(`after kill: ${p.detail}`);
      if (p.kind === 'link-dangling') danglingPaths.push(p.path);
    }
    for (const v of this.dangling.afterKill(m.cycle, danglingPaths, m.gcs)) m.violation(`after kill: ${v}`);
    this.tempFilesLeftAfterKill += (await this.storage.tempFiles()).length;
    this.phases.fsck += Date.now() - t;
    return report.problems;
  }

  /** Restarts the server: it must come up, with no incomplete tag left and the temp files of earlier lives gone. */
  async restart(): Promise<ServeProcess> {
    const restartAt = Date.now();
    let srv: ServeProcess;
    try {
      srv = await this.start();
    } catch (err) {
      this.model.violation(`server did not restart: ${(err as Error).message}`);
      throw new Error(this.model.violations.join('\n'), { cause: err });
    }
    const up = Date.now();
    this.phases.restart += up - restartAt;
    const leftTags = await this.storage.incompleteTags();
    if (leftTags.length > 0)
      this.model.violation(`tag directories without current/link after restart: ${leftTags.slice(0, 5).join(', ')}`);
    await this.waitTempClean(srv, restartAt);
    this.phases.tempClean += Date.now() - up;
    return srv;
  }

  private async waitTempClean(srv: ServeProcess, startedAt: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const left = (await this.storage.tempFiles()).filter((t) => t.mtimeMs < startedAt - 50);
      if (left.length === 0) return;
      if (Date.now() > deadline) {
        this.model.violation(
          `temporary files left after restart: ${left
            .map((t) => t.path)
            .slice(0, 5)
            .join(', ')} (pid ${srv.pid})`,
        );
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Acknowledged writes and listings against the running server (`all`: every entry, not a sample). */
  async verify(srv: { url: string }, all: boolean): Promise<void> {
    const reader = new RegistryClient(srv.url, this.auth);
    this.itemsVerified += await verifyAcknowledged(reader, this.model, {
      all,
      sampleOld: this.opts.sampleOld ?? 20,
      rng: this.rng,
    });
    await verifyCatalog(reader, this.model, REPOS);
  }

  /**
   * After the last restart: everything verified; a GC with no reads or writes around it (finalGc), after which
   * no link may dangle; `fsck --repair` leaves a directory that checks clean; a restart with a 1 s purge age
   * removes stale uploads.
   */
  async finalChecks(srv: ServeProcess): Promise<void> {
    const m = this.model;
    await this.verify(srv, true);
    await this.finalGc(srv.url);
    await srv.stop();
    const afterGc = await runFsck(new RegistryStore(await this.storage.openDriver()));
    for (const v of this.dangling.afterFinalGc(
      afterGc.problems.filter((p) => p.kind === 'link-dangling').map((p) => p.path),
    ))
      m.violation(v);
    await this.repairAndRestart();
  }

  /**
   * The last GC, with no writes or reads around it, which must finish. It starts a grace window after the last
   * verification: every read of a blob counts as a use that keeps it from the sweep for that window, so a GC
   * started at once would keep every standalone blob, and a run whose GCs were all cut by kills would end with no
   * report listing a swept blob.
   */
  protected async finalGc(url: string): Promise<void> {
    const m = this.model;
    await new Promise((r) => setTimeout(r, m.graceMs + FINAL_GC_SLACK_MS));
    await this.workload.gc(new RegistryClient(url, this.auth, { timeoutMs: 120_000 }));
    const last = m.gcs[m.gcs.length - 1];
    if (last?.outcome !== 'done') m.violation(`the final GC did not finish: ${last?.outcome}`);
  }

  /**
   * With every server stopped: `fsck --repair` leaves a store that checks clean, and a server started with a 1 s
   * purge age serves everything acknowledged and removes the stale uploads.
   */
  protected async repairAndRestart(): Promise<void> {
    const m = this.model;
    await runFsck(new RegistryStore(await this.storage.openDriver()), { repair: true });
    const after = await runFsck(new RegistryStore(await this.storage.openDriver()));
    for (const p of after.problems) m.violation(`after repair: ${p.kind} ${p.path}`);
    const last = await this.start('1s');
    await new Promise((r) => setTimeout(r, 1500));
    await this.verify(last, true);
    const uploadsLeft = await this.storage.uploadsLeft();
    if (uploadsLeft.length > 0)
      m.violation(`stale uploads left after a restart with a 1s purge age: ${uploadsLeft.slice(0, 5).join(', ')}`);
    await last.stop();
  }

  report(durationMs: number): CrashReport {
    const m = this.model;
    const count = (o: string) => m.gcs.filter((g) => g.outcome === o).length;
    const gone = m.blobs.filter((b) => b.goneBy !== undefined);
    return {
      seed: this.opts.seed,
      kills: this.opts.kills,
      maxLive: this.opts.maxLive,
      durationMs,
      acknowledged: m.acknowledged,
      interrupted: this.workload.interrupted,
      gcOutcomes: { done: count('done'), maybe: count('maybe'), refused: count('refused'), failed: count('failed') },
      blobsGoneByGc: {
        listed: gone.filter((b) => b.goneBy?.startsWith('swept by')).length,
        maybe: gone.filter((b) => !b.goneBy?.startsWith('swept by')).length,
      },
      startupMs: quantiles(this.startupMs),
      fsckAfterKill: this.fsckAfterKill,
      tempFilesLeftAfterKill: this.tempFilesLeftAfterKill,
      phases: this.phases,
      itemsVerified: this.itemsVerified,
      finalImages: m.liveImages().length,
      finalBlobs: m.liveBlobs().length,
      violations: m.violations,
    };
  }
}

export function runCrashHarness(opts: CrashOptions): Promise<CrashReport> {
  return new CrashHarness(opts).run();
}
