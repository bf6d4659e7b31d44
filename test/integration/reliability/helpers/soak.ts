/**
 * Soak load against a running registry: `clients` concurrent loops mixing pulls (manifest by tag, then every
 * blob) and pushes (new blobs, monolithic or chunked, then the manifest over the client's own tag), a GC with
 * deleteUntagged now and then to keep the disk bounded (started as a job and polled, as `regctl gc` does), and
 * a sample of each watched process every few seconds: VmRSS from /proc/PID/status and open descriptors from
 * /proc/PID/fd. The first watched process is the registry; the trend figures and the verdicts are its own.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import {
  judgeFds,
  judgeRss,
  type FdCriterion,
  type FdVerdict,
  type RssCriterion,
  type RssVerdict,
} from '../../../helpers/series.js';
import { RegistryClient, imageManifest, sha256 } from './client.js';
import { Rng } from './rng.js';

export interface SoakOptions {
  url: string;
  authorization?: string;
  /** Processes sampled (host PIDs); the first is the registry server. */
  watch: { name: string; pid: number }[];
  clients: number;
  durationMs: number;
  sampleEveryMs?: number;
  gcEveryMs?: number;
  seed: number;
  /**
   * Pass/fail criteria for the registry's RSS (omitted: not judged, as in a run too short for a trend) and its
   * descriptors under load, fixed before the run. The warm-up of each is the time it leaves out.
   */
  criteria: { rss?: RssCriterion; fds: FdCriterion };
}

/**
 * The 30-minute soak's criteria, with why each number:
 * - Warm-up 5 minutes for both: V8's heap and malloc's arenas grow to their working size under this load in the
 *   first minutes (60 → 132 MiB over the first 4 minutes of the 30-minute run of 2026-11-30); a leak shows as
 *   growth that goes on after that, over the remaining 25 minutes.
 * - RSS slope under 1 MiB/min after warm-up: the collector's sawtooth (±15 MiB over minutes) moves a
 *   least-squares slope over 25 minutes of 5-second samples by a few tenths of a MiB/min; 1 MiB/min is 25 MiB over
 *   the window (about 1.4 GiB a day), a leak a long-running registry must not have.
 * - Median of the last third at most 10% above the middle third's: a late step up (a cache that stops being
 *   bounded) that a slope over the whole window could dilute; 10% (~14 MiB at 140 MiB) is well over the gap the
 *   sawtooth leaves between the medians of two 8-minute windows, and what 1 MiB/min alone would add is ~6%.
 * - Descriptors: the median of the last third of the run under load at most 16 over the warm-up's maximum. Every
 *   client holds one connection and one file at most at a time, reached in the warm-up already; a GC adds up to 16
 *   storage calls in flight (GC_CONCURRENCY), which the warm-up may not have seen. A leak of one descriptor per
 *   thousand requests adds hundreds over a run at ~500 requests/s.
 */
export const SOAK_CRITERIA: { rss: RssCriterion; fds: FdCriterion } = {
  rss: { warmupS: 300, maxSlopeMiBPerMin: 1, maxThirdGrowth: 0.1, minSamples: 30 },
  fds: { warmupS: 300, margin: 16, minSamples: 10 },
};

export interface SoakSample {
  /** Seconds since the load started (the one sample before it is at 0). */
  atS: number;
  /** The registry's. */
  rssMiB: number;
  fds: number;
  requests: number;
  /** Taken while the clients ran (the one sample after they stopped is not). */
  load: boolean;
  /** Every watched process's, by name. */
  processes: Record<string, { rssMiB: number; fds: number }>;
}

export interface SoakReport {
  /** Wall time, including the wait for a GC still running when the clients stop. */
  durationMs: number;
  /** Time the clients ran. */
  loadMs: number;
  clients: number;
  pulls: number;
  pushes: number;
  requests: number;
  bytesPulled: number;
  bytesPushed: number;
  gcs: number;
  gcMs: number[];
  gcFreedMiB: number;
  errors: string[];
  errorCount: number;
  latencyMs: { pullP50: number; pullP99: number; pushP50: number; pushP99: number };
  samples: SoakSample[];
  rss: { startMiB: number; lastMiB: number; maxMiB: number };
  fds: { afterLoad: number; maxUnderLoad: number };
  criteria: SoakOptions['criteria'];
  /** The registry's RSS judged by `criteria.rss` (absent when not judged). */
  rssVerdict?: RssVerdict;
  /** The registry's descriptors under load judged by `criteria.fds`. */
  fdVerdict: FdVerdict;
  /** Names of the watched processes, the registry first. */
  watched: string[];
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
}

const quantile = (v: number[], q: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
};

/** One soak run: the counters it keeps and its steps (seed images, client loops, sampling, GC jobs, report). */
class SoakRun {
  private readonly rng: Rng;
  private readonly client: RegistryClient;
  private readonly gcClient: RegistryClient;
  /** When the load starts (after the seed images are pushed): sample times and the duration count from here. */
  private started = Date.now();
  private readonly errors: string[] = [];
  private errorCount = 0;
  private pulls = 0;
  private pushes = 0;
  private requests = 0;
  private bytesPulled = 0;
  private bytesPushed = 0;
  private gcs = 0;
  private gcFreed = 0;
  private readonly pullMs: number[] = [];
  private readonly pushMs: number[] = [];
  private readonly gcMs: number[] = [];
  private readonly samples: SoakSample[] = [];
  /** True while the clients run: samples taken then are the ones judged. */
  private load = false;
  private seeded: { repo: string; tag: string; blobs: string[] }[] = [];

  constructor(private readonly opts: SoakOptions) {
    this.rng = new Rng(opts.seed);
    this.client = new RegistryClient(opts.url, opts.authorization, { timeoutMs: 60_000 });
    this.gcClient = new RegistryClient(opts.url, opts.authorization, { timeoutMs: 60_000 });
  }

  private fail(what: string): void {
    this.errorCount++;
    if (this.errors.length < 50) this.errors.push(`${((Date.now() - this.started) / 1000).toFixed(1)}s ${what}`);
  }

  async run(): Promise<SoakReport> {
    await this.seedImages();
    this.started = Date.now();
    await this.sample();
    this.load = true;
    const sampler = setInterval(() => void this.sample(), this.opts.sampleEveryMs ?? 5000);
    let gcRunning: Promise<void> | undefined;
    const gcTimer = setInterval(() => {
      if (gcRunning) return;
      gcRunning = this.gcOnce()
        .catch((err: unknown) => this.fail(`gc: ${(err as Error).message}`))
        .finally(() => (gcRunning = undefined));
    }, this.opts.gcEveryMs ?? 60_000);
    const deadline = this.started + this.opts.durationMs;
    let loadMs: number;
    try {
      await Promise.all(Array.from({ length: this.opts.clients }, (_, i) => this.loop(i, deadline)));
      loadMs = Date.now() - this.started;
    } finally {
      this.load = false;
      clearInterval(sampler);
      clearInterval(gcTimer);
    }
    await gcRunning;
    await new Promise((r) => setTimeout(r, 2000));
    await this.sample();
    return this.report(loadMs);
  }

  /** A fixed set of images every client pulls from, pushed before the load starts. */
  private async seedImages(): Promise<void> {
    for (let i = 0; i < 16; i++) {
      const repo = `soak/base-${i % 4}`;
      const config = Buffer.from(JSON.stringify({ os: 'linux', n: i }));
      const layers = [randomBytes(this.rng.int(4, 256) * 1024), randomBytes(this.rng.int(1, 64) * 1024)];
      for (const b of [config, ...layers]) await this.client.pushBlobMonolithic(repo, b);
      await this.client.putManifest(repo, `v${i}`, imageManifest(config, layers));
      this.seeded.push({ repo, tag: `v${i}`, blobs: [sha256(config), ...layers.map((l) => sha256(l))] });
    }
  }

  private async loop(clientId: number, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      try {
        if (this.rng.chance(0.7)) await this.pull();
        else await this.push(clientId);
      } catch (err) {
        this.fail(`client ${clientId}: ${(err as Error).message}`);
      }
    }
  }

  private async pull(): Promise<void> {
    const img = this.rng.pick(this.seeded);
    const t0 = Date.now();
    const m = await this.client.getManifest(img.repo, img.tag);
    this.requests++;
    if (m.status !== 200) return this.fail(`pull ${img.repo}:${img.tag} manifest → ${m.status}`);
    for (const d of img.blobs) {
      const b = await this.client.getBlob(img.repo, d);
      this.requests++;
      this.bytesPulled += b.body.length;
      if (b.status !== 200 || sha256(b.body) !== d) return this.fail(`pull ${img.repo}@${d} → ${b.status}`);
    }
    this.pulls++;
    this.pullMs.push(Date.now() - t0);
  }

  private async push(clientId: number): Promise<void> {
    const repo = `soak/push-${clientId % 8}`;
    const t0 = Date.now();
    const config = Buffer.from(JSON.stringify({ os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(this.rng.int(1, 128) * 1024);
    if (this.rng.chance(0.3)) {
      await this.client.pushBlobChunked(repo, layer, 32 * 1024);
      this.requests += 2 + Math.ceil(layer.length / (32 * 1024));
    } else {
      await this.client.pushBlobMonolithic(repo, layer);
      this.requests++;
    }
    await this.client.pushBlobMonolithic(repo, config);
    await this.client.putManifest(repo, `c${clientId}`, imageManifest(config, [layer]));
    this.requests += 2;
    this.bytesPushed += layer.length + config.length;
    this.pushes++;
    this.pushMs.push(Date.now() - t0);
  }

  private async sample(): Promise<void> {
    try {
      const processes: SoakSample['processes'] = {};
      for (const w of this.opts.watch) {
        processes[w.name] = {
          rssMiB: Math.round(((await rssKiB(w.pid)) / 1024) * 10) / 10,
          fds: (await readdir(`/proc/${w.pid}/fd`)).length,
        };
      }
      const main = processes[this.opts.watch[0]?.name ?? ''] ?? { rssMiB: NaN, fds: NaN };
      this.samples.push({
        atS: (Date.now() - this.started) / 1000,
        rssMiB: main.rssMiB,
        fds: main.fds,
        requests: this.requests,
        load: this.load,
        processes,
      });
    } catch (err) {
      this.fail(`sampling the server process: ${(err as Error).message}`);
    }
  }

  /** GC under load can take minutes: started as a job (`wait: false`) and polled; the next starts after it ends. */
  private async gcOnce(): Promise<void> {
    const t0 = Date.now();
    const startRes = await this.gcClient.request('POST', '/admin/v1/gc', {
      body: JSON.stringify({ deleteUntagged: true, graceSeconds: 30, wait: false }),
      headers: { 'Content-Type': 'application/json' },
    });
    const job = (await startRes.json()) as { id: number };
    if (startRes.status !== 202) throw new Error(`gc start → ${startRes.status} ${JSON.stringify(job)}`);
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const st = await this.gcClient.json<{
        id: number;
        state: string;
        error?: string;
        report?: { freedBytes: number };
      }>('GET', '/admin/v1/gc');
      if (st.id !== job.id) throw new Error(`gc job ${job.id} replaced by ${st.id}`);
      if (st.state === 'failed') throw new Error(`gc failed: ${st.error}`);
      if (st.state === 'done') {
        this.gcs++;
        this.gcMs.push(Date.now() - t0);
        this.gcFreed += st.report?.freedBytes ?? 0;
        return;
      }
    }
  }

  private report(loadMs: number): SoakReport {
    const { samples, opts } = this;
    const underLoad = samples.filter((s) => s.load);
    const last = samples[samples.length - 1];
    const { criteria } = opts;
    return {
      durationMs: Date.now() - this.started,
      loadMs,
      clients: opts.clients,
      pulls: this.pulls,
      pushes: this.pushes,
      requests: this.requests,
      bytesPulled: this.bytesPulled,
      bytesPushed: this.bytesPushed,
      gcs: this.gcs,
      gcMs: this.gcMs,
      gcFreedMiB: Math.round(this.gcFreed / 2 ** 20),
      errors: this.errors,
      errorCount: this.errorCount,
      latencyMs: {
        pullP50: quantile(this.pullMs, 0.5),
        pullP99: quantile(this.pullMs, 0.99),
        pushP50: quantile(this.pushMs, 0.5),
        pushP99: quantile(this.pushMs, 0.99),
      },
      samples,
      rss: {
        startMiB: samples[0]?.rssMiB ?? NaN,
        lastMiB: last?.rssMiB ?? NaN,
        maxMiB: Math.max(...samples.map((s) => s.rssMiB)),
      },
      fds: { afterLoad: last && !last.load ? last.fds : NaN, maxUnderLoad: Math.max(...underLoad.map((s) => s.fds)) },
      criteria,
      rssVerdict: criteria.rss
        ? judgeRss(
            underLoad.map((s) => ({ atS: s.atS, value: s.rssMiB })),
            criteria.rss,
          )
        : undefined,
      fdVerdict: judgeFds(
        underLoad.map((s) => ({ atS: s.atS, value: s.fds })),
        criteria.fds,
      ),
      watched: opts.watch.map((w) => w.name),
    };
  }
}

export function runSoak(opts: SoakOptions): Promise<SoakReport> {
  return new SoakRun(opts).run();
}

/** The report as markdown: totals, latencies and a downsampled RSS / fd curve. */
export function soakMarkdown(r: SoakReport, how: string): string {
  const step = Math.max(1, Math.ceil(r.samples.length / 16));
  const rows = r.samples.filter((_, i) => i % step === 0 || i === r.samples.length - 1);
  const others = r.watched.slice(1);
  const otherLines = others.map((name) => {
    const rss = r.samples.map((s) => s.processes[name]?.rssMiB ?? NaN).filter(Number.isFinite);
    const fds = r.samples.map((s) => s.processes[name]?.fds ?? NaN).filter(Number.isFinite);
    return `- ${name}: RSS ${rss[0] ?? '?'} MiB at the start, ${rss[rss.length - 1] ?? '?'} MiB at the end, max ${Math.max(...rss)} MiB; open descriptors at the end ${fds[fds.length - 1] ?? '?'}, max ${Math.max(...fds)}.`;
  });
  return [
    `- Run: ${how}; ${r.clients} concurrent clients for ${(r.loadMs / 60_000).toFixed(1)} minutes of load (${(r.durationMs / 60_000).toFixed(1)} minutes wall time, with the wait for the last GC).`,
    `- Work: ${r.pulls} image pulls and ${r.pushes} image pushes, ${r.requests} HTTP requests (${(r.requests / (r.loadMs / 1000)).toFixed(0)}/s), ${(r.bytesPulled / 2 ** 20).toFixed(0)} MiB pulled, ${(r.bytesPushed / 2 ** 20).toFixed(0)} MiB pushed; ${r.gcs} GCs (deleteUntagged, under load; durations ${r.gcMs.map((m) => `${(m / 1000).toFixed(0)} s`).join(', ') || 'none finished'}) freed ${r.gcFreedMiB} MiB.`,
    `- Errors: ${r.errorCount}.`,
    `- Latency per image: pull p50 ${r.latencyMs.pullP50} ms, p99 ${r.latencyMs.pullP99} ms; push p50 ${r.latencyMs.pushP50} ms, p99 ${r.latencyMs.pushP99} ms.`,
    rssLine(r),
    fdLine(r),
    ...otherLines,
    '',
    `| t (s) | ${r.watched[0] ?? 'registry'} RSS (MiB) | fds | ${others.map((n) => `${n} RSS (MiB) | ${n} fds | `).join('')}requests so far |`,
    `|---:|---:|---:|${others.map(() => '---:|---:|').join('')}---:|`,
    ...rows.map(
      (s) =>
        `| ${Math.round(s.atS)}${s.load ? '' : ' (after load)'} | ${s.rssMiB} | ${s.fds} | ${others.map((n) => `${s.processes[n]?.rssMiB ?? ''} | ${s.processes[n]?.fds ?? ''} | `).join('')}${s.requests} |`,
    ),
  ].join('\n');
}

function rssLine(r: SoakReport): string {
  const head = `- RSS at the start ${r.rss.startMiB} MiB, at the end ${r.rss.lastMiB} MiB, max ${r.rss.maxMiB} MiB.`;
  const v = r.rssVerdict;
  const c = r.criteria.rss;
  if (!v || !c) return `${head} Not judged (run too short for a trend).`;
  return `${head} After the ${c.warmupS / 60}-minute warm-up: least-squares slope ${v.slopeMiBPerMin.toFixed(2)} MiB/min (bound ${c.maxSlopeMiBPerMin}); median of the middle third ${v.middleMedianMiB} MiB, of the last third ${v.lastMedianMiB} MiB (${(v.thirdGrowth * 100).toFixed(1)}%, bound ${c.maxThirdGrowth * 100}%): ${v.ok ? 'pass' : `FAIL (${v.failures.join('; ')})`}.`;
}

function fdLine(r: SoakReport): string {
  const v = r.fdVerdict;
  const c = r.criteria.fds;
  return `- Open descriptors under load: warm-up (first ${c.warmupS} s) maximum ${v.warmMax}, median of the last third ${v.lastThirdMedian} (bound: warm-up maximum + ${c.margin}), max ${r.fds.maxUnderLoad}: ${v.ok ? 'pass' : `FAIL (${v.failures.join('; ')})`}; ${r.fds.afterLoad} after the clients stopped.`;
}
