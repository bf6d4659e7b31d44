import { describe, expect, it } from 'vitest';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import type { StorageDriver } from '../../../src/registry/storage/driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { parseDigest } from '../../../src/registry/reference.js';

/** A driver that counts the list/read calls in flight, each held open a little, as slow storage would. */
function countingDriver(inner: StorageDriver): { driver: StorageDriver; peak: () => number } {
  let inFlight = 0;
  let peak = 0;
  const track = async <T>(fn: () => Promise<T>): Promise<T> => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    try {
      await new Promise((r) => setTimeout(r, 1));
      return await fn();
    } finally {
      inFlight--;
    }
  };
  const driver = Object.create(inner) as StorageDriver;
  driver.list = (path) => track(() => inner.list(path));
  driver.getContent = (path) => track(() => inner.getContent(path));
  return { driver, peak: () => peak };
}

describe('startup index walk', () => {
  it('keeps storage calls in flight bounded with thousands of repositories, and indexes them all', async () => {
    const mem = new MemoryDriver();
    const digest = parseDigest(`sha256:${'a'.repeat(64)}`);
    for (let i = 0; i < 1500; i++) {
      const name = `team${i % 30}/app${i}`;
      for (const tag of ['1', '2']) await mem.putContent(pathFor({ kind: 'tagCurrentLink', name, tag }), digest.value);
      await mem.putContent(pathFor({ kind: 'revisionLink', name, digest }), digest.value);
    }
    const { driver, peak } = countingDriver(mem);
    const store = new RegistryStore(driver);
    await store.buildIndex();
    expect(peak()).toBeLessThanOrEqual(64);
    expect(peak()).toBeGreaterThan(8);
    expect(await store.index.catalog()).toHaveLength(1500);
    expect(await store.index.tags('team3/app3')).toEqual(['1', '2']);
  });
});
