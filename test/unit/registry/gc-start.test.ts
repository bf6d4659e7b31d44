/**
 * A GC's grace window is measured back from the start its job reports, which comes before the run itself (the job
 * takes its leases first): no blob whose upload began within the window before that reported start is swept.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { runGc } from '../../../src/registry/storage/gc.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';

describe('GC start and grace', () => {
  it('judges ages from the start it is given, not from when the run began', async () => {
    const store = new RegistryStore(new MemoryDriver());
    const body = Buffer.from('a blob no manifest names');
    const digest = parseDigest(`sha256:${createHash('sha256').update(body).digest('hex')}`);
    await store.driver.putContent(pathFor({ kind: 'blobData', digest }), body);
    const written = Date.now();
    // the run begins 300 ms after the write, but its job started 100 ms after it: within a 200 ms window
    await new Promise((r) => setTimeout(r, 300));
    const early = await runGc(store, { graceSeconds: 0.2, startedAt: written + 100 });
    expect(early.deleted).toEqual([]);
    expect(early.kept).toContainEqual(expect.objectContaining({ digest: digest.value, reason: 'within grace window' }));
    // judged from now, the same blob is past the window and goes
    const now = await runGc(store, { graceSeconds: 0.2 });
    expect(now.deleted.map((d) => d.digest)).toEqual([digest.value]);
  });
});
