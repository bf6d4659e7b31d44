/**
 * Online mark & sweep garbage collection.
 *
 * GC marks from every manifest revision of every repository (or, with `deleteUntagged`, from tags only, then
 * index children and referrers of what is kept), and sweeps only blobs that are unmarked, older than the grace
 * window and not used since the window began, so that a push in flight is never harmed.
 */
import type { EventInput } from '../events/outbox.js';
import pMap from 'p-map';
import type { GcPhase, GcProgress, GcReport } from '../../common/admin-api.js';
import { GC_DEFAULTS } from '../../common/gc-defaults.js';
import type { Digest } from '../reference.js';
import { GC_CONCURRENCY, listBlobs, repoLinks } from './inventory.js';
import { childDirs } from './links.js';
import type { StoredManifest } from './manifest-cache.js';
import { pathFor } from './paths.js';
import type { RegistryStore } from './store.js';

export interface GcOptions {
  dryRun?: boolean;
  deleteUntagged?: boolean;
  graceSeconds?: number;
  uploadPurgeAgeMs?: number;
  /** Called as work is done: the phase, and how many of its items are done out of how many. */
  onProgress?: (p: GcProgress) => void;
  /** Aborted: the run stops at its next step, with the signal's reason (its lease was lost). */
  signal?: AbortSignal;
  /**
   * When the run counts as started (ms; default now): the time its job reports, which may come before the run
   * (its lease taken first). The grace window is measured back from it, so no blob whose upload began within the
   * window before the reported start is swept.
   */
  startedAt?: number;
}

/** One run's settings and what its phases hand each other. */
interface Run {
  store: RegistryStore;
  dryRun: boolean;
  deleteUntagged: boolean;
  startedAt: number;
  graceMs: number;
  progress: (phase: GcPhase, done: number, total: number) => void;
  /** Digests reachable from a kept manifest: never swept. */
  marked: Set<string>;
  /** Checked before every removal and at every progress step (see GcOptions.signal). */
  signal: AbortSignal | undefined;
}

export async function runGc(store: RegistryStore, opts: GcOptions = {}): Promise<GcReport> {
  const run: Run = {
    store,
    dryRun: opts.dryRun ?? false,
    deleteUntagged: opts.deleteUntagged ?? GC_DEFAULTS.deleteUntagged,
    startedAt: Math.min(opts.startedAt ?? Date.now(), Date.now()),
    graceMs: (opts.graceSeconds ?? GC_DEFAULTS.graceSeconds) * 1000,
    progress: (phase, done, total) => {
      opts.signal?.throwIfAborted();
      opts.onProgress?.({ phase, done, total });
    },
    marked: new Set(),
    signal: opts.signal,
  };
  const repoNames = await store.allRepositoryDirs();

  // Mark, one repository at a time, and collect what to remove.
  const toRemove: { name: string; digest: Digest }[] = [];
  const revisionsLeftByRepo = new Map<string, number>();
  for (const [i, name] of repoNames.entries()) {
    run.progress('mark', i, repoNames.length);
    const { remove, left } = await markRepository(run, name);
    toRemove.push(...remove.map((digest) => ({ name, digest })));
    revisionsLeftByRepo.set(name, left);
  }
  run.progress('mark', repoNames.length, repoNames.length);
  const manifestsRemoved: GcReport['manifestsRemoved'] = toRemove.map(({ name, digest }) => ({
    repository: name,
    digest: digest.value,
  }));

  // Events (events/outbox.ts): manifests are recorded pending before they go; blobs, known only as they are
  // swept, right after the sweep (a kill -9 within a sweep loses the blob events of that sweep).
  const events = store.events?.active ? store.events : undefined;
  const sweep = () => sweepManifests(run, toRemove);
  if (!run.dryRun) await (events ? events.withEvents(manifestsRemoved.map(gcEvent), sweep) : sweep());
  const { deleted, kept, deletedSet } = await sweepBlobs(run);
  if (!run.dryRun && events)
    await events.record(deleted.map((d) => gcEvent({ repository: '', digest: d.digest, size: d.size })));
  const repositoriesRemoved = await unlinkSwept(run, repoNames, deletedSet, revisionsLeftByRepo);

  run.progress('uploads', 0, 1);
  const uploadsPurged = run.dryRun
    ? 0
    : await store.uploads.purge(opts.uploadPurgeAgeMs ?? GC_DEFAULTS.uploadPurgeAgeMs);
  if (!run.dryRun) {
    store.clearCaches();
    await store.index.pruneUses(run.startedAt - run.graceMs);
  }
  run.progress('done', 1, 1);
  const byDigest = (a: { digest: string }, b: { digest: string }) =>
    a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
  return {
    deleted: deleted.sort(byDigest),
    kept: kept.sort(byDigest),
    freedBytes: deleted.reduce((a, d) => a + d.size, 0),
    repositoriesRemoved,
    manifestsRemoved,
    uploadsPurged,
    dryRun: run.dryRun,
  };
}

/**
 * Marks what one repository keeps (its manifests read GC_CONCURRENCY at a time): the revisions kept and every
 * blob they name go into `run.marked`. Returns the revisions to remove and how many stay.
 */
async function markRepository(run: Run, name: string): Promise<{ remove: Digest[]; left: number }> {
  const { store } = run;
  const links = await repoLinks(store.driver, name);
  const state = await store.index.repository(name);
  const infos = new Map<string, StoredManifest | undefined>();
  await pMap(links.revisions, async (d) => void infos.set(d.value, await store.manifests.read(d)), {
    concurrency: GC_CONCURRENCY,
  });
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
  if (run.deleteUntagged) {
    for (const d of state?.tags.values() ?? []) add(d);
    for (const d of links.revisions)
      if (await store.index.usedSince(d.value, run.startedAt - run.graceMs)) add(d.value);
  } else for (const d of links.revisions) add(d.value);
  while (queue.length > 0) {
    const digest = queue.pop() as string;
    for (const c of infos.get(digest)?.info.children ?? []) add(c.digest);
    for (const r of referrersOf.get(digest) ?? []) add(r);
  }
  const remove: Digest[] = [];
  let left = 0;
  for (const d of links.revisions) {
    if (keep.has(d.value)) {
      left++;
      run.marked.add(d.value);
      for (const b of infos.get(d.value)?.info.blobs ?? []) run.marked.add(b.digest);
    } else remove.push(d);
  }
  return { remove, left };
}

async function sweepManifests(run: Run, toRemove: { name: string; digest: Digest }[]): Promise<void> {
  let done = 0;
  await pMap(
    toRemove,
    async ({ name, digest }) => {
      run.signal?.throwIfAborted();
      try {
        await run.store.manifests.delete(name, digest);
      } catch {
        await run.store.driver.delete(pathFor({ kind: 'revisionDir', name, digest }));
      }
      run.progress('sweep-manifests', ++done, toRemove.length);
    },
    { concurrency: GC_CONCURRENCY },
  );
}

/** Blob removals at once (each holds a metadata connection, see sweepBlobs). */
const SWEEP_CONCURRENCY = 4;

/**
 * Removes one unmarked blob older than the grace window unless it was used within it; true when it is removed
 * (in a dry run: would be). The use is checked again and the blob removed while the store holds its use, so a
 * link made meanwhile on another replica (which records its use first) either waits for the removal and then
 * finds the blob gone, or is seen here and keeps the blob.
 */
async function sweepUnused(run: Run, digest: Digest): Promise<boolean> {
  const since = run.startedAt - run.graceMs;
  if (run.dryRun) return !(await run.store.index.usedSince(digest.value, since));
  return run.store.index.sweepUnused(digest.value, since, () =>
    run.store.driver.delete(pathFor({ kind: 'blobDir', digest })),
  );
}

async function sweepBlobs(
  run: Run,
): Promise<{ deleted: GcReport['deleted']; kept: GcReport['kept']; deletedSet: Set<string> }> {
  const deleted: GcReport['deleted'] = [];
  const kept: GcReport['kept'] = [];
  const deletedSet = new Set<string>();
  const blobs = await listBlobs(run.store.driver);
  let swept = 0;
  const candidates: typeof blobs = [];
  for (const b of blobs) {
    const entry = { digest: b.digest.value, size: b.size };
    if (run.marked.has(b.digest.value)) kept.push({ ...entry, reason: 'referenced' });
    else if (run.startedAt - b.modifiedAt < run.graceMs) kept.push({ ...entry, reason: 'within grace window' });
    else candidates.push(b);
  }
  run.progress('sweep-blobs', blobs.length - candidates.length, blobs.length);
  // Each removal holds a metadata connection (the use's row lock) while storage deletes: fewer at once than the
  // PostgreSQL pool's connections, so that requests are still served meanwhile.
  await pMap(
    candidates,
    async (b) => {
      const entry = { digest: b.digest.value, size: b.size };
      run.signal?.throwIfAborted();
      if (!(await sweepUnused(run, b.digest))) kept.push({ ...entry, reason: 'within grace window' });
      else {
        deleted.push({ ...entry, reason: 'unreferenced' });
        deletedSet.add(b.digest.value);
      }
      run.progress('sweep-blobs', blobs.length - candidates.length + ++swept, blobs.length);
    },
    { concurrency: SWEEP_CONCURRENCY },
  );
  return { deleted, kept, deletedSet };
}

/** Removes layer links to swept blobs, then repositories left empty; returns the repositories removed. */
async function unlinkSwept(
  run: Run,
  repoNames: string[],
  deletedSet: Set<string>,
  revisionsLeftByRepo: Map<string, number>,
): Promise<string[]> {
  const { store, dryRun } = run;
  const driver = store.driver;
  const repositoriesRemoved: string[] = [];
  for (const [i, name] of repoNames.entries()) {
    run.progress('unlink', i, repoNames.length);
    const links = await repoLinks(driver, name);
    let layersLeft = 0;
    await pMap(
      links.layers,
      async (d) => {
        // A link is written only after its blob exists, so a link to an absent blob is what a GC killed between
        // sweeping blobs and unlinking them left behind.
        // (after a real sweep, presence decides: the blob may have been pushed again since it was swept)
        if ((dryRun && deletedSet.has(d.value)) || (await store.blobs.size(d)) === undefined) {
          if (!dryRun) await driver.delete(pathFor({ kind: 'layerLink', name, digest: d }).slice(0, -'/link'.length));
        } else layersLeft++;
      },
      { concurrency: GC_CONCURRENCY },
    );
    const revisionsLeft = dryRun ? (revisionsLeftByRepo.get(name) ?? 0) : links.revisions.length;
    const uploads = await childDirs(driver, pathFor({ kind: 'uploadsRoot', name }));
    if (revisionsLeft > 0 || layersLeft > 0 || uploads.length > 0 || (await store.index.hasRepository(name))) continue;
    if (dryRun) repositoriesRemoved.push(name);
    else if (await removeEmptyRepository(store, name)) repositoriesRemoved.push(name);
  }
  return repositoriesRemoved;
}

/** Removes a repository's own directories if it is still empty under its lock; true when it did. */
async function removeEmptyRepository(store: RegistryStore, name: string): Promise<boolean> {
  const driver = store.driver;
  return store.repoLock.run(name, async () => {
    // Checked again under the lock: an upload or a link may have arrived meanwhile.
    const now = await repoLinks(driver, name);
    const uploadsNow = await childDirs(driver, pathFor({ kind: 'uploadsRoot', name }));
    if (
      now.layers.length > 0 ||
      now.revisions.length > 0 ||
      uploadsNow.length > 0 ||
      (await store.index.hasRepository(name))
    )
      return false;
    // Only this repository's own directories: a nested repository (name/child) lives under the same path.
    for (const kind of ['layersRoot', 'revisionsRoot', 'tagsRoot', 'referrersRoot', 'uploadsRoot'] as const)
      await driver.delete(pathFor({ kind, name }));
    return true;
  });
}

function gcEvent(target: { repository: string; digest: string; size?: number }): EventInput {
  return {
    action: 'gc',
    target: { ...target, ...(target.size !== undefined ? { length: target.size } : {}) },
    actor: { name: 'gc' },
  };
}
