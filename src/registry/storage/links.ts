/**
 * Small reads over a `StorageDriver` shared by the stores, GC and fsck: link files (a file holding only a
 * digest), existence checks and directory listings, each treating a missing path as an answer, not an error.
 */
import { tryParseDigest, type Digest } from '../reference.js';
import { isNotFound, type StorageDriver } from './driver.js';

/** The digest a link file holds; undefined when the file is missing or holds no valid digest. */
export async function readLink(driver: StorageDriver, path: string): Promise<Digest | undefined> {
  try {
    const text = (await driver.getContent(path)).toString('utf8').trim();
    return tryParseDigest(text);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function pathExists(driver: StorageDriver, path: string): Promise<boolean> {
  try {
    await driver.stat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Names of the directories directly under `path`; none when it is missing. */
export async function childDirs(driver: StorageDriver, path: string): Promise<string[]> {
  try {
    return (await driver.list(path)).filter((e) => e.isDir).map((e) => e.name);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Digests named by the directories `<root>/<alg>/<hex>/` (a repository's layer, revision or referrer links). */
export async function linkedDigests(driver: StorageDriver, root: string): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const alg of await childDirs(driver, root)) {
    for (const hex of await childDirs(driver, `${root}/${alg}`)) {
      const d = tryParseDigest(`${alg}:${hex}`);
      if (d) out.push(d);
    }
  }
  return out;
}
