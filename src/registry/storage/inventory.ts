/**
 * What storage holds, listed for GC, usage and fsck: every blob with its size and time, and the layer and
 * revision links of a repository. Listing goes a bounded number of storage calls at a time.
 */
import pMap from 'p-map';
import { tryParseDigest, type Digest } from '../reference.js';
import { isNotFound, type StorageDriver } from './driver.js';
import { childDirs, linkedDigests } from './links.js';
import { pathFor } from './paths.js';

/**
 * Storage calls GC (and the blob listing it shares with usage and fsck) keeps in flight at once. Enough to
 * hide the latency of each call (reads, unlinks and the directory fsyncs behind them) under load, few enough
 * that clients served meanwhile keep their share.
 */
export const GC_CONCURRENCY = 16;

export interface BlobEntry {
  digest: Digest;
  size: number;
  modifiedAt: number;
}

/** Every blob in storage (directories listed and blobs stat-ed a bounded number at a time). */
export async function listBlobs(driver: StorageDriver): Promise<BlobEntry[]> {
  const root = pathFor({ kind: 'blobsRoot' });
  const digests: Digest[] = [];
  for (const alg of await childDirs(driver, root)) {
    const prefixes = await childDirs(driver, `${root}/${alg}`);
    const lists = await pMap(prefixes, (prefix) => childDirs(driver, `${root}/${alg}/${prefix}`), {
      concurrency: GC_CONCURRENCY,
    });
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

export interface RepoLinks {
  name: string;
  layers: Digest[];
  revisions: Digest[];
}

/** The digests a repository links as layers and as manifest revisions, as storage holds them. */
export async function repoLinks(driver: StorageDriver, name: string): Promise<RepoLinks> {
  return {
    name,
    layers: await linkedDigests(driver, pathFor({ kind: 'layersRoot', name })),
    revisions: await linkedDigests(driver, pathFor({ kind: 'revisionsRoot', name })),
  };
}
