import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../../src/cli/errors.js';
import { RegctlError } from '../../../src/common/errors.js';
import { gc, printGcSummary, progressText } from '../../../src/ops/gc.js';
import {
  authHeaders,
  captureOutput,
  getBlob,
  getManifestDigest,
  pushImage,
  startFixture,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

const blobFile = (fx: Fixture, digest: string) =>
  join(fx.dataDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('regctl gc against a real registry', () => {
  let fx: Fixture;
  const shared = randomBytes(50_000);
  const only = randomBytes(120_000);
  let doomed: { digest: string; blobs: string[] };
  let kept: { digest: string; blobs: string[] };

  beforeAll(async () => {
    fx = await startFixture();
    doomed = await pushImage(fx.url, 'app', 'old', [shared, only], fx.admin);
    kept = await pushImage(fx.url, 'app', 'new', [shared], fx.admin);
    const del = await fetch(`${fx.url}/v2/app/manifests/${doomed.digest}`, {
      method: 'DELETE',
      headers: authHeaders(fx.admin),
    });
    expect(del.status).toBe(202);
  });
  afterAll(async () => fx.close());

  it('dry run: lists what would go with bytes, says why each kept blob stays, deletes nothing', async () => {
    const out = captureOutput();
    const s = await gc({ dir: fx.stackDir, dryRun: true, deleteUntagged: false, graceMs: 0, out, env: fx.env });
    expect(s.dryRun).toBe(true);
    const gone = s.report.deleted.map((d) => d.digest);
    expect(gone).toContain(doomed.digest);
    expect(gone).toContain(doomed.blobs[2]);
    expect(gone).not.toContain(doomed.blobs[1]);
    expect(s.deleted.bytes).toBeGreaterThanOrEqual(only.length);
    for (const d of kept.blobs) expect(s.report.kept.find((k) => k.digest === d)?.reason).toBeTruthy();
    expect(Object.values(s.kept.byReason).reduce((n, r) => n + r.count, 0)).toBe(s.kept.count);
    expect(await exists(blobFile(fx, doomed.blobs[2]!))).toBe(true);
    printGcSummary(s, out);
    const text = out.lines.join('\n');
    expect(text).toMatch(/Would delete \d+ blobs \([\d.]+ KiB\)/);
    expect(text).toContain('Kept:');
    expect(text).toContain(doomed.blobs[2]!.slice(0, 19));
  });

  it('a dry run within one request (as on a swarm stack) reports the same as the polled job', async () => {
    const polled = await gc({
      dir: fx.stackDir,
      dryRun: true,
      deleteUntagged: false,
      graceMs: 0,
      out: captureOutput(),
      env: fx.env,
    });
    const out = captureOutput();
    const one = await gc({
      dir: fx.stackDir,
      dryRun: true,
      deleteUntagged: false,
      graceMs: 0,
      out,
      env: fx.env,
      oneRequest: true,
    });
    expect(one.report.deleted.map((d) => d.digest).sort()).toEqual(polled.report.deleted.map((d) => d.digest).sort());
    expect(one.kept.byReason).toEqual(polled.kept.byReason);
    expect(out.lines.some((l) => l.startsWith('… '))).toBe(false);
  });

  it('sweeps: the space is freed on disk, shared layers and the tagged image stay intact', async () => {
    const out = captureOutput();
    const s = await gc({ dir: fx.stackDir, dryRun: false, deleteUntagged: false, graceMs: 0, out, env: fx.env });
    // The GC ran as a job and its progress, polled from the registry, reached the screen.
    expect(out.lines.filter((l) => l.startsWith('… '))).toContainEqual(
      expect.stringMatching(/^… finishing \(\d+ s\)$/),
    );
    expect(s.freedBytes).toBeGreaterThanOrEqual(only.length);
    expect(await exists(blobFile(fx, doomed.blobs[2]!))).toBe(false);
    expect(await exists(blobFile(fx, doomed.blobs[1]!))).toBe(true);
    expect(await getManifestDigest(fx.url, 'app', 'new', fx.admin)).toEqual({ status: 200, digest: kept.digest });
    for (const b of kept.blobs) expect(await getBlob(fx.url, 'app', b, fx.admin)).toEqual({ status: 200, digest: b });
  });

  it('a just-collected image can be pushed again and pulled at once', async () => {
    const again = await pushImage(fx.url, 'app', 'old', [shared, only], fx.admin);
    expect(again.blobs[2]).toBe(doomed.blobs[2]);
    expect((await getManifestDigest(fx.url, 'app', 'old', fx.admin)).status).toBe(200);
    expect(await getBlob(fx.url, 'app', doomed.blobs[2]!, fx.admin)).toEqual({ status: 200, digest: doomed.blobs[2] });
  });

  it('an unreferenced but young blob survives the default grace window', async () => {
    const young = await pushImage(fx.url, 'scratch', 'tmp', [randomBytes(10_000)], fx.admin);
    await fetch(`${fx.url}/v2/scratch/manifests/${young.digest}`, { method: 'DELETE', headers: authHeaders(fx.admin) });
    const s = await gc({ dir: fx.stackDir, dryRun: true, deleteUntagged: false, out: captureOutput(), env: fx.env });
    expect(s.deleted.count).toBe(0);
    expect(s.report.kept.find((k) => k.digest === young.blobs[1])?.reason).toMatch(/grace/);
  });

  it('refused while another GC holds the lease: one line naming it, a non-zero exit; free again once released', async () => {
    const held = await fx.server.app.store.index.tryLease('gc', 'job 9 on replica-2 (pid 77), started earlier');
    if (!('lease' in held)) throw new Error('lease not free');
    try {
      const err = await gc({
        dir: fx.stackDir,
        dryRun: false,
        deleteUntagged: false,
        graceMs: 0,
        out: captureOutput(),
        env: fx.env,
      }).then(
        () => undefined,
        (e: unknown) => e as RegctlError,
      );
      expect(err).toBeInstanceOf(RegctlError);
      expect(err?.message).toBe(
        'garbage collection not started: another one is running (job 9 on replica-2 (pid 77), started earlier); ' +
          'run regctl gc again once it has finished',
      );
      expect(err?.hint).toBeUndefined();
      expect(exitCodeOf(err as RegctlError)).not.toBe(0);
    } finally {
      await held.lease.release();
    }
    expect(
      (await gc({ dir: fx.stackDir, dryRun: true, deleteUntagged: false, out: captureOutput(), env: fx.env })).dryRun,
    ).toBe(true);
  });
});

describe('gc progress lines', () => {
  it('name the phase and count what is done', () => {
    expect(progressText({ phase: 'sweep-blobs', done: 1200, total: 5000 })).toBe(
      'sweeping blobs: checked 1,200 of 5,000',
    );
    expect(progressText({ phase: 'mark', done: 3, total: 40 })).toBe('marking: repositories read 3 of 40');
    expect(progressText({ phase: 'uploads', done: 0, total: 1 })).toBe('purging stale uploads');
  });
});
