import { describe, expect, it } from 'vitest';
import type { ManifestFacts, MetadataStore } from '../../src/registry/metadata/store.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const M1 = d('a');
const M2 = d('b');
const IDX = d('c');
const CONFIG = d('1');
const SHARED = d('2');
const ONLY2 = d('3');
const NEW = d('4');

function image(size: number, refs: [string, number][]): ManifestFacts {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size,
    references: refs.map(([digest, s]) => ({ digest, size: s })),
  };
}

/**
 * `MetadataStore.quotaUsage` (quotas, policy/quota.ts) on every implementation: dedupe-aware within the
 * repository, equal to `stats().bytes`, and what a write would add counts only digests the repository lacks.
 */
export function quotaUsageContract(label: string, make: () => Promise<MetadataStore>): void {
  describe(`metadata store quota usage: ${label}`, () => {
    it('counts a blob shared by two manifests once, equal to stats().bytes, and per repository', async () => {
      const index = await make();
      await index.addManifest(
        'q/app',
        M1,
        1000,
        image(400, [
          [CONFIG, 100],
          [SHARED, 5000],
        ]),
      );
      // Asked between writes: a store that keeps the sum must drop it on each write to the repository.
      expect((await index.quotaUsage('q/app')).bytes).toBe(400 + 100 + 5000);
      await index.addManifest(
        'q/app',
        M2,
        2000,
        image(300, [
          [CONFIG, 100],
          [SHARED, 5000],
          [ONLY2, 70],
        ]),
      );
      await index.addManifest(
        'q/other',
        M1,
        1000,
        image(400, [
          [CONFIG, 100],
          [SHARED, 5000],
        ]),
      );
      const usage = await index.quotaUsage('q/app');
      expect(usage).toEqual({ bytes: 400 + 300 + 100 + 5000 + 70, added: 0 });
      expect((await index.stats('q/app'))?.bytes).toBe(usage.bytes);
      expect((await index.quotaUsage('q/other')).bytes).toBe(400 + 100 + 5000);
      expect(await index.quotaUsage('q/none', [{ digest: NEW, size: 9 }])).toEqual({ bytes: 0, added: 9 });
      await index.importRepository('q/other', { tags: new Map(), revisions: new Set([M2]), lastPush: 0 }, new Map());
      expect((await index.quotaUsage('q/other')).bytes).toBe(0);
      await index.clear();
      // The repository again, by a write that touches no manifest: nothing of before the clear counts.
      await index.setTag('q/app', 'x', M1);
      expect((await index.quotaUsage('q/app')).bytes).toBe(0);
      await index.close();
    });

    it('what a write adds: digests held as manifests or references count 0, a new one once', async () => {
      const index = await make();
      await index.addManifest(
        'q/app',
        M1,
        1000,
        image(400, [
          [CONFIG, 100],
          [SHARED, 5000],
        ]),
      );
      const adding = [
        { digest: IDX, size: 250 },
        { digest: M1, size: 400 },
        { digest: SHARED, size: 5000 },
        { digest: NEW, size: 33 },
        { digest: NEW, size: 33 },
      ];
      expect(await index.quotaUsage('q/app', adding)).toEqual({ bytes: 5500, added: 250 + 33 });
      // Many digests at once (more than one SQL batch of parameters).
      const many = Array.from({ length: 1000 }, (_, i) => ({
        digest: `sha256:${i.toString(16).padStart(64, '0')}`,
        size: 1,
      }));
      expect((await index.quotaUsage('q/app', [...many, { digest: SHARED, size: 5000 }])).added).toBe(1000);
      await index.addManifest('q/app', M2, 2000, image(300, [[SHARED, 5000]]));
      expect((await index.quotaUsage('q/app')).bytes).toBe(400 + 100 + 5000 + 300);
      await index.removeRevision('q/app', M1);
      expect(await index.quotaUsage('q/app', [{ digest: CONFIG, size: 100 }])).toEqual({ bytes: 5300, added: 100 });
      await index.removeRevision('q/app', M2);
      expect(await index.quotaUsage('q/app', [{ digest: SHARED, size: 5000 }])).toEqual({ bytes: 0, added: 5000 });
      await index.close();
    });
  });
}
