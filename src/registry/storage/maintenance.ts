/**
 * Online maintenance over the store: usage accounting, mark & sweep garbage collection and fsck.
 *
 * GC marks from every manifest revision of every repository (or, with `deleteUntagged`, from tags only, then
 * index children and referrers of what is kept), and sweeps only blobs that are unmarked, older than the grace
 * window and not used since the window began, so that a push in flight is never harmed.
 */
import { createHash } from 'node:crypto';
import pMap from 'p-map';
import type { GcPhase, GcProgress, GcReport, UsageReport } from '../../common/admin-api.js';
import { tryParseDigest, type Digest } from '../reference.js';
import { TEMP_MARKER, TEMP_PROCESS_TAG, isNotFound, type StorageDriver } from './driver.js';
import { pathFor } from './paths.js';
export type { GcPhase, GcProgress, GcReport, UsageReport };
import type { RegistryStore } from './store.js';

export interface BlobEntry {
  digest: Digest;
  size: number;
  modifiedAt: number;
}

async function dirs(driver: StorageDriver, path: string): Promise<string[]> {
  try {
    return (await driver.list(path)).filter((e) => e.isDir).map((e) => e.name);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * Storage calls GC (and the blob listing it shares with usage and fsck) keeps in flight at once. Enough to
 * hide the latency of each call (reads, unlinks and the directory fsyncs behind them) under load, few enough
 * that clients served meanwhile keep their share.
 */
const GC_CONCURRENCY = 16;

/** Every blob in storage (directories listed and blobs stat-ed a bounded number at a time). */
export async function listBlobs(driver: StorageDriver): Promise<BlobEntry[]> {
  const root = pathFor({ kind: 'blobsRoot' });
  const digests: Digest[] = [];
  for (const alg of await dirs(driver, root)) {
    const prefixes = await dirs(driver, `${root}/${alg}`);
    const lists = await pMap(prefixes, (prefix) => dirs(driver, `${root}/${alg}/${prefix}`), { concurrency: GC_CONCURRENCY });
    for (const hexes of lists) {
      for (const hex of hexes) {
        const digest = tryParseDigest(`${alg}:${hex}`);
        if (digest) digests.push(digest);
      }
    }
  }
  const entries = await pMap(
    digests,
    async (digest): Promise<BlobEntry | undefined> => {
      try {
        const s = await driver.stat(pathFor({ kind: 'blobData', digest }));
        return { digest, size: s.size, modifiedAt: s.modifiedAt.getTime() };
      } catch (err) {
        if (!isNotFound(err)) throw err;
        return undefined;
      }
    },
    { concurrency: GC_CONCURRENCY },
  );
  return entries.filter((e): e is BlobEntry => e !== undefined);
}

/** Digests linked under `<root>/<alg>/<hex>/link`. */
async function linkedDigests(driver: StorageDriver, root: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of await dirs(driver, root)) {
    for (const hex of await dirs(driver, `${root}/${alg}`)) {
      const d = tryParseDigest(`${alg}:${hex}`);
      if (d) out.push(d);
    }
  }
  return out;
}

export interface RepoLinks {
  name: string;
  layers: Digest[];
  revisions: Digest[];
}

export async function repoLinks(store: RegistryStore, name: string): Promise<RepoLinks> {
  const driver = store.driver;
  return {
    name,
    layers: await linkedDigests(driver, pathFor({ kind: 'layersRoot', name })),
    revisions: await linkedDigests(driver, pathFor({ kind: 'revisionsRoot', name })),
  };
}

export async function computeUsage(store: RegistryStore): Promise<UsageReport> {
  const blobs = await listBlobs(store.driver);
  const sizes = new Map(blobs.map((b) => [b.digest.value, b.size]));
  const owners = new Map<string, Set<string>>();
  const repos = await Promise.all((await store.allRepositoryDirs()).map((n) => repoLinks(store, n)));
  for (const r of repos) {
    for (const d of [...r.layers, ...r.revisions]) {
      const set = owners.get(d.value) ?? new Set<string>();
      set.add(r.name);
      owners.set(d.value, set);
    }
  }
  const repositories: UsageReport['repositories'] = [];
  for (const r of repos) {
    const state = store.repositoryState(r.name);
    let exclusiveBytes = 0;
    let sharedBytes = 0;
    const seen = new Set<string>();
    for (const d of [...r.layers, ...r.revisions]) {
      if (seen.has(d.value)) continue;
      seen.add(d.value);
      const size = sizes.get(d.value) ?? 0;
      if ((owners.get(d.value)?.size ?? 0) > 1) sharedBytes += size;
      else exclusiveBytes += size;
    }
    if (!state && exclusiveBytes + sharedBytes === 0) continue;
    repositories.push({
      name: r.name,
      tags: state?.tags.size ?? 0,
      manifests: state?.revisions.size ?? 0,
      exclusiveBytes,
      sharedBytes,
      lastPush: state ? await store.lastPush(r.name).then((t) => (t > 0 ? new Date(t).toISOString() : null)) : null,
    });
  }
  const reclaimableBytes = blobs.filter((b) => !owners.has(b.digest.value)).reduce((a, b) => a + b.size, 0);
  return { totalBytes: blobs.reduce((a, b) => a + b.size, 0), blobCount: blobs.length, repositories, reclaimableBytes };
}

export interface GcOptions {
  dryRun?: boolean;
  deleteUntagged?: boolean;
  graceSeconds?: number;
  uploadPurgeAgeMs?: number;
  /** Called as work is done: the phase, and how many of its items are done out of how many. */
  onProgress?: (p: GcProgress) => void;
}

export async function runGc(store: RegistryStore, opts: GcOptions = {}): Promise<GcReport> {
  const startedAt = Date.now();
  const graceMs = (opts.graceSeconds ?? 3600) * 1000;
  const dryRun = opts.dryRun ?? false;
  const driver = store.driver;
  const marked = new Set<string>();
  const progress = (phase: GcPhase, done: number, total: number) => opts.onProgress?.({ phase, done, total });
  const repoNames = await store.allRepositoryDirs();

  // Mark, one repository at a time (its manifests read GC_CONCURRENCY at a time), and collect what to remove.
  const toRemove: { name: string; digest: Digest }[] = [];
  const revisionsLeftByRepo = new Map<string, number>();
  for (const [i, name] of repoNames.entries()) {
    progress('mark', i, repoNames.length);
    const links = await repoLinks(store, name);
    const state = store.repositoryState(name);
    const infos = new Map<string, Awaited<ReturnType<RegistryStore['readManifest']>>>();
    await pMap(links.revisions, async (d) => void infos.set(d.value, await store.readManifest(d)), { concurrency: GC_CONCURRENCY });
    const referrersOf = new Map<string, string[]>();
    for (const [digest, m] of infos) {
      const subject = m?.info.subject?.digest;
      if (subject) referrersOf.set(subject, [...(referrersOf.get(subject) ?? []), digest]);
    }
    const keep = new Set<string>();
    const queue: string[] = [];
    const add = (digest: string) => {
      if (!keep.has(digest) && infos.has(digest)) {
        keep.add(digest);
        queue.push(digest);
      }
    };
    if (opts.deleteUntagged) {
      for (const d of state?.tags.values() ?? []) add(d);
      for (const d of links.revisions) if (store.usedSince(d.value, startedAt - graceMs)) add(d.value);
    } else for (const d of links.revisions) add(d.value);
    while (queue.length > 0) {
      const digest = queue.pop() as string;
      for (const c of infos.get(digest)?.info.children ?? []) add(c.digest);
      for (const r of referrersOf.get(digest) ?? []) add(r);
    }
    let left = 0;
    for (const d of links.revisions) {
      if (keep.has(d.value)) {
        left++;
        marked.add(d.value);
        for (const b of infos.get(d.value)?.info.blobs ?? []) marked.add(b.digest);
      } else {
        toRemove.push({ name, digest: d });
      }
    }
    revisionsLeftByRepo.set(name, left);
  }
  progress('mark', repoNames.length, repoNames.length);
  const manifestsRemoved: GcReport['manifestsRemoved'] = toRemove.map(({ name, digest }) => ({ repository: name, digest: digest.value }));

  if (!dryRun) {
    let done = 0;
    await pMap(
      toRemove,
      async ({ name, digest }) => {
        try {
          await store.deleteManifest(name, digest);
        } catch {
          await driver.delete(pathFor({ kind: 'revisionDir', name, digest }));
        }
        progress('sweep-manifests', ++done, toRemove.length);
      },
      { concurrency: GC_CONCURRENCY },
    );
  }

  const deleted: GcReport['deleted'] = [];
  const kept: GcReport['kept'] = [];
  const deletedSet = new Set<string>();
  const blobs = await listBlobs(driver);
  let swept = 0;
  await pMap(
    blobs,
    async (b) => {
      const entry = { digest: b.digest.value, size: b.size };
      if (marked.has(b.digest.value)) kept.push({ ...entry, reason: 'referenced' });
      else if (startedAt - b.modifiedAt < graceMs || store.usedSince(b.digest.value, startedAt - graceMs)) kept.push({ ...entry, reason: 'within grace window' });
      else {
        deleted.push({ ...entry, reason: 'unreferenced' });
        deletedSet.add(b.digest.value);
        if (!dryRun) await driver.delete(pathFor({ kind: 'blobDir', digest: b.digest }));
      }
      progress('sweep-blobs', ++swept, blobs.length);
    },
    { concurrency: GC_CONCURRENCY },
  );

  const repositoriesRemoved: string[] = [];
  for (const [i, name] of repoNames.entries()) {
    progress('unlink', i, repoNames.length);
    const links = await repoLinks(store, name);
    let layersLeft = 0;
    await pMap(
      links.layers,
      async (d) => {
        // A link is written only after its blob exists, so a link to an absent blob is what a GC killed between
        // sweeping blobs and unlinking them left behind.
        if (deletedSet.has(d.value) || (await store.blobSize(d)) === undefined) {
          if (!dryRun) await driver.delete(pathFor({ kind: 'layerLink', name, digest: d }).slice(0, -'/link'.length));
        } else layersLeft++;
      },
      { concurrency: GC_CONCURRENCY },
    );
    const revisionsLeft = dryRun ? (revisionsLeftByRepo.get(name) ?? 0) : links.revisions.length;
    const uploads = await dirs(driver, pathFor({ kind: 'uploadsRoot', name }));
    if (revisionsLeft === 0 && layersLeft === 0 && uploads.length === 0 && !store.hasRepository(name)) {
      if (dryRun) repositoriesRemoved.push(name);
      else {
        await store.repoLock.run(name, async () => {
          // Checked again under the lock: an upload or a link may have arrived meanwhile.
          const now = await repoLinks(store, name);
          const uploadsNow = await dirs(driver, pathFor({ kind: 'uploadsRoot', name }));
          if (now.layers.length > 0 || now.revisions.length > 0 || uploadsNow.length > 0 || store.hasRepository(name)) return;
          repositoriesRemoved.push(name);
          // Only this repository's own directories: a nested repository (name/child) lives under the same path.
          for (const kind of ['layersRoot', 'revisionsRoot', 'tagsRoot', 'referrersRoot', 'uploadsRoot'] as const) await driver.delete(pathFor({ kind, name }));
        });
      }
    }
  }

  progress('uploads', 0, 1);
  const uploadsPurged = dryRun ? 0 : await store.purgeUploads(opts.uploadPurgeAgeMs ?? 24 * 3600 * 1000);
  if (!dryRun) {
    store.clearCaches();
    store.pruneUses(startedAt - graceMs);
  }
  progress('done', 1, 1);
  const byDigest = (a: { digest: string }, b: { digest: string }) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  return {
    deleted: deleted.sort(byDigest),
    kept: kept.sort(byDigest),
    freedBytes: deleted.reduce((a, d) => a + d.size, 0),
    repositoriesRemoved,
    manifestsRemoved,
    uploadsPurged,
    dryRun,
  };
}

const TEMP_FILE_MIN_AGE_MS = 10 * 60 * 1000;

export interface FsckProblem {
  kind: 'blob-corrupt' | 'link-dangling' | 'link-invalid' | 'tag-dangling' | 'temp-file' | 'referrer-missing';
  path: string;
  detail: string;
}

export interface FsckReport {
  problems: FsckProblem[];
  repaired: FsckProblem[];
  blobsChecked: number;
}

async function walkFiles(driver: StorageDriver, dir: string, visit: (path: string) => Promise<void>): Promise<void> {
  let entries;
  try {
    entries = await driver.list(dir);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  for (const e of entries) {
    const path = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDir) await walkFiles(driver, path, visit);
    else await visit(path);
  }
}

/**
 * Deletes temporary files last modified before `before`: what a process killed mid-write left behind. Files
 * newer than that, and this process's own (tagged with TEMP_PROCESS_TAG), may belong to a write in flight and
 * are left alone. Returns how many were removed.
 */
export async function removeTempFiles(driver: StorageDriver, before: number): Promise<number> {
  let removed = 0;
  await walkFiles(driver, '', async (path) => {
    const base = path.slice(path.lastIndexOf('/') + 1);
    if (!base.includes(TEMP_MARKER) || base.includes(`${TEMP_MARKER}${TEMP_PROCESS_TAG}`)) return;
    try {
      if ((await driver.stat(path)).modifiedAt.getTime() >= before) return;
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    await driver.delete(path);
    removed++;
  });
  return removed;
}

/**
 * Checks every blob against its digest, every link and tag against what it points at, the referrers index
 * against the manifests' `subject`, and temp leftovers. Repair removes what is broken and adds missing
 * referrer links.
 */
export async function runFsck(store: RegistryStore, opts: { repair?: boolean } = {}): Promise<FsckReport> {
  const driver = store.driver;
  const problems: FsckProblem[] = [];
  const blobs = await listBlobs(driver);
  const present = new Set<string>();
  for (const b of blobs) {
    const path = pathFor({ kind: 'blobData', digest: b.digest });
    const hash = createHash(b.digest.algorithm);
    for await (const chunk of await driver.reader(path)) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual === b.digest.hex) present.add(b.digest.value);
    else problems.push({ kind: 'blob-corrupt', path, detail: `content hashes to ${b.digest.algorithm}:${actual}` });
  }
  for (const name of await store.allRepositoryDirs()) {
    const links = await repoLinks(store, name);
    for (const [kind, list] of [['layerLink', links.layers], ['revisionLink', links.revisions]] as const) {
      for (const d of list) {
        const path = pathFor({ kind, name, digest: d });
        let text = '';
        try {
          text = (await driver.getContent(path)).toString('utf8').trim();
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        if (text !== d.value) problems.push({ kind: 'link-invalid', path, detail: `link holds "${text.slice(0, 80)}", expected ${d.value}` });
        else if (!present.has(d.value)) problems.push({ kind: 'link-dangling', path, detail: `blob ${d.value} is missing or corrupt` });
      }
    }
    const revisions = new Set(links.revisions.map((d) => d.value));
    // Manifests written by another registry (registry:2, distribution v3) carry `subject` without our index.
    for (const d of links.revisions) {
      if (!present.has(d.value)) continue;
      const subject = (await store.readManifest(d))?.info.subject;
      const subjectDigest = subject ? tryParseDigest(subject.digest) : undefined;
      if (!subjectDigest) continue;
      const path = pathFor({ kind: 'referrerLink', name, subject: subjectDigest, digest: d });
      const exists = await driver.stat(path).then(() => true, (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)));
      if (!exists) problems.push({ kind: 'referrer-missing', path, detail: `${d.value} refers to ${subjectDigest.value} but is not in the referrers index` });
    }
    for (const tag of await dirs(driver, pathFor({ kind: 'tagsRoot', name }))) {
      const path = pathFor({ kind: 'tagCurrentLink', name, tag });
      let target: Digest | undefined;
      try {
        target = tryParseDigest((await driver.getContent(path)).toString('utf8').trim());
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!target || !revisions.has(target.value) || !present.has(target.value)) {
        problems.push({ kind: 'tag-dangling', path, detail: `tag ${name}:${tag} points at ${target?.value ?? 'nothing'}, which is not a stored manifest` });
      }
    }
  }
  const now = Date.now();
  await walkFiles(driver, '', async (path) => {
    if (!path.includes(TEMP_MARKER)) return;
    // A young temp file may belong to a write in progress.
    const age = now - (await driver.stat(path).then((s) => s.modifiedAt.getTime(), () => now));
    if (age > TEMP_FILE_MIN_AGE_MS) problems.push({ kind: 'temp-file', path, detail: 'leftover temporary file' });
  });

  const repaired: FsckProblem[] = [];
  if (opts.repair) {
    for (const p of problems) {
      if (p.kind === 'referrer-missing') {
        const digest = /([a-z0-9]+)\/([a-f0-9]+)\/link$/.exec(p.path);
        if (digest) await driver.putContent(p.path, `${digest[1]}:${digest[2]}`);
        repaired.push(p);
        continue;
      }
      const target = p.kind === 'temp-file' ? p.path : p.kind === 'tag-dangling' ? p.path.slice(0, -'/current/link'.length) : p.path.replace(/\/(data|link)$/, '');
      await driver.delete(target);
      repaired.push(p);
    }
    if (repaired.length > 0) {
      store.clearCaches();
      await store.buildIndex();
    }
  }
  return { problems, repaired, blobsChecked: blobs.length };
}
