/**
 * Soak load against a running registry: `clients` concurrent loops mixing pulls (manifest by tag, then every
 * blob) and pushes (new blobs, monolithic or chunked, then the manifest over the client's own tag), a GC with
 * deleteUntagged now and then to keep the disk bounded (started as a job and polled, as `regctl gc` does), and
 * a sample of each watched process every few seconds: VmRSS from /proc/PID/status and open descriptors from
 * /proc/PID/fd. The first watched process is the registry; the trend figures and the verdicts are its own.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { judgeFds, judgeRss, type FdCriterion, type FdVerdict, type RssCriterion, type RssVerdict } from '../../../helpers/series.js';
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

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const rng = new Rng(opts.seed);
  const client = new RegistryClient(opts.url, opts.authorization, { timeoutMs: 60_000 });
  const started = Date.now();
  const deadline = started + opts.durationMs;
  const errors: string[] = [];
  let errorCount = 0;
  let pulls = 0;
  let pushes = 0;
  let requests = 0;
  let bytesPulled = 0;
  let bytesPushed = 0;
  let gcs = 0;
  const pullMs: number[] = [];
  const pushMs: number[] = [];
  const gcMs: number[] = [];
  let gcFreed = 0;
  const fail = (what: string) => {
    errorCount++;
    if (errors.length < 50) errors.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
  };

  // A fixed set of images every client pulls from, pushed before the clock starts.
  const seeded: { repo: string; tag: string; blobs: string[] }[] = [];
  for (let i = 0; i < 16; i++) {
    const repo = `soak/base-${i % 4}`;
    const config = Buffer.from(JSON.stringify({ os: 'linux', n: i }));
    const layers = [randomBytes(rng.int(4, 256) * 1024), randomBytes(rng.int(1, 64) * 1024)];
    for (const b of [config, ...layers]) await client.pushBlobMonolithic(repo, b);
    await client.putManifest(repo, `v${i}`, imageManifest(config, layers));
    seeded.push({ repo, tag: `v${i}`, blobs: [sha256(config), ...layers.map((l) => sha256(l))] });
  }

  const pull = async () => {
    const img = rng.pick(seeded);
    const t0 = Date.now();
    const m = await client.getManifest(img.repo, img.tag);
    requests++;
    if (m.status !== 200) return fail(`pull ${img.repo}:${img.tag} manifest → ${m.status}`);
    for (const d of img.blobs) {
      const b = await client.getBlob(img.repo, d);
      requests++;
      bytesPulled += b.body.length;
      if (b.status !== 200 || sha256(b.body) !== d) return fail(`pull ${img.repo}@${d} → ${b.status}`);
    }
    pulls++;
    pullMs.push(Date.now() - t0);
  };

  const push = async (clientId: number) => {
    const repo = `soak/push-${clientId % 8}`;
    const t0 = Date.now();
    const config = Buffer.from(JSON.stringify({ os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(rng.int(1, 128) * 1024);
    if (rng.chance(0.3)) {
      await client.pushBlobChunked(repo, layer, 32 * 1024);
      requests += 2 + Math.ceil(layer.length / (32 * 1024));
    } else {
      await client.pushBlobMonolithic(repo, layer);
      requests++;
    }
    await client.pushBlobMonolithic(repo, config);
    await client.putManifest(repo, `c${clientId}`, imageManifest(config, [layer]));
    requests += 2;
    bytesPushed += layer.length + config.length;
    pushes++;
    pushMs.push(Date.now() - t0);
  };

  const loop = async (clientId: number) => {
    while (Date.now() < deadline) {
      try {
        if (rng.chance(0.7)) await pull();
        else await push(clientId);
      } catch (err) {
        fail(`client ${clientId}: ${(err as Error).message}`);
      }
    }
  };

  const samples: SoakSample[] = [];
  let loadMs = 0;
  let load = true;
  const sample = async () => {
    try {
      const processes: SoakSample['processes'] = {};
      for (const w of opts.watch) {
        processes[w.name] = { rssMiB: Math.round(((await rssKiB(w.pid)) / 1024) * 10) / 10, fds: (await readdir(`/proc/${w.pid}/fd`)).length };
      }
      const main = processes[opts.watch[0]?.name ?? ''] ?? { rssMiB: NaN, fds: NaN };
      samples.push({ atS: (Date.now() - started) / 1000, rssMiB: main.rssMiB, fds: main.fds, requests, load, processes });
    } catch (err) {
      fail(`sampling the server process: ${(err as Error).message}`);
    }
  };
  await sample();
  const sampler = setInterval(() => void sample(), opts.sampleEveryMs ?? 5000);
  // GC under load can take minutes: started as a job (`wait: false`) and polled, one at a time (the next one
  // starts after the previous ends).
  const gcClient = new RegistryClient(opts.url, opts.authorization, { timeoutMs: 60_000 });
  const runGc = async (): Promise<void> => {
    const t0 = Date.now();
    const startRes = await gcClient.request('POST', '/admin/v1/gc', {
      body: JSON.stringify({ deleteUntagged: true, graceSeconds: 30, wait: false }),
      headers: { 'Content-Type': 'application/json' },
    });
    const job = (await startRes.json()) as { id: number };
    if (startRes.status !== 202) throw new Error(`gc start → ${startRes.status} ${JSON.stringify(job)}`);
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const st = await gcClient.json<{ id: number; state: string; error?: string; report?: { freedBytes: number } }>('GET', '/admin/v1/gc');
      if (st.id !== job.id) throw new Error(`gc job ${job.id} replaced by ${st.id}`);
      if (st.state === 'failed') throw new Error(`gc failed: ${st.error}`);
      if (st.state === 'done') {
        gcs++;
        gcMs.push(Date.now() - t0);
        gcFreed += st.report?.freedBytes ?? 0;
        return;
      }
    }
  };
  let gcRunning: Promise<void> | undefined;
  const gcTimer = setInterval(() => {
    if (gcRunning) return;
    gcRunning = runGc()
      .catch((err: unknown) => fail(`gc: ${(err as Error).message}`))
      .finally(() => (gcRunning = undefined));
  }, opts.gcEveryMs ?? 60_000);
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, i) => loop(i)));
    loadMs = Date.now() - started;
  } finally {
    load = false;
    clearInterval(sampler);
    clearInterval(gcTimer);
  }
  await gcRunning;
  await new Promise((r) => setTimeout(r, 2000));
  await sample();

  const underLoad = samples.filter((s) => s.load);
  const last = samples[samples.length - 1];
  const { criteria } = opts;
  return {
    durationMs: Date.now() - started,
    loadMs,
    clients: opts.clients,
    pulls,
    pushes,
    requests,
    bytesPulled,
    bytesPushed,
    gcs,
    gcMs,
    gcFreedMiB: Math.round(gcFreed / 2 ** 20),
    errors,
    errorCount,
    latencyMs: { pullP50: quantile(pullMs, 0.5), pullP99: quantile(pullMs, 0.99), pushP50: quantile(pushMs, 0.5), pushP99: quantile(pushMs, 0.99) },
    samples,
    rss: { startMiB: samples[0]?.rssMiB ?? NaN, lastMiB: last?.rssMiB ?? NaN, maxMiB: Math.max(...samples.map((s) => s.rssMiB)) },
    fds: { afterLoad: last && !last.load ? last.fds : NaN, maxUnderLoad: Math.max(...underLoad.map((s) => s.fds)) },
    criteria,
    rssVerdict: criteria.rss ? judgeRss(underLoad.map((s) => ({ atS: s.atS, value: s.rssMiB })), criteria.rss) : undefined,
    fdVerdict: judgeFds(underLoad.map((s) => ({ atS: s.atS, value: s.fds })), criteria.fds),
    watched: opts.watch.map((w) => w.name),
  };
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
    ...rows.map((s) => `| ${Math.round(s.atS)}${s.load ? '' : ' (after load)'} | ${s.rssMiB} | ${s.fds} | ${others.map((n) => `${s.processes[n]?.rssMiB ?? ''} | ${s.processes[n]?.fds ?? ''} | `).join('')}${s.requests} |`),
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
