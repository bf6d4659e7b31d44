/**
 * Soak load against a running registry: `clients` concurrent loops mixing pulls (manifest by tag, then every
 * blob) and pushes (new blobs, monolithic or chunked, then the manifest over the client's own tag), a GC with
 * deleteUntagged now and then to keep the disk bounded (started as a job and polled, as `regctl gc` does), and
 * a sample of each watched process every few seconds: VmRSS from /proc/PID/status and open descriptors from
 * /proc/PID/fd. The first watched process is the registry; the trend figures are its own.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
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
  /** Time excluded from the RSS and fd trend at the start (warm-up). */
  warmupMs?: number;
}

export interface SoakSample {
  atS: number;
  /** The registry's. */
  rssMiB: number;
  fds: number;
  requests: number;
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
  /** `middleMedianMiB` / `lastMedianMiB`: medians of the middle and last thirds of the samples after warm-up. */
  rss: { warmMiB: number; lastMiB: number; maxMiB: number; growthPct: number; slopeMiBPerHour: number; middleMedianMiB: number; lastMedianMiB: number };
  fds: { warm: number; last: number; max: number };
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

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

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
  const sample = async () => {
    try {
      const processes: SoakSample['processes'] = {};
      for (const w of opts.watch) {
        processes[w.name] = { rssMiB: Math.round(((await rssKiB(w.pid)) / 1024) * 10) / 10, fds: (await readdir(`/proc/${w.pid}/fd`)).length };
      }
      const main = processes[opts.watch[0]?.name ?? ''] ?? { rssMiB: NaN, fds: NaN };
      samples.push({ atS: Math.round((Date.now() - started) / 1000), rssMiB: main.rssMiB, fds: main.fds, requests, processes });
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
    clearInterval(sampler);
    clearInterval(gcTimer);
  }
  await gcRunning;
  await new Promise((r) => setTimeout(r, 2000));
  await sample();

  const warmupS = (opts.warmupMs ?? Math.min(60_000, opts.durationMs / 4)) / 1000;
  const warm = samples.filter((s) => s.atS >= warmupS);
  const first = warm[0] ?? samples[0];
  const last = samples[samples.length - 1];
  const rssSlope = slope(warm.map((s) => s.atS / 3600), warm.map((s) => s.rssMiB));
  const third = Math.max(1, Math.floor(warm.length / 3));
  const middle = warm.slice(third, 2 * third).map((s) => s.rssMiB);
  const lastThird = warm.slice(2 * third).map((s) => s.rssMiB);
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
    rss: {
      warmMiB: first?.rssMiB ?? 0,
      lastMiB: last?.rssMiB ?? 0,
      maxMiB: Math.max(...samples.map((s) => s.rssMiB)),
      growthPct: first && last ? Math.round(((last.rssMiB - first.rssMiB) / first.rssMiB) * 1000) / 10 : 0,
      slopeMiBPerHour: Math.round(rssSlope * 10) / 10,
      middleMedianMiB: quantile(middle, 0.5),
      lastMedianMiB: quantile(lastThird, 0.5),
    },
    fds: { warm: first?.fds ?? 0, last: last?.fds ?? 0, max: Math.max(...samples.map((s) => s.fds)) },
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
    `- RSS after warm-up ${r.rss.warmMiB} MiB, at the end ${r.rss.lastMiB} MiB (${r.rss.growthPct >= 0 ? '+' : ''}${r.rss.growthPct}%), max ${r.rss.maxMiB} MiB, least-squares slope ${r.rss.slopeMiBPerHour} MiB/hour; median of the middle third ${r.rss.middleMedianMiB} MiB, of the last third ${r.rss.lastMedianMiB} MiB.`,
    `- Open descriptors after warm-up ${r.fds.warm}, at the end ${r.fds.last}, max ${r.fds.max}.`,
    ...otherLines,
    '',
    `| t (s) | ${r.watched[0] ?? 'registry'} RSS (MiB) | fds | ${others.map((n) => `${n} RSS (MiB) | ${n} fds | `).join('')}requests so far |`,
    `|---:|---:|---:|${others.map(() => '---:|---:|').join('')}---:|`,
    ...rows.map((s) => `| ${s.atS} | ${s.rssMiB} | ${s.fds} | ${others.map((n) => `${s.processes[n]?.rssMiB ?? ''} | ${s.processes[n]?.fds ?? ''} | `).join('')}${s.requests} |`),
  ].join('\n');
}
