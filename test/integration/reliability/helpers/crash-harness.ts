/**
 * Crash consistency harness: `regctl serve` (a child process) on one data directory, concurrent workers
 * pushing images (monolithic, chunked and mounted blobs, manifests by tag), standalone blobs, tag writes,
 * deletes and now and then a GC through the admin API; SIGKILL at a random moment, offline fsck of the data
 * directory, restart, then checks against a model of what the server acknowledged.
 *
 * The model only trusts acknowledgements: an operation whose response did not arrive before the kill may or
 * may not have happened, and the checks accept both outcomes for it and for what it could have affected.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { FsDriver } from '../../../../src/registry/storage/fs-driver.js';
import { runFsck, type FsckProblem } from '../../../../src/registry/storage/fsck.js';
import { RegistryStore } from '../../../../src/registry/storage/store.js';
import { HttpStatusError, RegistryClient, basicAuth, imageManifest, sha256 } from './client.js';
import { incompleteTags, snapshotFiles, tempFiles } from './data-dir.js';
import { Rng } from './rng.js';
import { startServe, type ServeProcess } from './serve-process.js';

export interface CrashOptions {
  dir: string;
  kills: number;
  seed: number;
  workers?: number;
  /** Each server life lasts a random time in this range before the SIGKILL. */
  lifeMs?: [number, number];
  /** Older model entries re-verified after each restart, on top of everything acknowledged since the last check. */
  sampleOld?: number;
  /**
   * Upper bound on live images and on live standalone blobs: at the bound, a push becomes a delete, so that a
   * long run keeps a bounded volume and each offline fsck costs about the same.
   */
  maxLive?: number;
  progress?: (line: string) => void;
}

export interface CrashReport {
  seed: number;
  kills: number;
  maxLive?: number;
  durationMs: number;
  acknowledged: Record<OpKind, number>;
  interrupted: number;
  startupMs: { min: number; median: number; p95: number; max: number };
  fsckAfterKill: Record<string, number>;
  tempFilesLeftAfterKill: number;
  /** Total milliseconds spent in each phase over the run. */
  phases: Record<'life' | 'fsck' | 'restart' | 'tempClean' | 'verify', number>;
  itemsVerified: number;
  finalImages: number;
  finalBlobs: number;
  violations: string[];
}

type OpKind = 'image' | 'blobMonolithic' | 'blobChunked' | 'mount' | 'tagWrite' | 'deleteByTag' | 'deleteByDigest' | 'deleteBlob' | 'gc';

interface Image {
  repo: string;
  tag: string;
  digest: string;
  manifest: Buffer;
  blobs: string[];
  /** Seq of the first delete issued against it; undefined while live. */
  deleteIssued?: number;
  deletedBy?: 'tag' | 'digest';
  deleteAcked?: boolean;
  /** A tag write re-puts the manifest, which may bring it back after a delete by digest. */
  retagIssued?: boolean;
  checkedAt: number;
}

interface Blob {
  repo: string;
  digest: string;
  startedSeq: number;
  deleteIssued?: number;
  deleteAcked?: boolean;
  checkedAt: number;
}

const REPOS = ['crash/alpha', 'crash/beta', 'crash/gamma/deep', 'crash-delta'];
const USER = 'crash-admin';
const PASSWORD = randomBytes(12).toString('hex');

function quantiles(values: number[]): { min: number; median: number; p95: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { min: s[0] ?? 0, median: at(0.5), p95: at(0.95), max: s[s.length - 1] ?? 0 };
}

export async function runCrashHarness(opts: CrashOptions): Promise<CrashReport> {
  const rng = new Rng(opts.seed);
  const log = opts.progress ?? (() => undefined);
  const data = join(opts.dir, 'data');
  const htpasswd = join(opts.dir, 'htpasswd');
  await mkdir(data, { recursive: true });
  await writeFile(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 5)}\n`, { mode: 0o600 });
  const auth = basicAuth(USER, PASSWORD);
  const serveArgs = ['--data', data, '--htpasswd', htpasswd, '--log-level', 'warn', '--upload-purge-age', '60s'];
  const [lifeMin, lifeMax] = opts.lifeMs ?? [150, 1500];
  const started = Date.now();

  let seq = 0;
  const images: Image[] = [];
  const blobs: Blob[] = [];
  const gcIssued: number[] = [];
  /** Per repo: every digest ever written to `latest`, and whether a delete-by-digest could have removed it. */
  const latest = new Map<string, { written: Set<string>; acked: boolean; mayBeAbsent: boolean }>();
  const layerData = new Map<string, { repo: string; data: Buffer }>();
  const acknowledged: Record<OpKind, number> = { image: 0, blobMonolithic: 0, blobChunked: 0, mount: 0, tagWrite: 0, deleteByTag: 0, deleteByDigest: 0, deleteBlob: 0, gc: 0 };
  let interrupted = 0;
  const violations: string[] = [];
  const startupMs: number[] = [];
  const fsckAfterKill: Record<string, number> = {};
  const phases = { life: 0, fsck: 0, restart: 0, tempClean: 0, verify: 0 };
  let tempFilesLeftAfterKill = 0;
  let itemsVerified = 0;
  let cycle = 0;

  const violation = (text: string) => {
    violations.push(`[seed ${opts.seed}, cycle ${cycle}] ${text}`);
    log(`VIOLATION ${text}`);
  };

  const blobBody = (): Buffer => {
    const r = rng.next();
    const size = r < 0.05 ? 16 : r < 0.8 ? rng.int(16, 16 * 1024) : r < 0.97 ? rng.int(16 * 1024, 256 * 1024) : rng.int(256 * 1024, 2 * 1024 * 1024);
    return randomBytes(size);
  };

  const pushOneBlob = async (c: RegistryClient, repo: string, body: Buffer): Promise<OpKind> => {
    if (body.length > 0 && rng.chance(0.4)) {
      await c.pushBlobChunked(repo, body, rng.int(1, Math.max(1, Math.ceil(body.length / rng.int(1, 5)))));
      return 'blobChunked';
    }
    await c.pushBlobMonolithic(repo, body);
    return 'blobMonolithic';
  };

  const liveImages = () => images.filter((i) => i.deleteIssued === undefined);

  const ops: Record<string, (c: RegistryClient) => Promise<void>> = {
    image: async (c) => {
      const repo = rng.pick(REPOS);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(16).toString('hex') }));
      const layers: Buffer[] = [];
      const n = rng.int(1, 3);
      for (let i = 0; i < n; i++) {
        const candidates = [...layerData.entries()].filter(([, v]) => v.repo !== repo);
        if (candidates.length > 0 && rng.chance(0.3)) {
          const [digest, src] = rng.pick(candidates);
          const mounted = await c.mountBlob(repo, src.repo, digest);
          if (mounted) acknowledged.mount++;
          else await pushOneBlob(c, repo, src.data);
          layers.push(src.data);
          continue;
        }
        const body = blobBody();
        acknowledged[await pushOneBlob(c, repo, body)]++;
        layers.push(body);
      }
      await c.pushBlobMonolithic(repo, config);
      const manifest = imageManifest(config, layers);
      const tag = `img-${++seq}`;
      const digest = await c.putManifest(repo, tag, manifest);
      if (digest !== sha256(manifest)) violation(`manifest ${repo}:${tag} acknowledged with digest ${digest}, expected ${sha256(manifest)}`);
      images.push({ repo, tag, digest: sha256(manifest), manifest, blobs: [sha256(config), ...layers.map((l) => sha256(l))], checkedAt: -1 });
      for (const l of layers) if (l.length > 0 && layerData.size < 200) layerData.set(sha256(l), { repo, data: l });
      acknowledged.image++;
    },
    blob: async (c) => {
      const repo = rng.pick(REPOS);
      const body = blobBody();
      const startedSeq = ++seq;
      const kind = await pushOneBlob(c, repo, body);
      blobs.push({ repo, digest: sha256(body), startedSeq, checkedAt: -1 });
      acknowledged[kind]++;
    },
    tagWrite: async (c) => {
      const live = liveImages();
      if (live.length === 0) return;
      const img = rng.pick(live);
      const state = latest.get(img.repo) ?? { written: new Set<string>(), acked: false, mayBeAbsent: false };
      latest.set(img.repo, state);
      state.written.add(img.digest);
      img.retagIssued = true;
      await c.putManifest(img.repo, 'latest', img.manifest);
      state.acked = true;
      acknowledged.tagWrite++;
    },
    deleteImage: async (c) => {
      const live = liveImages();
      if (live.length < 5) return;
      const img = rng.pick(live);
      img.deleteIssued = ++seq;
      layerData.forEach((v, k) => img.blobs.includes(k) && layerData.delete(k));
      if (rng.chance(0.5)) {
        img.deletedBy = 'tag';
        const status = await c.deleteManifest(img.repo, img.tag);
        if (status !== 202) violation(`delete ${img.repo}:${img.tag} answered ${status}`);
        img.deleteAcked = true;
        acknowledged.deleteByTag++;
      } else {
        img.deletedBy = 'digest';
        const l = latest.get(img.repo);
        if (l?.written.has(img.digest)) l.mayBeAbsent = true;
        const status = await c.deleteManifest(img.repo, img.digest);
        if (status !== 202) violation(`delete ${img.repo}@${img.digest} answered ${status}`);
        img.deleteAcked = true;
        acknowledged.deleteByDigest++;
      }
    },
    deleteBlob: async (c) => {
      const live = blobs.filter((b) => b.deleteIssued === undefined);
      if (live.length === 0) return;
      const b = rng.pick(live);
      b.deleteIssued = ++seq;
      const status = await c.deleteBlob(b.repo, b.digest);
      // 404 is possible when a GC already swept the unreferenced blob.
      if (status !== 202 && status !== 404) violation(`delete blob ${b.repo}@${b.digest} answered ${status}`);
      b.deleteAcked = true;
      acknowledged.deleteBlob++;
    },
    gc: async (c) => {
      gcIssued.push(++seq);
      const res = await c.request('POST', '/admin/v1/gc', {
        body: JSON.stringify({ graceSeconds: 10, deleteUntagged: rng.chance(0.5) }),
        headers: { 'Content-Type': 'application/json' },
      });
      await res.arrayBuffer();
      if (res.status === 200) acknowledged.gc++;
      else if (res.status !== 429) violation(`gc answered ${res.status}`);
    },
  };
  const weights: [string, number][] = [
    ['image', 40],
    ['blob', 20],
    ['tagWrite', 12],
    ['deleteImage', 10],
    ['deleteBlob', 6],
    ['gc', 4],
  ];
  const totalWeight = weights.reduce((a, [, w]) => a + w, 0);
  const pickOp = (): string => {
    let r = rng.next() * totalWeight;
    for (const [name, w] of weights) if ((r -= w) < 0) return name;
    return 'image';
  };

  const gcAfter = (s: number) => gcIssued.some((g) => g > s);

  /** Checks model entries against the running server; `all` re-checks everything. */
  const verify = async (c: RegistryClient, all: boolean): Promise<void> => {
    const pickOld = <T extends { checkedAt: number }>(list: T[]): T[] => {
      const fresh = list.filter((x) => x.checkedAt < 0);
      const old = list.filter((x) => x.checkedAt >= 0);
      if (all) return list;
      const sample: T[] = [];
      for (let i = 0; i < Math.min(opts.sampleOld ?? 20, old.length); i++) sample.push(rng.pick(old));
      return [...fresh, ...sample];
    };
    for (const img of pickOld(images)) {
      img.checkedAt = cycle;
      itemsVerified++;
      const byTag = await c.getManifest(img.repo, img.tag);
      const byDigest = await c.getManifest(img.repo, img.digest);
      if (img.deleteIssued === undefined) {
        if (byTag.status !== 200 || sha256(byTag.body) !== img.digest) violation(`image ${img.repo}:${img.tag} → ${byTag.status} ${byTag.digest ?? ''}, expected ${img.digest}`);
        if (byDigest.status !== 200 || sha256(byDigest.body) !== img.digest) violation(`image ${img.repo}@${img.digest} → ${byDigest.status}`);
        for (const d of img.blobs) {
          const b = await c.getBlob(img.repo, d);
          if (b.status !== 200 || sha256(b.body) !== d) violation(`blob ${d} of ${img.repo}:${img.tag} → ${b.status}, ${b.status === 200 ? `hashes to ${sha256(b.body)}` : ''}`);
        }
      } else if (img.deleteAcked) {
        if (byTag.status !== 404) violation(`tag ${img.repo}:${img.tag} deleted (acknowledged) but answers ${byTag.status}`);
        if (img.deletedBy === 'digest' && !img.retagIssued && byDigest.status !== 404) violation(`manifest ${img.repo}@${img.digest} deleted (acknowledged) but answers ${byDigest.status}`);
      } else {
        for (const r of [byTag, byDigest]) if (r.status === 200 && sha256(r.body) !== img.digest) violation(`image ${img.repo}:${img.tag} half-deleted and serving wrong content`);
      }
    }
    for (const b of pickOld(blobs)) {
      b.checkedAt = cycle;
      itemsVerified++;
      const got = await c.getBlob(b.repo, b.digest);
      if (got.status === 200 && sha256(got.body) !== b.digest) violation(`blob ${b.repo}@${b.digest} serves content hashing to ${sha256(got.body)}`);
      const mayBeGone = b.deleteIssued !== undefined || gcAfter(b.startedSeq);
      if (!mayBeGone && got.status !== 200) violation(`acknowledged blob ${b.repo}@${b.digest} → ${got.status}`);
      if (b.deleteAcked && got.status !== 404) violation(`blob ${b.repo}@${b.digest} deleted (acknowledged) but answers ${got.status}`);
    }
    for (const [repo, state] of latest) {
      const got = await c.getManifest(repo, 'latest');
      if (got.status === 200 && !state.written.has(sha256(got.body))) violation(`${repo}:latest points at ${sha256(got.body)}, never written there`);
      if (got.status !== 200 && state.acked && !state.mayBeAbsent) violation(`${repo}:latest acknowledged but answers ${got.status}`);
    }
    // Listings: only names we created, and every listed tag resolves to a stored manifest.
    const catalog = await c.json<{ repositories: string[] }>('GET', '/v2/_catalog?n=10000');
    for (const repo of catalog.repositories) {
      if (!REPOS.includes(repo)) violation(`catalog lists unknown repository "${repo}"`);
      const res = await c.request('GET', `/v2/${repo}/tags/list`);
      if (res.status === 404) {
        await res.arrayBuffer();
        continue;
      }
      const { tags } = (await res.json()) as { tags: string[] };
      for (const tag of tags) {
        if (!/^(img-\d+|latest)$/.test(tag)) violation(`${repo} lists unknown tag "${tag}"`);
        const m = await c.getManifest(repo, tag);
        if (m.status !== 200) violation(`tag ${repo}:${tag} is listed but its manifest answers ${m.status}`);
      }
    }
  };

  /** Offline fsck of the killed server's data directory with the registry's own logic. */
  const fsckOffline = async (): Promise<FsckProblem[]> => {
    const report = await runFsck(new RegistryStore(new FsDriver(data)));
    for (const p of report.problems) {
      fsckAfterKill[p.kind] = (fsckAfterKill[p.kind] ?? 0) + 1;
      if (p.kind === 'blob-corrupt') violation(`after kill: ${p.path}: ${p.detail}`);
      if (p.kind === 'tag-dangling' && !p.detail.includes('points at nothing')) violation(`after kill: ${p.detail}`);
      if (p.kind === 'link-dangling' && gcIssued.length === 0) violation(`after kill, no GC ever ran: ${p.path}: ${p.detail}`);
    }
    return report.problems;
  };

  const start = async (): Promise<ServeProcess> => {
    const t0 = Date.now();
    const srv = await startServe(serveArgs);
    startupMs.push(Date.now() - t0);
    const health = await fetch(`${srv.url}/healthz`);
    if (health.status !== 200) violation(`healthz after restart → ${health.status}`);
    await health.arrayBuffer();
    return srv;
  };

  /** Leftover temp files of previous lives must disappear once the server is up. */
  const waitTempClean = async (srv: ServeProcess, startedAt: number): Promise<void> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const left = (await tempFiles(data)).filter((t) => t.mtimeMs < startedAt - 50);
      if (left.length === 0) return;
      if (Date.now() > deadline) {
        violation(`temporary files left after restart: ${left.map((t) => t.path).slice(0, 5).join(', ')} (pid ${srv.pid})`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let srv = await start();
  for (cycle = 1; cycle <= opts.kills; cycle++) {
    const client = new RegistryClient(srv.url, auth, { timeoutMs: 20_000 });
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        let op = pickOp();
        const cap = opts.maxLive ?? Infinity;
        if (op === 'image' && liveImages().length >= cap) op = 'deleteImage';
        if (op === 'blob' && blobs.filter((b) => b.deleteIssued === undefined).length >= cap) op = 'deleteBlob';
        try {
          await (ops[op] as (c: RegistryClient) => Promise<void>)(client);
        } catch (err) {
          // A complete response with an unexpected status is a failure; a broken connection is the kill.
          if (err instanceof HttpStatusError) {
            const serverErrors = err.status >= 500 ? srv.output().split('\n').filter((l) => l.includes('"level":"error"')).slice(-3) : [];
            violation(`${op}: ${err.message}${serverErrors.length > 0 ? `; server: ${serverErrors.join(' | ')}` : ''}`);
          }
          else if (!stop) violation(`${op} failed while the server was up: ${(err as Error).message}`);
          else interrupted++;
        }
      }
    };
    const workers = Array.from({ length: opts.workers ?? 6 }, () => worker());
    const life = rng.int(lifeMin, lifeMax);
    phases.life += life;
    await new Promise((r) => setTimeout(r, life));
    stop = true;
    await srv.kill();
    await Promise.allSettled(workers);
    const tFsck = Date.now();
    await fsckOffline();
    tempFilesLeftAfterKill += (await tempFiles(data)).length;
    phases.fsck += Date.now() - tFsck;
    const restartAt = Date.now();
    try {
      srv = await start();
    } catch (err) {
      violation(`server did not restart: ${(err as Error).message}`);
      throw new Error(violations.join('\n'));
    }
    const tUp = Date.now();
    phases.restart += tUp - restartAt;
    // Tags a kill left half-written are removed before the server listens.
    const leftTags = await incompleteTags(data);
    if (leftTags.length > 0) violation(`tag directories without current/link after restart: ${leftTags.slice(0, 5).join(', ')}`);
    await waitTempClean(srv, restartAt);
    const tVerify = Date.now();
    phases.tempClean += tVerify - tUp;
    await verify(new RegistryClient(srv.url, auth), false);
    phases.verify += Date.now() - tVerify;
    if (cycle % 10 === 0 || cycle === opts.kills) {
      log(`cycle ${cycle}/${opts.kills}: ${images.length} images, ${blobs.length} blobs, ${interrupted} interrupted, ${violations.length} violations`);
    }
  }
  await verify(new RegistryClient(srv.url, auth), true);
  await srv.stop();

  // A final repair leaves a directory that checks clean, and a restart with a short purge age removes stale uploads.
  await runFsck(new RegistryStore(new FsDriver(data)), { repair: true });
  const after = await runFsck(new RegistryStore(new FsDriver(data)));
  for (const p of after.problems) violation(`after repair: ${p.kind} ${p.path}`);
  const last = await startServe(['--data', data, '--htpasswd', htpasswd, '--log-level', 'warn', '--upload-purge-age', '1s']);
  await new Promise((r) => setTimeout(r, 1500));
  await verify(new RegistryClient(last.url, auth), true);
  const uploadsLeft = [...(await snapshotFiles(data)).keys()].filter((p) => p.includes('/_uploads/'));
  if (uploadsLeft.length > 0) violation(`stale uploads left after a restart with a 1s purge age: ${uploadsLeft.slice(0, 5).join(', ')}`);
  await last.stop();

  return {
    seed: opts.seed,
    kills: opts.kills,
    maxLive: opts.maxLive,
    durationMs: Date.now() - started,
    acknowledged,
    interrupted,
    startupMs: quantiles(startupMs),
    fsckAfterKill,
    tempFilesLeftAfterKill,
    phases,
    itemsVerified,
    finalImages: images.filter((i) => i.deleteIssued === undefined).length,
    finalBlobs: blobs.filter((b) => b.deleteIssued === undefined).length,
    violations,
  };
}

/** The report as markdown for docs/reliability.md. */
export function crashMarkdown(r: CrashReport): string {
  const a = r.acknowledged;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return [
    `- Run: ${r.kills} SIGKILLs of \`regctl serve\`, seed ${r.seed}, ${(r.durationMs / 60_000).toFixed(1)} minutes, ${new Date().toISOString().slice(0, 16)}Z${r.maxLive ? `; at most ${r.maxLive} live images and ${r.maxLive} live standalone blobs (a push at the bound becomes a delete)` : ''}.`,
    `- Acknowledged before the kills: ${a.image} image pushes (${a.blobMonolithic} monolithic and ${a.blobChunked} chunked blob uploads, ${a.mount} cross-repository mounts), ${a.tagWrite} tag writes, ${a.deleteByTag} deletes by tag, ${a.deleteByDigest} by digest, ${a.deleteBlob} blob deletes, ${a.gc} GCs; ${r.interrupted} operations cut by a kill.`,
    `- Verified after restarts: ${r.itemsVerified} model entries (every new one after each restart plus a sample of older ones, all of them at the end); at the end ${r.finalImages} live images and ${r.finalBlobs} standalone blobs.`,
    `- Violations: ${r.violations.length}.`,
    `- Startup to listening: min ${r.startupMs.min} ms, median ${r.startupMs.median} ms, p95 ${r.startupMs.p95} ms, max ${r.startupMs.max} ms (every restart succeeded).`,
    `- Left by the kills, found by the offline fsck before each restart (cumulative, repaired or cleaned later): ${Object.entries(r.fsckAfterKill).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing'}; temporary files ${r.tempFilesLeftAfterKill}, all removed by the next start.`,
    `- Time spent: server lives ${s(r.phases.life)}, offline fsck ${s(r.phases.fsck)}, restarts ${s(r.phases.restart)}, temp cleanup wait ${s(r.phases.tempClean)}, verification ${s(r.phases.verify)}.`,
  ].join('\n');
}
