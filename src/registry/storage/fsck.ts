/**
 * fsck: checks every blob against its digest, every link and tag against what it points at, the referrers
 * index against the manifests' `subject`, and temporary files left by killed writes; repair removes what is
 * broken and adds missing referrer links. Also the start-up cleanup of a dead process's temporary files.
 */
import { createHash } from 'node:crypto';
import { tryParseDigest, type Digest } from '../reference.js';
import { TEMP_MARKER, TEMP_PROCESS_TAG, isNotFound, type StorageDriver } from './driver.js';
import { listBlobs, repoLinks } from './inventory.js';
import { childDirs, pathExists } from './links.js';
import { pathFor } from './paths.js';
import type { RegistryStore } from './store.js';

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

/** Visits every file under `dir` of the driver's storage (paths relative to the storage root), depth first. */
export async function walkFiles(
  driver: StorageDriver,
  dir: string,
  visit: (path: string) => Promise<void>,
): Promise<void> {
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
  for (const name of await store.allRepositoryDirs()) problems.push(...(await checkRepository(store, name, present)));
  const now = Date.now();
  // Drivers that never leave temporary files (S3: a write is one PUT) are not walked for them.
  if (driver.leavesTempFiles !== false)
    await walkFiles(driver, '', async (path) => {
      if (!path.includes(TEMP_MARKER)) return;
      // A young temp file may belong to a write in progress.
      const age =
        now -
        (await driver.stat(path).then(
          (s) => s.modifiedAt.getTime(),
          () => now,
        ));
      if (age > TEMP_FILE_MIN_AGE_MS) problems.push({ kind: 'temp-file', path, detail: 'leftover temporary file' });
    });
  const repaired = opts.repair ? await repair(store, problems) : [];
  return { problems, repaired, blobsChecked: blobs.length };
}

/** A repository's links, referrer links and tags against the blobs found `present` (and intact). */
async function checkRepository(
  store: RegistryStore,
  name: string,
  present: ReadonlySet<string>,
): Promise<FsckProblem[]> {
  const driver = store.driver;
  const problems: FsckProblem[] = [];
  const links = await repoLinks(driver, name);
  for (const [kind, list] of [
    ['layerLink', links.layers],
    ['revisionLink', links.revisions],
  ] as const) {
    for (const d of list) {
      const path = pathFor({ kind, name, digest: d });
      let text = '';
      try {
        text = (await driver.getContent(path)).toString('utf8').trim();
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (text !== d.value)
        problems.push({ kind: 'link-invalid', path, detail: `link holds "${text.slice(0, 80)}", expected ${d.value}` });
      else if (!present.has(d.value))
        problems.push({ kind: 'link-dangling', path, detail: `blob ${d.value} is missing or corrupt` });
    }
  }
  const revisions = new Set(links.revisions.map((d) => d.value));
  // Manifests written by another registry (registry:2, distribution v3) carry `subject` without our index.
  for (const d of links.revisions) {
    if (!present.has(d.value)) continue;
    const subject = (await store.manifests.read(d))?.info.subject;
    const subjectDigest = subject ? tryParseDigest(subject.digest) : undefined;
    if (!subjectDigest) continue;
    const path = pathFor({ kind: 'referrerLink', name, subject: subjectDigest, digest: d });
    if (!(await pathExists(driver, path)))
      problems.push({
        kind: 'referrer-missing',
        path,
        detail: `${d.value} refers to ${subjectDigest.value} but is not in the referrers index`,
      });
  }
  for (const tag of await childDirs(driver, pathFor({ kind: 'tagsRoot', name }))) {
    const path = pathFor({ kind: 'tagCurrentLink', name, tag });
    let target: Digest | undefined;
    try {
      target = tryParseDigest((await driver.getContent(path)).toString('utf8').trim());
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!target || !revisions.has(target.value) || !present.has(target.value)) {
      problems.push({
        kind: 'tag-dangling',
        path,
        detail: `tag ${name}:${tag} points at ${target?.value ?? 'nothing'}, which is not a stored manifest`,
      });
    }
  }
  return problems;
}

/** Removes what is broken and adds missing referrer links; rebuilds the index when anything changed. */
async function repair(store: RegistryStore, problems: FsckProblem[]): Promise<FsckProblem[]> {
  const repaired: FsckProblem[] = [];
  for (const p of problems) {
    if (p.kind === 'referrer-missing') {
      const digest = /([a-z0-9]+)\/([a-f0-9]+)\/link$/.exec(p.path);
      if (digest) await store.driver.putContent(p.path, `${digest[1]}:${digest[2]}`);
      repaired.push(p);
      continue;
    }
    const target =
      p.kind === 'temp-file'
        ? p.path
        : p.kind === 'tag-dangling'
          ? p.path.slice(0, -'/current/link'.length)
          : p.path.replace(/\/(data|link)$/, '');
    await store.driver.delete(target);
    repaired.push(p);
  }
  if (repaired.length > 0) {
    store.clearCaches();
    await store.buildIndex();
    // Run offline with an in-memory index, the repair changed storage behind the registry's metadata store:
    // without the marker, its next start imports storage again.
    if (!store.index.persistent) await store.driver.delete(pathFor({ kind: 'metadataMarker' }));
  }
  return repaired;
}
