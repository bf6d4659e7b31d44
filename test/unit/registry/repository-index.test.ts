import { describe, expect, it } from 'vitest';
import { MemoryIndex } from '../../../src/registry/storage/memory-index.js';
import type { RepositoryIndex } from '../../../src/registry/storage/repository-index.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

/** The `RepositoryIndex` contract, run against every implementation. */
function indexContract(label: string, make: () => Promise<RepositoryIndex>): void {
  describe(`repository index contract: ${label}`, () => {
    it('a repository exists while it holds a tag or a revision', async () => {
      const index = await make();
      expect(await index.hasRepository('team/app')).toBe(false);
      expect(await index.tags('team/app')).toBeUndefined();
      await index.addRevision('team/app', A, 1000);
      await index.setTag('team/app', 'v1', A);
      expect(await index.catalog()).toEqual(['team/app']);
      expect(index.repositoryCount()).toBe(1);
      await index.removeRevision('team/app', A);
      expect(await index.hasRepository('team/app')).toBe(true);
      await index.removeTag('team/app', 'v1');
      expect(await index.hasRepository('team/app')).toBe(false);
      expect(await index.catalog()).toEqual([]);
      expect(index.repositoryCount()).toBe(0);
    });

    it('answers tags sorted, tag targets, revisions and the last push', async () => {
      const index = await make();
      await index.addRevision('b', A, 5000);
      await index.addRevision('a', B, 7000);
      for (const tag of ['v2', 'latest', 'v10']) await index.setTag('b', tag, A);
      await index.setTag('b', 'v2', B);
      expect(await index.catalog()).toEqual(['a', 'b']);
      expect(await index.tags('b')).toEqual(['latest', 'v10', 'v2']);
      expect(await index.tagTarget('b', 'v2')).toBe(B);
      expect(await index.tagTarget('b', 'nope')).toBeUndefined();
      expect(await index.hasRevision('b', A)).toBe(true);
      expect(await index.hasRevision('b', B)).toBe(false);
      const record = await index.repository('b');
      expect(record?.lastPush).toBe(5000);
      expect([...(record?.revisions ?? [])]).toEqual([A]);
      await index.setLastPush('b', 9000);
      expect((await index.repository('b'))?.lastPush).toBe(9000);
    });

    it('clear forgets everything; load adds what storage holds, and nothing for an empty record', async () => {
      const index = await make();
      await index.setTag('old', 'v1', A);
      await index.clear();
      expect(await index.catalog()).toEqual([]);
      await index.load('x', { tags: new Map([['v1', A]]), revisions: new Set([A]), lastPush: 0 });
      await index.load('empty', { tags: new Map(), revisions: new Set(), lastPush: 0 });
      expect(await index.catalog()).toEqual(['x']);
      expect(await index.tagTarget('x', 'v1')).toBe(A);
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
    });
  });
}

indexContract('memory', async () => new MemoryIndex());
