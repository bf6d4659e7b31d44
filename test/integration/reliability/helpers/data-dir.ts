import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { JOURNAL_DIR } from '../../../../src/registry/storage/fs-journal.js';
import { isMetadataCompanion, METADATA_FILE, metadataDump } from '../../../helpers/metadata-dump.js';

/**
 * Every regular file under `root` (relative path → size). The metadata store's SQLite file stands for its logical
 * content instead (test/helpers/metadata-dump.ts), and its WAL companions are left out: their sizes move with
 * checkpoints and batched bookkeeping, not with what a request wrote. The write journal's segments are left out
 * too: they log writes and removals (an upload's marker created, then removed), not what the registry stores.
 */
export async function snapshotFiles(root: string): Promise<Map<string, number | string>> {
  const out = new Map<string, number | string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === JOURNAL_DIR) continue;
      if (e.isDirectory()) await walk(abs, r);
      else if (r === METADATA_FILE) out.set(r, metadataDump(abs));
      else if (isMetadataCompanion(r)) continue;
      else {
        try {
          out.set(r, (await stat(abs)).size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
  };
  await walk(root, '');
  return out;
}

/** Files added or whose size changed between two snapshots. */
export function diffSnapshots(before: Map<string, number | string>, after: Map<string, number | string>): string[] {
  const changed: string[] = [];
  for (const [path, size] of after)
    if (before.get(path) !== size) changed.push(`${path} (${before.get(path) ?? 'new'} → ${size})`);
  return changed;
}

export const BLOBS_ROOT = 'docker/registry/v2/blobs';

/** Blob data files whose content does not hash to the digest their path names. */
export async function corruptBlobs(dataDir: string): Promise<string[]> {
  const bad: string[] = [];
  const files = await snapshotFiles(join(dataDir, BLOBS_ROOT));
  for (const rel of files.keys()) {
    const m = /^(sha256|sha512)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/.exec(rel);
    if (!m) continue;
    const hash = createHash(m[1] as string);
    try {
      for await (const chunk of createReadStream(join(dataDir, BLOBS_ROOT, rel))) hash.update(chunk as Buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (hash.digest('hex') !== m[2]) bad.push(rel);
  }
  return bad;
}

/** Temporary files (the storage driver's `.tmp-` marker) anywhere under `dataDir`, with their mtimes. */
export async function tempFiles(dataDir: string): Promise<{ path: string; mtimeMs: number }[]> {
  const out: { path: string; mtimeMs: number }[] = [];
  for (const rel of (await snapshotFiles(dataDir)).keys()) {
    if (!rel.slice(rel.lastIndexOf('/') + 1).includes('.tmp-')) continue;
    try {
      out.push({ path: rel, mtimeMs: (await stat(join(dataDir, rel))).mtimeMs });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

/** Tag directories (`…/_manifests/tags/<tag>`) without a `current/link`: a tag write cut short. */
export async function incompleteTags(dataDir: string): Promise<string[]> {
  const files = [...(await snapshotFiles(join(dataDir, 'docker/registry/v2/repositories'))).keys()];
  const tagDirs = new Set<string>();
  const complete = new Set<string>();
  for (const rel of files) {
    const m = /^(.+\/_manifests\/tags\/[^/]+)\/(.+)$/.exec(rel);
    if (!m) continue;
    tagDirs.add(m[1] as string);
    if (m[2] === 'current/link') complete.add(m[1] as string);
  }
  return [...tagDirs].filter((d) => !complete.has(d));
}
