/**
 * Walking `repositories/` in storage: to rebuild the repository index from what storage holds, and to list
 * every repository directory (for upload purges, GC, usage and fsck, which also see repositories holding only
 * blobs or uploads).
 */
import pMap from 'p-map';
import { isNotFound, type DirEntry, type StorageDriver } from './driver.js';
import { childDirs, linkedDigests, pathExists, readLink } from './links.js';
import { pathFor } from './paths.js';
import { manifestFacts } from '../metadata/facts.js';
import type { ManifestFacts, MetadataStore } from '../metadata/store.js';
import { parseDigest, type Digest } from '../reference.js';
import type { StoredManifest } from './manifest-cache.js';

/** Reads a revision's manifest, for its facts; undefined when absent or unparsable. */
export type ManifestReader = (digest: Digest) => Promise<StoredManifest | undefined>;

/** Storage calls in flight at once while walking every repository (index build, upload purge). */
export const WALK_CONCURRENCY = 64;

/**
 * Visits every directory under `repositories/` that may be a repository (names not starting with `_`), with
 * its entries. The walk goes one directory level at a time through a fixed pool of workers, so the storage
 * calls in flight, the files open and the memory held stay bounded however many repositories there are.
 */
export async function walkRepositories(
  driver: StorageDriver,
  visit: (name: string, entries: DirEntry[]) => Promise<void>,
): Promise<void> {
  let level: { dir: string; name: string }[] = [{ dir: pathFor({ kind: 'repositoriesRoot' }), name: '' }];
  while (level.length > 0) {
    const next: { dir: string; name: string }[] = [];
    await pMap(
      level,
      async ({ dir, name }) => {
        let entries: DirEntry[];
        try {
          entries = await driver.list(dir);
        } catch (err) {
          if (isNotFound(err)) return;
          throw err;
        }
        if (name) await visit(name, entries);
        for (const e of entries) {
          if (e.isDir && !e.name.startsWith('_'))
            next.push({ dir: `${dir}/${e.name}`, name: name ? `${name}/${e.name}` : e.name });
        }
      },
      { concurrency: WALK_CONCURRENCY },
    );
    level = next;
  }
}

/**
 * The one definition of a repository, as distribution's catalog has it: a directory under `repositories/` with a
 * `_manifests` directory. The index holds exactly these (rebuildIndex, and a manifest PUT), so the catalog, the UI's
 * list and the usage report name the same repositories; a directory with only layer links or uploads is not one.
 */
export function isRepositoryDir(entries: readonly DirEntry[]): boolean {
  return entries.some((e) => e.isDir && e.name === '_manifests');
}

/** Every directory on storage that holds repository data, including ones holding only blobs or uploads, sorted. */
export async function allRepositoryDirs(driver: StorageDriver): Promise<string[]> {
  const out: string[] = [];
  await walkRepositories(driver, async (name, entries) => {
    if (entries.some((e) => e.isDir && e.name.startsWith('_'))) out.push(name);
  });
  return out.sort();
}

/** `<repository>/_uploads/<id>/…` under `repositories/`: repository path components never start with `_`. */
const UPLOAD_FILE_RE = /^((?:[^_/][^/]*\/)*[^_/][^/]*)\/_uploads\/([^/]+)\//;

/**
 * The upload directories of every repository on storage: repository name → upload ids. A driver that lists a whole
 * tree in pages (`listFiles`, S3) is read in one listing of `repositories/`, a request per thousand files; the
 * others are walked directory by directory (a request per repository, and one per `_uploads`).
 */
export async function allUploadDirs(driver: StorageDriver): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (driver.listFiles) {
    const root = pathFor({ kind: 'repositoriesRoot' });
    const ids = new Map<string, Set<string>>();
    for await (const page of driver.listFiles(root)) {
      for (const path of page) {
        const m = UPLOAD_FILE_RE.exec(path.slice(root.length + 1));
        if (!m) continue;
        const [, name, id] = m as unknown as [string, string, string];
        let set = ids.get(name);
        if (!set) ids.set(name, (set = new Set()));
        set.add(id);
      }
    }
    for (const [name, set] of ids) found.set(name, [...set].sort());
    return found;
  }
  await pMap(
    await allRepositoryDirs(driver),
    async (name) => {
      const ids = await childDirs(driver, pathFor({ kind: 'uploadsRoot', name }));
      if (ids.length > 0) found.set(name, ids);
    },
    { concurrency: WALK_CONCURRENCY },
  );
  return found;
}

/**
 * Clears `index` and loads every repository's tags and manifest revisions from storage.
 *
 * `removeIncompleteTags` (only before the server listens, when no tag write can be in flight) deletes tag
 * directories that have no `current/link`: what a process killed during a tag's first write leaves. They are
 * invisible through the API either way. Returns how many were removed.
 */
export async function rebuildIndex(
  driver: StorageDriver,
  index: MetadataStore,
  opts: { removeIncompleteTags?: boolean; facts?: ManifestReader } = {},
): Promise<number> {
  await index.clear();
  let removed = 0;
  await walkRepositories(driver, async (name, entries) => {
    if (isRepositoryDir(entries))
      removed += await loadRepository(driver, index, name, opts.removeIncompleteTags ?? false, opts.facts);
  });
  return removed;
}

/** Re-reads one repository from storage into the index (rebuild, or recovery of one repository). */
export async function loadRepository(
  driver: StorageDriver,
  index: MetadataStore,
  name: string,
  removeIncompleteTags: boolean,
  readFacts?: ManifestReader,
): Promise<number> {
  let removed = 0;
  const revisions = new Set(
    (await linkedDigests(driver, pathFor({ kind: 'revisionsRoot', name }))).map((d) => d.value),
  );
  const tags = new Map<string, string>();
  for (const tag of await childDirs(driver, pathFor({ kind: 'tagsRoot', name }))) {
    const current = pathFor({ kind: 'tagCurrentLink', name, tag });
    const d = await readLink(driver, current);
    if (d) tags.set(tag, d.value);
    else if (removeIncompleteTags && !(await pathExists(driver, current))) {
      await driver.delete(pathFor({ kind: 'tagDir', name, tag }));
      removed++;
    }
  }
  const facts = new Map<string, ManifestFacts>();
  if (readFacts) {
    for (const d of revisions) {
      const m = await readFacts(parseDigest(d));
      if (m) facts.set(d, manifestFacts(m.info, m.body.length));
    }
  }
  await index.importRepository(name, { tags, revisions, lastPush: 0 }, facts);
  return removed;
}
