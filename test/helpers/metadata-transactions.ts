/** The part of the metadata store contract (metadata-contract.ts) that only stores with transactions (SQL) have. */
import { expect, it } from 'vitest';
import type { ManifestFacts, MetadataStore } from '../../src/registry/metadata/store.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const L1 = `sha256:${'1'.repeat(64)}`;

/** Stores with transactions (SQL): a write that fails leaves nothing of itself, and nothing of it in others. */
export function transactionCases(make: () => Promise<MetadataStore>): void {
  it('rolls back a failed write alone while writes asked for at the same time commit', async () => {
    const index = await make();
    // A reference without a size breaks a NOT NULL column after the repository and manifest rows were written.
    const broken: ManifestFacts = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 500,
      configDigest: L1,
      references: [{ digest: B, size: null as unknown as number }],
    };
    const intent = await index.beginIntent('revision-put', 'bad', A);
    const results = await Promise.allSettled([
      index.setTag('good', 'v1', A),
      index.addManifest('bad', A, 1000, broken, { tags: ['v1'], endIntents: [intent] }),
      index.setTag('good', 'v2', C),
      index.protectUses([B], 5000),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(await index.hasRepository('bad')).toBe(false);
    expect(await index.hasRevision('bad', A)).toBe(false);
    expect(await index.tagTarget('bad', 'v1')).toBeUndefined();
    expect((await index.pendingIntents()).map((i) => i.id)).toEqual([intent]);
    expect(await index.tags('good')).toEqual(['v1', 'v2']);
    expect(await index.usedSince(B, 5000)).toBe(true);
    await index.close();
  });
}
