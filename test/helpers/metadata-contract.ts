import { describe, expect, it } from 'vitest';
import type { ManifestFacts, MetadataStore } from '../../src/registry/metadata/store.js';
import { transactionCases } from './metadata-transactions.js';
import { useCases } from './metadata-uses.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const L1 = `sha256:${'1'.repeat(64)}`;
const L2 = `sha256:${'2'.repeat(64)}`;

function facts(over: Partial<ManifestFacts> = {}): ManifestFacts {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 500,
    configDigest: L1,
    references: [
      { digest: L1, size: 100 },
      { digest: L2, size: 2000 },
    ],
    ...over,
  };
}

/**
 * The `MetadataStore` contract (which includes `RepositoryIndex`'s), run against every implementation: memory
 * and SQLite in the unit project, a real PostgreSQL in the integration project. `make` returns an empty store.
 */
export function metadataContract(label: string, make: () => Promise<MetadataStore>): void {
  describe(`metadata store contract: ${label}`, () => {
    indexCases(make);
    storeCases(make);
    snapshotCases(make);
    pullCases(make);
    stateCases(make);
    useCases(make);
    if (label !== 'memory') transactionCases(make);
  });
}

/** What `RepositoryIndex` promises. */
function indexCases(make: () => Promise<MetadataStore>): void {
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
    await index.close();
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
    // A GET by tag's one read: the target only when it is a revision of this repository.
    expect(await index.tagRevision('b', 'latest')).toBe(A);
    expect(await index.tagRevision('b', 'v2')).toBeUndefined();
    expect(await index.tagRevision('b', 'nope')).toBeUndefined();
    expect(await index.tagRevision('a', 'latest')).toBeUndefined();
    const record = await index.repository('b');
    expect(record?.lastPush).toBe(5000);
    expect([...(record?.revisions ?? [])]).toEqual([A]);
    await index.setLastPush('b', 9000);
    expect((await index.repository('b'))?.lastPush).toBe(9000);
    await index.close();
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
    expect(index.repositoryCount()).toBe(1);
    await index.close();
  });
}

/** The snapshot a backup copies. */
function snapshotCases(make: () => Promise<MetadataStore>): void {
  it('snapshots every repository with its tags and revisions, bytewise, as the per-repository reads see them', async () => {
    const index = await make();
    await index.addManifest('b/app', A, 1000, facts(), { tags: ['v1', 'V2'] });
    await index.addManifest('b/app', C, 1001, facts());
    await index.addManifest('a', B, 1002, facts(), { tags: ['latest'] });
    await index.setTag('a', '_x', B);
    const snap = await index.snapshot();
    expect(snap).toEqual([
      {
        name: 'a',
        tags: [
          ['_x', B],
          ['latest', B],
        ],
        revisions: [B],
      },
      {
        name: 'b/app',
        tags: [
          ['V2', A],
          ['v1', A],
        ],
        revisions: [A, C],
      },
    ]);
    for (const r of snap) {
      const record = await index.repository(r.name);
      expect(new Map(r.tags)).toEqual(record?.tags);
      expect(new Set(r.revisions)).toEqual(record?.revisions);
    }
    await index.removeRevision('b/app', C);
    expect((await index.snapshot())[1]?.revisions).toEqual([A]);
    await index.close();
  });
}

/** What the metadata store adds. */
function storeCases(make: () => Promise<MetadataStore>): void {
  it('pages the catalog and tags by keyset in bytewise order', async () => {
    const index = await make();
    // Bytewise: digits < upper case < '_' < lower case; a locale collation would interleave these.
    const names = ['b/x', 'a', 'a-b', 'a/b', 'a_b', 'a.b', 'ab', 'z9', 'z10'];
    for (const n of names) await index.setTag(n, 'latest', A);
    const bytewise = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(await index.catalog()).toEqual(bytewise);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await index.catalogPage(after, 4);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(4);
      seen.push(...page);
      after = page[page.length - 1];
    }
    expect(seen).toEqual(bytewise);
    expect(await index.catalogPage('a/b', 2)).toEqual(bytewise.slice(bytewise.indexOf('a/b') + 1).slice(0, 2));
    expect(await index.catalogPage('zzz', 10)).toEqual([]);

    const tags = ['v1', 'V2', 'latest', '1.0', '1.0-rc', 'Z', '_x'];
    for (const t of tags) await index.setTag('repo', t, B);
    const sortedTags = [...tags].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(await index.tags('repo')).toEqual(sortedTags);
    expect(await index.tagsPage('repo', undefined, 3)).toEqual(sortedTags.slice(0, 3));
    expect(await index.tagsPage('repo', sortedTags[2], 3)).toEqual(sortedTags.slice(3, 6));
    expect(await index.tagsPage('repo', sortedTags[6], 3)).toEqual([]);
    expect(await index.tagsPage('nope', undefined, 3)).toBeUndefined();
    await index.close();
  });

  it('keeps manifest facts: referrers of a subject, by digest, with their artifact types', async () => {
    const index = await make();
    await index.addManifest('r', A, 1000, facts());
    await index.addManifest('r', C, 1001, facts({ subject: A, artifactType: 'application/x-sbom', size: 300 }));
    await index.addManifest('r', B, 1002, facts({ subject: A, size: 200 }));
    await index.addManifest('other', B, 1003, facts({ subject: A }));
    expect(await index.referrers('r', A)).toEqual([
      { digest: B, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 200 },
      {
        digest: C,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 300,
        artifactType: 'application/x-sbom',
      },
    ]);
    expect(await index.referrers('r', B)).toEqual([]);
    expect(await index.referrers('missing', A)).toEqual([]);
    await index.removeRevision('r', C);
    expect((await index.referrers('r', A))?.map((x) => x.digest)).toEqual([B]);
    expect(await index.hasRevision('r', A)).toBe(true);
    await index.close();
  });

  it('answers usage, last push and last pull per repository', async () => {
    const index = await make();
    await index.addManifest('u', A, 4000, facts());
    // Shares L2 with A and adds L3: L2 counts once.
    const L3 = `sha256:${'3'.repeat(64)}`;
    await index.addManifest(
      'u',
      B,
      5000,
      facts({
        size: 700,
        references: [
          { digest: L2, size: 2000 },
          { digest: L3, size: 50 },
        ],
      }),
    );
    await index.setTag('u', 'latest', B);
    index.notePull('u', 6000);
    index.notePull('u', 5500);
    index.notePull('nope', 6000);
    const s = await index.stats('u');
    expect(s).toEqual({
      name: 'u',
      tags: 1,
      manifests: 2,
      lastPush: 5000,
      lastPull: 6000,
      bytes: 500 + 100 + 2000 + 700 + 50,
    });
    expect(await index.stats('nope')).toBeUndefined();
    await index.close();
  });
}

/** Last pulls of manifests (retention's keepPulledWithin). */
function pullCases(make: () => Promise<MetadataStore>): void {
  it('records the last pull of each manifest, at most one note a minute, kept through a flush', async () => {
    const index = await make();
    await index.addManifest('p', A, 1000, facts());
    await index.addManifest('p', B, 1000, facts());
    await index.addManifest('q', A, 1000, facts());
    index.noteManifestPull('p', A, 100_000);
    index.noteManifestPull('p', A, 130_000); // within the minute: may be dropped
    index.noteManifestPull('p', B, 100_000);
    index.noteManifestPull('p', B, 90_000); // earlier: never moves a time back
    index.noteManifestPull('p', C, 100_000); // not a manifest of the repository
    index.noteManifestPull('missing', A, 100_000);
    const first = await index.manifestPulls('p');
    expect(first.get(A)).toBeGreaterThanOrEqual(100_000);
    expect(first.get(A)).toBeLessThanOrEqual(130_000);
    expect(first.get(B)).toBe(100_000);
    await index.flush();
    expect(await index.manifestPulls('p')).toEqual(first);
    expect(first.has(C)).toBe(false);
    expect(await index.manifestPulls('q')).toEqual(new Map());
    expect(await index.manifestPulls('missing')).toEqual(new Map());
    index.noteManifestPull('p', A, 200_000);
    await index.flush();
    expect((await index.manifestPulls('p')).get(A)).toBe(200_000);
    await index.removeRevision('p', A);
    await index.addManifest('p', A, 300_000, facts());
    expect((await index.manifestPulls('p')).has(A)).toBe(false);
    // A rebuild from storage (importRepository) keeps what was pulled of the manifests it keeps.
    await index.flush();
    await index.importRepository('p', { tags: new Map(), revisions: new Set([A, B]), lastPush: 1 }, new Map());
    expect(await index.manifestPulls('p')).toEqual(new Map([[B, 100_000]]));
    await index.close();
  });
}

/** Intents, meta and imports. */
function stateCases(make: () => Promise<MetadataStore>): void {
  it('records intents until they end, oldest first', async () => {
    const index = await make();
    const a = await index.beginIntent('tag-put', 'x', 'v1');
    const b = await index.beginIntent('revision-delete', 'y', A);
    expect((await index.pendingIntents()).map((i) => [i.kind, i.name, i.key])).toEqual([
      ['tag-put', 'x', 'v1'],
      ['revision-delete', 'y', A],
    ]);
    await index.endIntent(a);
    expect((await index.pendingIntents()).map((i) => i.id)).toEqual([b]);
    await index.endIntent(b);
    expect(await index.pendingIntents()).toEqual([]);
    const c = await index.beginIntent('tag-delete', 'z', 'v9');
    const created = (await index.pendingIntents())[0]?.createdAt ?? 0;
    expect(await index.pendingIntents(created)).toEqual([]);
    expect((await index.pendingIntents(created + 1)).map((i) => i.id)).toEqual([c]);
    await index.close();
  });

  it('ends an intent with the write it guards, in the same call', async () => {
    const index = await make();
    const put = await index.beginIntent('revision-put', 'r', A);
    const tag = await index.beginIntent('tag-put', 'r', 'v1');
    await index.addManifest('r', A, 1000, facts(), { endIntents: [put] });
    expect((await index.pendingIntents()).map((i) => i.id)).toEqual([tag]);
    await index.setTag('r', 'v1', A, tag);
    expect(await index.pendingIntents()).toEqual([]);
    expect(await index.tagTarget('r', 'v1')).toBe(A);
    expect(await index.hasRevision('r', A)).toBe(true);
    await index.close();
  });

  it('begins several intents at once and ends them with the manifest and its tags, in one call', async () => {
    const index = await make();
    const other = await index.beginIntent('tag-delete', 'r', 'old');
    const ids = await index.beginIntents([
      { kind: 'revision-put', name: 'r', key: A },
      { kind: 'tag-put', name: 'r', key: 'v1' },
      { kind: 'tag-put', name: 'r', key: 'latest' },
    ]);
    expect((await index.pendingIntents()).map((i) => [i.id, i.kind, i.key])).toEqual([
      [other, 'tag-delete', 'old'],
      [ids[0], 'revision-put', A],
      [ids[1], 'tag-put', 'v1'],
      [ids[2], 'tag-put', 'latest'],
    ]);
    await index.addManifest('r', A, 1000, facts(), { tags: ['latest', 'v1'], endIntents: ids });
    expect((await index.pendingIntents()).map((i) => i.id)).toEqual([other]);
    expect(await index.tags('r')).toEqual(['latest', 'v1']);
    expect(await index.tagTarget('r', 'v1')).toBe(A);
    expect(await index.hasRevision('r', A)).toBe(true);
    await index.close();
  });

  it('runs exclusive sections of one name one at a time, and of other names alongside', async () => {
    const index = await make();
    const events: string[] = [];
    const section = (name: string, label: string) =>
      index.exclusive(name, async () => {
        events.push(`${label}+`);
        await new Promise((r) => setTimeout(r, 400));
        events.push(`${label}-`);
      });
    await Promise.all([section('import', 'a'), section('import', 'b'), section('other', 'c')]);
    const a = events.indexOf('a+');
    const b = events.indexOf('b+');
    const [first, second] = a < b ? ['a', 'b'] : ['b', 'a'];
    expect(events.indexOf(`${second}+`)).toBeGreaterThan(events.indexOf(`${first}-`));
    expect(events.indexOf('c+')).toBeLessThan(events.indexOf(`${first}-`));
    await index.close();
  });

  it('grants a lease to one holder at a time: others learn who holds it at once; released, it is free again', async () => {
    const index = await make();
    const first = await index.tryLease('gc', 'holder one');
    if (!('lease' in first)) throw new Error(`not granted: held by ${first.heldBy}`);
    expect(await index.tryLease('gc', 'holder two')).toEqual({ heldBy: 'holder one' });
    const other = await index.tryLease('other', 'holder three');
    expect('lease' in other).toBe(true);
    await first.lease.release();
    await first.lease.release();
    const second = await index.tryLease('gc', 'holder two');
    expect('lease' in second).toBe(true);
    expect(await index.tryLease('gc', 'holder one')).toEqual({ heldBy: 'holder two' });
    if ('lease' in second) await second.lease.release();
    if ('lease' in other) await other.lease.release();
    await index.close();
  });

  it('keeps its own state in meta', async () => {
    const index = await make();
    expect(await index.getMeta('import_state')).toBeUndefined();
    await index.setMeta('import_state', 'running');
    await index.setMeta('import_state', 'done');
    expect(await index.getMeta('import_state')).toBe('done');
    await index.close();
  });

  it('importRepository replaces a repository with what storage holds, facts included', async () => {
    const index = await make();
    await index.setTag('imp', 'stale', C);
    await index.addRevision('imp', C, 1);
    await index.importRepository(
      'imp',
      { tags: new Map([['v1', A]]), revisions: new Set([A, B]), lastPush: 777 },
      new Map([
        [A, facts()],
        [B, facts({ subject: A })],
      ]),
    );
    expect(await index.tags('imp')).toEqual(['v1']);
    expect(await index.hasRevision('imp', C)).toBe(false);
    expect((await index.referrers('imp', A))?.map((r) => r.digest)).toEqual([B]);
    expect((await index.repository('imp'))?.lastPush).toBe(777);
    await index.importRepository('imp', { tags: new Map(), revisions: new Set(), lastPush: 0 }, new Map());
    expect(await index.hasRepository('imp')).toBe(false);
    await index.close();
  });
}
