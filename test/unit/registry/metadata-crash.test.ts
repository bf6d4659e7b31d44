import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetadataStore } from '../../../src/registry/metadata/store.js';
import { importStorage } from '../../../src/registry/metadata/startup.js';
import { pathExists } from '../../../src/registry/storage/links.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { countingDriver, failingOnce, OCI_MANIFEST, pushImage, Volume } from './metadata-fixture.js';

/**
 * A crash between the storage step and the metadata step of a write or a delete, simulated by throwing between
 * them, leaves an intent; the next start finishes the write from storage, or finishes the delete in storage, so
 * the metadata and storage agree again and a rebuild from storage does not bring a deleted tag back.
 */
describe('metadata store: crash between storage and metadata', () => {
  let vol: Volume;
  beforeEach(async () => {
    vol = await Volume.create();
    const app = await vol.start();
    await pushImage(app.store, 'team/app', 'v1');
    await vol.stop(app);
  });
  afterEach(() => vol.remove());

  it('a tag written to storage but not to the metadata is recorded at the next start', async () => {
    const crashed = await vol.start({ wrapStore: (s) => failingOnce<MetadataStore>(s, 'setTag') });
    const v1 = await crashed.store.tags.resolve('team/app', 'v1');
    await expect(crashed.store.tags.set('team/app', 'v2', v1!)).rejects.toThrow(/simulated crash/);
    expect(await crashed.store.index.tagTarget('team/app', 'v2')).toBeUndefined();
    expect(await crashed.store.index.pendingIntents()).toHaveLength(1);
    await vol.stop(crashed);

    const logs: string[] = [];
    const app = await vol.start({ logs });
    expect(await app.store.index.tagTarget('team/app', 'v2')).toBe(v1?.value);
    expect(await app.store.index.pendingIntents()).toEqual([]);
    expect(logs).toContainEqual(expect.stringContaining('finished writes an earlier process left half done'));
    await vol.stop(app);
  });

  it('a manifest stored but not recorded is recorded at the next start, facts and referrers included', async () => {
    const first = await vol.start();
    const subject = (await first.store.tags.resolve('team/app', 'v1'))!;
    const subjectSize = (await first.store.manifests.read(subject))!.body.length;
    await vol.stop(first);
    const crashed = await vol.start({ wrapStore: (s) => failingOnce<MetadataStore>(s, 'addManifest') });
    await expect(
      pushImage(crashed.store, 'team/app', 'sig', { digest: subject.value, size: subjectSize }),
    ).rejects.toThrow(/simulated crash/);
    expect(await crashed.store.index.referrers('team/app', subject.value)).toEqual([]);
    await vol.stop(crashed);

    const app = await vol.start();
    const referrers = await app.store.index.referrers('team/app', subject.value);
    expect(referrers).toHaveLength(1);
    expect(await app.store.index.hasRevision('team/app', referrers![0]!.digest)).toBe(true);
    await vol.stop(app);
  });

  it('a manifest PUT with several tags, stored but not recorded, is recorded whole at the next start', async () => {
    const first = await vol.start();
    const v1 = (await first.store.tags.resolve('team/app', 'v1'))!;
    const body = (await first.store.manifests.read(v1))!.body;
    await vol.stop(first);
    const crashed = await vol.start({ wrapStore: (s) => failingOnce<MetadataStore>(s, 'addManifest') });
    // The same manifest again, by digest with two more tags: its revision and both tags are in storage only.
    await expect(
      crashed.store.manifests.put('team/app', { digest: v1 }, body, OCI_MANIFEST, ['stable', 'prod']),
    ).rejects.toThrow(/simulated crash/);
    expect(await crashed.store.index.tagTarget('team/app', 'stable')).toBeUndefined();
    expect((await crashed.store.index.pendingIntents()).map((i) => [i.kind, i.key])).toEqual([
      ['revision-put', v1.value],
      ['tag-put', 'prod'],
      ['tag-put', 'stable'],
    ]);
    await vol.stop(crashed);

    const app = await vol.start();
    expect(await app.store.index.tags('team/app')).toEqual(['prod', 'stable', 'v1']);
    expect(await app.store.index.tagTarget('team/app', 'prod')).toBe(v1.value);
    expect(await app.store.index.pendingIntents()).toEqual([]);
    await vol.stop(app);
  });

  it('a tag deleted from the metadata but not from storage is deleted from storage at the next start', async () => {
    const tagDir = pathFor({ kind: 'tagDir', name: 'team/app', tag: 'v1' });
    const crashing = countingDriver(vol.storage, { method: 'delete', path: (p) => p === tagDir });
    const crashed = await vol.start({ driver: crashing.driver });
    await expect(crashed.store.tags.delete('team/app', 'v1')).rejects.toThrow(/simulated crash/);
    expect(await crashed.store.index.tagTarget('team/app', 'v1')).toBeUndefined();
    expect(await pathExists(vol.storage, tagDir)).toBe(true);
    await vol.stop(crashed);

    const app = await vol.start();
    expect(await pathExists(vol.storage, tagDir)).toBe(false);
    // A rebuild from storage (regctl fsck --rebuild-metadata) does not bring the deleted tag back.
    await importStorage(app.store);
    expect(await app.store.index.tagTarget('team/app', 'v1')).toBeUndefined();
    await vol.stop(app);
  });

  it('a manifest deleted from the metadata but not from storage is deleted from storage at the next start', async () => {
    const first = await vol.start();
    const digest = (await first.store.tags.resolve('team/app', 'v1'))!;
    await vol.stop(first);
    const revDir = pathFor({ kind: 'revisionDir', name: 'team/app', digest });
    const crashing = countingDriver(vol.storage, { method: 'delete', path: (p) => p === revDir });
    const crashed = await vol.start({ driver: crashing.driver });
    await expect(crashed.store.manifests.delete('team/app', digest)).rejects.toThrow(/simulated crash/);
    expect(await pathExists(vol.storage, revDir)).toBe(true);
    await vol.stop(crashed);

    const app = await vol.start();
    expect(await pathExists(vol.storage, revDir)).toBe(false);
    expect(await app.store.index.hasRevision('team/app', digest.value)).toBe(false);
    await importStorage(app.store);
    expect(await app.store.index.hasRevision('team/app', digest.value)).toBe(false);
    await vol.stop(app);
  });

  it('a tag write killed between its index link and its current link leaves nothing after the next start', async () => {
    const current = pathFor({ kind: 'tagCurrentLink', name: 'team/app', tag: 'half' });
    const crashing = countingDriver(vol.storage, { method: 'putContent', path: (p) => p === current });
    const crashed = await vol.start({ driver: crashing.driver });
    const v1 = (await crashed.store.tags.resolve('team/app', 'v1'))!;
    await expect(crashed.store.tags.set('team/app', 'half', v1)).rejects.toThrow(/simulated crash/);
    const tagDir = pathFor({ kind: 'tagDir', name: 'team/app', tag: 'half' });
    expect(await pathExists(vol.storage, tagDir)).toBe(true);
    await vol.stop(crashed);

    const app = await vol.start();
    expect(await pathExists(vol.storage, tagDir)).toBe(false);
    expect(await app.store.index.tags('team/app')).toEqual(['v1']);
    await vol.stop(app);
  });
});
