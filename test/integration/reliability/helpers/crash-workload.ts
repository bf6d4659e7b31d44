/**
 * The crash harness's workload: concurrent workers pushing images (monolithic, chunked and mounted blobs,
 * manifests by tag), standalone blobs, tag writes, deletes and now and then a GC through the admin API, each
 * acknowledgement recorded in the model with the times the GC rules need.
 */
import { randomBytes } from 'node:crypto';
import type { GcJobStatus } from '../../../../src/common/admin-api.js';
import { HttpStatusError, imageManifest, sha256, type RegistryClient } from './client.js';
import type { CrashModel, DigestDelete, GcRecord, OpKind } from './crash-model.js';
import { checkGcReport } from './crash-rules.js';
import type { Rng } from './rng.js';

export const REPOS = ['crash/alpha', 'crash/beta', 'crash/gamma/deep', 'crash-delta'];

type Op = 'image' | 'blob' | 'tagWrite' | 'deleteImage' | 'deleteBlob' | 'gc';

const WEIGHTS: [Op, number][] = [
  ['image', 40],
  ['blob', 20],
  ['tagWrite', 12],
  ['deleteImage', 10],
  ['deleteBlob', 6],
  ['gc', 4],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((a, [, w]) => a + w, 0);

export class CrashWorkload {
  /** One GC at a time from the harness, so that no later job hides a report still to be read (GET shows the last job only). */
  private gcInFlight = false;
  interrupted = 0;

  constructor(
    private readonly m: CrashModel,
    private readonly rng: Rng,
    /** Upper bound on live images and live standalone blobs: at the bound a push becomes a delete. */
    private readonly maxLive = Infinity,
  ) {}

  /**
   * Runs `workers` loops until `stopped()`; a complete answer with an unexpected status is a violation, a broken
   * connection after `stopped()` is the kill (counted as interrupted), before it a violation.
   */
  async run(
    client: RegistryClient,
    workers: number,
    stopped: () => boolean,
    serverErrors: () => string[],
    /** Where GCs go when not `client`: a GC job's progress is known only to the replica that runs it. */
    gcClient: RegistryClient = client,
  ): Promise<void> {
    const worker = async (): Promise<void> => {
      while (!stopped()) {
        const op = this.pickOp();
        try {
          await this[op](op === 'gc' ? gcClient : client);
        } catch (err) {
          // A proxy's 502 after the kill: the replica behind it died with the request (Traefik in front of
          // replicas); without a proxy the same shows as a broken connection.
          if (err instanceof HttpStatusError && err.status === 502 && stopped()) this.interrupted++;
          else if (err instanceof HttpStatusError) {
            // The server's log comes through a pipe that may trail its answer: a moment for the error's cause.
            if (err.status >= 500) await new Promise((r) => setTimeout(r, 250));
            const server = err.status >= 500 ? serverErrors() : [];
            this.m.violation(`${op}: ${err.message}${server.length > 0 ? `; server: ${server.join(' | ')}` : ''}`);
          } else if (!stopped()) this.m.violation(`${op} failed while the server was up: ${(err as Error).message}`);
          else this.interrupted++;
        }
      }
    };
    await Promise.allSettled(Array.from({ length: workers }, () => worker()));
  }

  private pickOp(): Op {
    let r = this.rng.next() * TOTAL_WEIGHT;
    let op: Op = 'image';
    for (const [name, w] of WEIGHTS) {
      if ((r -= w) < 0) {
        op = name;
        break;
      }
    }
    if (op === 'image' && this.m.liveImages().length >= this.maxLive) return 'deleteImage';
    if (op === 'blob' && this.m.liveBlobs().length >= this.maxLive) return 'deleteBlob';
    return op;
  }

  private blobBody(): Buffer {
    const { rng } = this;
    const r = rng.next();
    const size =
      r < 0.05
        ? 16
        : r < 0.8
          ? rng.int(16, 16 * 1024)
          : r < 0.97
            ? rng.int(16 * 1024, 256 * 1024)
            : rng.int(256 * 1024, 2 * 1024 * 1024);
    return randomBytes(size);
  }

  private async pushOneBlob(c: RegistryClient, repo: string, body: Buffer): Promise<OpKind> {
    if (body.length > 0 && this.rng.chance(0.4)) {
      await c.pushBlobChunked(repo, body, this.rng.int(1, Math.max(1, Math.ceil(body.length / this.rng.int(1, 5)))));
      return 'blobChunked';
    }
    await c.pushBlobMonolithic(repo, body);
    return 'blobMonolithic';
  }

  private async image(c: RegistryClient): Promise<void> {
    const { m, rng } = this;
    const repo = rng.pick(REPOS);
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(16).toString('hex') }),
    );
    const layers: Buffer[] = [];
    const n = rng.int(1, 3);
    for (let i = 0; i < n; i++) {
      const candidates = [...m.layerData.entries()].filter(([, v]) => v.repo !== repo);
      if (candidates.length > 0 && rng.chance(0.3)) {
        const [digest, src] = rng.pick(candidates);
        if (await c.mountBlob(repo, src.repo, digest)) m.acknowledged.mount++;
        else await this.pushOneBlob(c, repo, src.data);
        layers.push(src.data);
        continue;
      }
      const body = this.blobBody();
      m.acknowledged[await this.pushOneBlob(c, repo, body)]++;
      layers.push(body);
    }
    await c.pushBlobMonolithic(repo, config);
    const manifest = imageManifest(config, layers);
    const tag = `img-${m.nextSeq()}`;
    const digest = await c.putManifest(repo, tag, manifest);
    const ackedAt = Date.now();
    if (digest !== sha256(manifest))
      m.violation(`manifest ${repo}:${tag} acknowledged with digest ${digest}, expected ${sha256(manifest)}`);
    m.images.push({
      repo,
      tag,
      digest: sha256(manifest),
      manifest,
      blobs: [sha256(config), ...layers.map((l) => sha256(l))],
      ackedAt,
      checkedAt: -1,
    });
    for (const l of layers) if (l.length > 0 && m.layerData.size < 200) m.layerData.set(sha256(l), { repo, data: l });
    m.acknowledged.image++;
  }

  private async blob(c: RegistryClient): Promise<void> {
    const repo = this.rng.pick(REPOS);
    const body = this.blobBody();
    const startedSeq = this.m.nextSeq();
    const pushStartedAt = Date.now();
    const kind = await this.pushOneBlob(c, repo, body);
    this.m.blobs.push({ repo, digest: sha256(body), startedSeq, pushStartedAt, ackedAt: Date.now(), checkedAt: -1 });
    this.m.acknowledged[kind]++;
  }

  private async tagWrite(c: RegistryClient): Promise<void> {
    const live = this.m.liveImages();
    if (live.length === 0) return;
    const img = this.rng.pick(live);
    const state = this.m.latestState(img.repo);
    state.written.add(img.digest);
    img.retagIssued = true;
    const write = { startedAt: Date.now(), cycle: this.m.cycle };
    await c.putManifest(img.repo, 'latest', img.manifest);
    if (!state.lastAckedWrite || state.lastAckedWrite.startedAt < write.startedAt) state.lastAckedWrite = write;
    this.m.acknowledged.tagWrite++;
  }

  private async deleteImage(c: RegistryClient): Promise<void> {
    const { m } = this;
    const live = m.liveImages();
    if (live.length < 5) return;
    const img = this.rng.pick(live);
    img.deleteIssued = m.nextSeq();
    img.deleteIssuedAt = Date.now();
    m.layerData.forEach((_, k) => img.blobs.includes(k) && m.layerData.delete(k));
    img.deletedBy = this.rng.chance(0.5) ? 'tag' : 'digest';
    const digestDelete: DigestDelete = { digest: img.digest, cycle: m.cycle };
    if (img.deletedBy === 'digest') m.latestState(img.repo).digestDeletes.push(digestDelete);
    const ref = img.deletedBy === 'tag' ? img.tag : img.digest;
    const status = await c.deleteManifest(img.repo, ref);
    // Not an answer from the registry (see run): the delete may or may not have happened.
    if (status === 502) throw new HttpStatusError(`delete ${img.repo}@${ref}`, status, '');
    digestDelete.ackedAt = Date.now();
    if (status !== 202)
      m.violation(`delete ${img.repo}${img.deletedBy === 'tag' ? ':' : '@'}${ref} answered ${status}`);
    img.deleteAcked = true;
    m.acknowledged[img.deletedBy === 'tag' ? 'deleteByTag' : 'deleteByDigest']++;
  }

  private async deleteBlob(c: RegistryClient): Promise<void> {
    const live = this.m.liveBlobs();
    if (live.length === 0) return;
    const b = this.rng.pick(live);
    b.deleteIssued = this.m.nextSeq();
    const status = await c.deleteBlob(b.repo, b.digest);
    if (status === 502) throw new HttpStatusError(`delete blob ${b.repo}@${b.digest}`, status, '');
    // 404 only when a GC accounts for the blob (checked with the other blobs after the restart, once the GCs
    // running now have ended or been cut by the kill).
    if (status === 404) b.deleteAnswered404 = true;
    else if (status !== 202) this.m.violation(`delete blob ${b.repo}@${b.digest} answered ${status}`);
    b.deleteAcked = true;
    this.m.acknowledged.deleteBlob++;
  }

  /** Starts a GC job and polls it; the record stays `pending` if the kill cuts the exchange. */
  async gc(c: RegistryClient): Promise<void> {
    if (this.gcInFlight) return;
    this.gcInFlight = true;
    const { m } = this;
    const g: GcRecord = {
      seq: m.nextSeq(),
      cycle: m.cycle,
      issuedAt: Date.now(),
      deleteUntagged: this.rng.chance(0.5),
      outcome: 'pending',
    };
    m.gcs.push(g);
    try {
      const res = await c.request('POST', '/admin/v1/gc', {
        body: JSON.stringify({ graceSeconds: m.graceMs / 1000, deleteUntagged: g.deleteUntagged, wait: false }),
        headers: { 'Content-Type': 'application/json' },
      });
      const job = (await res.json()) as GcJobStatus;
      // 409: a GC already runs (the cluster's lease); 429: a backup holds the maintenance lock.
      if (res.status === 409 || res.status === 429) return void (g.outcome = 'refused');
      if (res.status !== 202 || job.id === undefined || job.startedAt === undefined) {
        g.outcome = 'failed';
        return m.violation(`gc answered ${res.status} ${JSON.stringify(job).slice(0, 200)}`);
      }
      g.id = job.id;
      g.startedAt = Date.parse(job.startedAt);
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        const st = await c.json<GcJobStatus>('GET', '/admin/v1/gc');
        if (st.state === 'running' && st.id === g.id) continue;
        if (st.id !== g.id || st.state !== 'done' || !st.report || !st.finishedAt) {
          g.outcome = 'failed';
          return m.violation(
            `gc #${g.id}: GET /admin/v1/gc shows job ${st.id} ${st.state}${st.error ? `: ${st.error}` : ''}`,
          );
        }
        g.finishedAt = Date.parse(st.finishedAt);
        g.report = st.report;
        g.outcome = 'done';
        m.acknowledged.gc++;
        for (const v of checkGcReport(m, g)) m.violation(v);
        return;
      }
    } finally {
      this.gcInFlight = false;
    }
  }
}
