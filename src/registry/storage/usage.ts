/**
 * Usage accounting: bytes stored, and per repository the bytes only it links (exclusive) and the bytes it
 * shares with others, with its tag and manifest counts and last push.
 *
 * The repositories are the index's (`isRepositoryDir`: the ones the catalog and the UI list). A directory holding
 * only layer links or uploads (a push that never put its manifest, what a crash or a GC left) is none: its links
 * keep nothing from the GC, so the blobs only it links count as reclaimable, like blobs no repository links.
 */
import type { UsageReport } from '../../common/admin-api.js';
import { listBlobs, repoLinks } from './inventory.js';
import type { RegistryStore } from './store.js';

export async function computeUsage(store: RegistryStore): Promise<UsageReport> {
  const blobs = await listBlobs(store.driver);
  const sizes = new Map(blobs.map((b) => [b.digest.value, b.size]));
  const owners = new Map<string, Set<string>>();
  const names: string[] = [];
  for (const n of await store.allRepositoryDirs()) if (await store.index.hasRepository(n)) names.push(n);
  const repos = await Promise.all(names.map((n) => repoLinks(store.driver, n)));
  for (const r of repos) {
    for (const d of [...r.layers, ...r.revisions]) {
      const set = owners.get(d.value) ?? new Set<string>();
      set.add(r.name);
      owners.set(d.value, set);
    }
  }
  const repositories: UsageReport['repositories'] = [];
  for (const r of repos) {
    const state = await store.index.repository(r.name);
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
    repositories.push({
      name: r.name,
      tags: state?.tags.size ?? 0,
      manifests: state?.revisions.size ?? 0,
      exclusiveBytes,
      sharedBytes,
      lastPush: state
        ? await store.tags.lastPush(r.name).then((t) => (t > 0 ? new Date(t).toISOString() : null))
        : null,
    });
  }
  const reclaimableBytes = blobs.filter((b) => !owners.has(b.digest.value)).reduce((a, b) => a + b.size, 0);
  return { totalBytes: blobs.reduce((a, b) => a + b.size, 0), blobCount: blobs.length, repositories, reclaimableBytes };
}
