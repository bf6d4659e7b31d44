import { expect, it } from 'vitest';
import type { ManifestFacts, MetadataStore } from '../../src/registry/metadata/store.js';

/**
 * The uses of blobs in the `MetadataStore` contract: what GC reads before it sweeps a blob, and how a sweep and a
 * push linking the same blob wait for each other (metadata-contract.ts runs these against every store).
 */

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const L1 = `sha256:${'1'.repeat(64)}`;

function facts(): ManifestFacts {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 500,
    configDigest: L1,
    references: [{ digest: L1, size: 100 }],
  };
}

/** Starts a sweep of `digest` whose removal waits for `release`; resolves once the removal has begun. */
async function sweepHeldInRemoval(
  index: MetadataStore,
  digest: string,
  since: number,
): Promise<{ sweeping: Promise<boolean>; release: () => void }> {
  let started!: () => void;
  const inRemove = new Promise<void>((r) => (started = r));
  let release!: () => void;
  const sweeping = index.sweepUnused(digest, since, () => {
    started();
    return new Promise<void>((r) => (release = r));
  });
  await inRemove;
  return { sweeping, release };
}

export function useCases(make: () => Promise<MetadataStore>): void {
  it('counts a use while the flush that writes it waits for its transaction', async () => {
    const index = await make();
    await index.protectUses([A], 5000);
    index.noteUse(B, 6000);
    // the flush has taken the uses from memory; its transaction has not run yet
    const flushing = index.flush();
    expect(await index.usedSince(A, 5000)).toBe(true);
    expect(await index.usedSince(B, 6000)).toBe(true);
    let removed = 0;
    expect(await index.sweepUnused(B, 6000, async () => void removed++)).toBe(false);
    await flushing;
    expect(await index.usedSince(A, 5000)).toBe(true);
    expect(await index.usedSince(B, 6000)).toBe(true);
    expect(await index.usedSince(B, 6001)).toBe(false);
    expect(removed).toBe(0);
    await index.close();
  });

  it('keeps the last use of each digest until pruned', async () => {
    const index = await make();
    index.noteUse(A, 1000);
    index.noteUse(B, 3000);
    expect(await index.usedSince(A, 1000)).toBe(true);
    expect(await index.usedSince(A, 1001)).toBe(false);
    await index.pruneUses(2000);
    expect(await index.usedSince(A, 1)).toBe(false);
    expect(await index.usedSince(B, 3000)).toBe(true);
    await index.flush();
    expect(await index.usedSince(B, 3000)).toBe(true);
    expect(await index.usedSince(B, 3001)).toBe(false);
    await index.close();
  });

  it('sweeps a digest unused since a time; a use protected during the sweep waits for it', async () => {
    const index = await make();
    let removed = 0;
    const remove = async () => void removed++;
    await index.protectUses([A], 5000);
    expect(await index.sweepUnused(A, 5000, remove)).toBe(false);
    expect(removed).toBe(0);
    expect(await index.sweepUnused(A, 5001, remove)).toBe(true);
    expect(await index.sweepUnused(B, 1, remove)).toBe(true);
    expect(removed).toBe(2);
    // a pending (batched) use counts as well
    index.noteUse(L1, 7000);
    expect(await index.sweepUnused(L1, 7000, remove)).toBe(false);

    const { sweeping, release } = await sweepHeldInRemoval(index, C, 10_000);
    let protectedAt = 0;
    const protecting = index.protectUses([C], 20_000).then(() => (protectedAt = Date.now()));
    await new Promise((r) => setTimeout(r, 200));
    expect(protectedAt).toBe(0);
    const releasedAt = Date.now();
    release();
    expect(await sweeping).toBe(true);
    await protecting;
    expect(protectedAt).toBeGreaterThanOrEqual(releasedAt);
    expect(await index.usedSince(C, 20_000)).toBe(true);
    await index.close();
  });

  it('other writes, and sweeps of other digests, go on while a sweep removes its blob', async () => {
    const index = await make();
    const { sweeping, release } = await sweepHeldInRemoval(index, C, 10_000);
    try {
      const others = Promise.all([
        index.addManifest('other', A, 1000, facts(), { tags: ['v1'] }),
        index.protectUses([B], 5000),
        index.sweepUnused(L1, 1, async () => undefined),
      ]);
      const outcome = await Promise.race([
        others.then(() => 'done'),
        new Promise((r) => setTimeout(() => r('waiting for the sweep'), 3000)),
      ]);
      expect(outcome).toBe('done');
      expect((await index.repository('other'))?.tags.get('v1')).toBe(A);
    } finally {
      release();
    }
    expect(await sweeping).toBe(true);
    expect(await index.usedSince(C, 1)).toBe(false);
    await index.close();
  });
}
