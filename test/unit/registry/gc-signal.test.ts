/** A GC stops at its next step once its signal is aborted (its cluster lease was lost), sweeping nothing more. */
import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { runGc } from '../../../src/registry/storage/gc.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { pushImage } from './metadata-fixture.js';

describe('GC and its signal', () => {
  it('stops before sweeping when the signal is aborted during the mark, and leaves every blob in place', async () => {
    const store = new RegistryStore(new MemoryDriver());
    const kept = await pushImage(store, 'team/app', 'v1');
    const orphan = await pushImage(store, 'team/app', 'v2');
    await store.tags.delete('team/app', 'v2');
    const lost = new AbortController();
    const phases: string[] = [];
    const run = runGc(store, {
      deleteUntagged: true,
      graceSeconds: 0,
      signal: lost.signal,
      onProgress: (p) => {
        phases.push(p.phase);
        if (p.phase === 'mark' && p.done === 1) lost.abort(new Error('the gc lease was lost'));
      },
    });
    await expect(run).rejects.toThrow(/the gc lease was lost/);
    expect(phases.filter((p) => p.startsWith('sweep'))).toEqual([]);
    expect(await store.index.hasRevision('team/app', orphan.value)).toBe(true);
    expect(await store.index.hasRevision('team/app', kept.value)).toBe(true);
    // Without an abort the same GC sweeps the untagged manifest: the test above can tell the two apart.
    const report = await runGc(store, { deleteUntagged: true, graceSeconds: 0 });
    expect(report.manifestsRemoved.map((m) => parseDigest(m.digest).value)).toContain(orphan.value);
  });
});
