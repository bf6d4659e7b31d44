/**
 * The crash harness's verification step fed planted data, without a server: each rule must turn what it forbids
 * into a violation, and let through what it allows.
 */
import { describe, expect, it } from 'vitest';
import type { GcReport } from '../../../src/common/admin-api.js';
import { sha256 } from '../../integration/reliability/helpers/client.js';
import {
  CrashModel,
  type BlobEntry,
  type GcRecord,
  type ImageEntry,
} from '../../integration/reliability/helpers/crash-model.js';
import { DanglingLinks, absenceExcuse, checkGcReport } from '../../integration/reliability/helpers/crash-rules.js';
import { verifyAcknowledged, type RegistryReader } from '../../integration/reliability/helpers/crash-verify.js';
import { Rng } from '../../integration/reliability/helpers/rng.js';

const GRACE = 10_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');

function blob(content: string, pushStartedAt: number): BlobEntry {
  return {
    repo: 'crash/alpha',
    digest: sha256(content),
    startedSeq: 1,
    pushStartedAt,
    ackedAt: pushStartedAt + 5,
    checkedAt: -1,
  };
}

function image(tag: string, ackedAt: number): ImageEntry {
  const config = Buffer.from(`config of ${tag}`);
  const manifest = Buffer.from(`manifest of ${tag}`);
  return {
    repo: 'crash/beta',
    tag,
    digest: sha256(manifest),
    manifest,
    blobs: [sha256(config), sha256(`layer of ${tag}`)],
    ackedAt,
    checkedAt: -1,
  };
}

function report(deleted: string[], manifestsRemoved: { repository: string; digest: string }[] = []): GcReport {
  return {
    deleted: deleted.map((digest) => ({ digest, size: 1, reason: 'unreferenced' })),
    kept: [],
    freedBytes: deleted.length,
    repositoriesRemoved: [],
    manifestsRemoved,
    uploadsPurged: 0,
    dryRun: false,
  };
}

function doneGc(id: number, startedAt: number, deleted: string[], cycle = 1): GcRecord {
  return {
    seq: id,
    cycle,
    issuedAt: startedAt - 5,
    deleteUntagged: false,
    outcome: 'done',
    id,
    startedAt,
    finishedAt: startedAt + 500,
    latestStartAt: startedAt,
    report: report(deleted),
  };
}

/** A registry that serves exactly the blobs and manifests given (by digest and by repo:tag). */
function plantedRegistry(blobs: string[], manifests: Record<string, Buffer> = {}): RegistryReader {
  const stored = new Map(blobs.map((c) => [sha256(c), Buffer.from(c)]));
  return {
    getBlob: async (_repo, digest) => {
      const body = stored.get(digest);
      return body ? { status: 200, body } : { status: 404, body: Buffer.alloc(0) };
    },
    getManifest: async (repo, ref) => {
      const body = manifests[`${repo}:${ref}`] ?? manifests[ref];
      return body ? { status: 200, body, digest: sha256(body) } : { status: 404, body: Buffer.alloc(0), digest: null };
    },
    catalog: async () => [],
    tags: async () => undefined,
  };
}

async function verifyAll(m: CrashModel, reader: RegistryReader): Promise<string[]> {
  await verifyAcknowledged(reader, m, { all: true, sampleOld: 0, rng: new Rng(1) });
  return m.violations;
}

describe('an acknowledged blob found missing', () => {
  it('is a violation when no GC report lists it, even though a GC ran after it', async () => {
    const m = new CrashModel(1, GRACE);
    m.blobs.push(blob('lost', T0));
    m.gcs.push(doneGc(1, T0 + 60_000, [sha256('something else')]));
    expect(await verifyAll(m, plantedRegistry([]))).toEqual([
      expect.stringMatching(/acknowledged blob crash\/alpha@sha256:\w+ → 404, and no GC accounts for it/),
    ]);
  });

  it('is accounted for when a report lists it as swept and it was older than the grace window', async () => {
    const m = new CrashModel(1, GRACE);
    m.blobs.push(blob('swept', T0));
    m.gcs.push(doneGc(1, T0 + 60_000, [sha256('swept')]));
    expect(await verifyAll(m, plantedRegistry([]))).toEqual([]);
    expect(m.blobs[0]?.goneBy).toBe('swept by GC #1');
  });

  it('is a violation when the listing GC started within the grace window of its upload', async () => {
    const m = new CrashModel(1, GRACE);
    m.blobs.push(blob('young', T0));
    m.gcs.push(doneGc(1, T0 + 3_000, [sha256('young')]));
    expect(await verifyAll(m, plantedRegistry([]))).toEqual([expect.stringMatching(/no GC accounts for it/)]);
    expect(checkGcReport(m, m.gcs[0] as GcRecord)).toEqual([
      expect.stringMatching(/swept sha256:\w+, whose upload started 3000 ms before it \(grace 10000 ms\)/),
    ]);
  });

  it('a GC cut by the kill accounts only for blobs that were old enough when it could have started', () => {
    const maybe: GcRecord = {
      seq: 9,
      cycle: 3,
      issuedAt: T0 + 20_000,
      deleteUntagged: true,
      outcome: 'maybe',
      latestStartAt: T0 + 21_000,
    };
    expect(absenceExcuse(blob('old', T0), [maybe], GRACE)).toMatch(/answer was lost to the kill/);
    expect(absenceExcuse(blob('new', T0 + 15_000), [maybe], GRACE)).toBeUndefined();
    expect(absenceExcuse(blob('old', T0), [{ ...maybe, outcome: 'refused' }], GRACE)).toBeUndefined();
  });

  it('a delete answered 404 needs a GC that accounts for the blob', async () => {
    const m = new CrashModel(1, GRACE);
    m.blobs.push({ ...blob('deleted', T0), deleteIssued: 5, deleteAcked: true, deleteAnswered404: true });
    expect(await verifyAll(m, plantedRegistry([]))).toEqual([
      expect.stringMatching(/delete of blob .* answered 404, and no GC accounts for it/),
    ]);
  });
});

describe('a GC report', () => {
  it('listing a blob of an image live throughout the GC as swept is a violation', () => {
    const m = new CrashModel(1, GRACE);
    const img = image('img-1', T0);
    m.images.push(img);
    expect(checkGcReport(m, doneGc(4, T0 + 60_000, [img.blobs[1] as string]))).toEqual([
      expect.stringMatching(/GC #4 .* swept sha256:\w+, referenced by crash\/beta:img-1 throughout/),
    ]);
  });

  it('removing the manifest of a tagged live image is a violation', () => {
    const m = new CrashModel(1, GRACE);
    const img = image('img-2', T0);
    m.images.push(img);
    const g = { ...doneGc(5, T0 + 60_000, []), report: report([], [{ repository: img.repo, digest: img.digest }]) };
    expect(checkGcReport(m, g)).toEqual([
      expect.stringMatching(/removed manifest crash\/beta@sha256:\w+, tagged img-2 throughout/),
    ]);
  });

  it('may sweep the blobs of an image deleted before it ended, or acknowledged after it started', () => {
    const m = new CrashModel(1, GRACE);
    const deleted = { ...image('img-3', T0), deleteIssued: 3, deleteIssuedAt: T0 + 60_100, deletedBy: 'tag' as const };
    const late = image('img-4', T0 + 60_050);
    m.images.push(deleted, late);
    expect(checkGcReport(m, doneGc(6, T0 + 60_000, [...deleted.blobs, ...late.blobs]))).toEqual([]);
  });
});

describe('the latest tag', () => {
  const planted = (m: CrashModel) => verifyAll(m, plantedRegistry([]));

  it('missing after a delete by digest that a later acknowledged write superseded is a violation', async () => {
    const m = new CrashModel(1, GRACE);
    const s = m.latestState('crash/beta');
    s.written.add('sha256:aa').add('sha256:bb');
    s.digestDeletes.push({ digest: 'sha256:aa', cycle: 1, ackedAt: T0 });
    s.lastAckedWrite = { startedAt: T0 + 10, cycle: 1 };
    expect(await planted(m)).toEqual([
      expect.stringMatching(/crash\/beta:latest acknowledged, no delete by digest since, but answers 404/),
    ]);
  });

  it('may be missing while a delete by digest of what it held is not superseded', async () => {
    const m = new CrashModel(1, GRACE);
    const s = m.latestState('crash/beta');
    s.written.add('sha256:aa');
    s.lastAckedWrite = { startedAt: T0 + 10, cycle: 1 };
    // Cut by the kill of the same life: it may have acted after the write.
    s.digestDeletes.push({ digest: 'sha256:aa', cycle: 1 });
    expect(await planted(m)).toEqual([]);
    // A write acknowledged in a later life supersedes it.
    s.lastAckedWrite = { startedAt: T0 + 5_000, cycle: 2 };
    expect(await planted(m)).toHaveLength(1);
  });
});

describe('dangling links', () => {
  const gcInLife = (cycle: number, outcome: GcRecord['outcome']): GcRecord => ({
    seq: cycle,
    cycle,
    issuedAt: T0,
    deleteUntagged: false,
    outcome,
    id: cycle,
    startedAt: T0,
  });

  it('one that the next GC does not remove is a violation', () => {
    const d = new DanglingLinks();
    const gcs = [gcInLife(1, 'maybe')];
    expect(d.afterKill(1, ['repositories/crash/alpha/_layers/sha256/ab/link'], gcs)).toEqual([]);
    gcs.push(gcInLife(2, 'done'));
    expect(d.afterKill(2, ['repositories/crash/alpha/_layers/sha256/ab/link'], gcs)).toEqual([
      expect.stringMatching(/found after cycle 1\) still there after GC #2 of cycle 2 finished/),
    ]);
  });

  it('one that waits for a GC, which then removes it, is tolerated', () => {
    const d = new DanglingLinks();
    const gcs = [gcInLife(1, 'maybe'), gcInLife(2, 'refused')];
    expect(d.afterKill(1, ['x/link'], gcs)).toEqual([]);
    expect(d.afterKill(2, ['x/link'], gcs)).toEqual([]);
    gcs.push(gcInLife(3, 'done'));
    expect(d.afterKill(3, [], gcs)).toEqual([]);
    expect(d.pendingCount).toBe(0);
  });

  it('one after a life without any GC is a violation', () => {
    expect(new DanglingLinks().afterKill(1, ['y/link'], [gcInLife(1, 'refused')])).toEqual([
      'dangling link y/link after a life in which no GC ran',
    ]);
  });

  it('any left after the final GC is a violation', () => {
    const d = new DanglingLinks();
    d.afterKill(1, ['z/link'], [gcInLife(1, 'maybe')]);
    expect(d.afterFinalGc(['z/link', 'w/link'])).toEqual([
      'dangling link z/link (found after cycle 1) not removed by the final GC',
      'dangling link w/link left by the final GC',
    ]);
  });
});
