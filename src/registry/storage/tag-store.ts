/**
 * Tags (`_manifests/tags/<tag>/current/link` and its `index/` history): written after the manifest they point
 * at, removed one at a time or with their manifest. Each tag's writes and removals are serialized.
 *
 * A write goes intent → storage → metadata, a removal intent → metadata → storage (see metadata/store.ts), so
 * a crash between the steps leaves an intent that start-up recovery finishes.
 */
import { RegistryError } from '../errors.js';
import { parseDigest, type Digest } from '../reference.js';
import { putAll, type ContentEntry, type StorageDriver } from './driver.js';
import { KeyedLock } from './keyed-lock.js';
import { pathFor } from './paths.js';
import { revisionKey, tagKey, type MetadataStore } from '../metadata/store.js';

export class TagStore {
  private readonly lock = new KeyedLock();

  constructor(
    private readonly driver: StorageDriver,
    private readonly index: MetadataStore,
  ) {}

  /** The manifest `tag` points at, when it is a revision of the repository (one metadata read). */
  async resolve(name: string, tag: string): Promise<Digest | undefined> {
    const known = await this.index.tagRevision(name, tag);
    return known ? parseDigest(known) : undefined;
  }

  /** Points `tag` at `digest` (a revision already stored in the repository). */
  async set(name: string, tag: string, digest: Digest): Promise<void> {
    // The revision's key too: a delete of the revision on another replica must not run between the steps.
    await this.withTag(
      name,
      tag,
      async () => {
        const intent = await this.index.beginIntent('tag-put', name, tag);
        await putAll(this.driver, this.writes(name, tag, digest));
        await this.index.setTag(name, tag, digest.value, intent);
      },
      [revisionKey(name, digest.value)],
    );
  }

  /** Runs `fn` holding the tag's lock in this process and its key across replicas (holdKeys), and `more` keys. */
  private withTag<T>(name: string, tag: string, fn: () => Promise<T>, more: string[] = []): Promise<T> {
    const key = tagKey(name, tag);
    return this.lock.run(key, () => this.index.holdKeys([...more, key], fn));
  }

  /**
   * Runs `fn` holding the locks of several tags (a manifest PUT that moves them along with its own writes), taken
   * in sorted order so that two callers never wait on each other.
   */
  async holding<T>(name: string, tags: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(tags)].sort();
    const take = (i: number): Promise<T> =>
      i === sorted.length ? fn() : this.lock.run(tagKey(name, sorted[i] as string), () => take(i + 1));
    return take(0);
  }

  /** What storage holds for a tag pointing at `digest`: its history entry, then the current link (in that order). */
  writes(name: string, tag: string, digest: Digest): ContentEntry[] {
    return [
      { path: pathFor({ kind: 'tagIndexLink', name, tag, digest }), data: digest.value },
      { path: pathFor({ kind: 'tagCurrentLink', name, tag }), data: digest.value },
    ];
  }

  /** Removes one tag; the manifest it pointed at stays. */
  async delete(name: string, tag: string): Promise<void> {
    if (!(await this.index.hasRepository(name))) throw new RegistryError('NAME_UNKNOWN', { name });
    if ((await this.index.tagTarget(name, tag)) === undefined) throw new RegistryError('MANIFEST_UNKNOWN', { tag });
    await this.withTag(name, tag, () => this.remove(name, tag));
  }

  /** Removes every tag pointing at `digest` (its manifest is being deleted); returns them, sorted. */
  async deletePointingAt(name: string, digest: Digest): Promise<string[]> {
    const removed: string[] = [];
    const record = await this.index.repository(name);
    for (const [tag, d] of [...(record?.tags ?? [])]) {
      if (d !== digest.value) continue;
      await this.withTag(name, tag, async () => {
        // A write on any replica may have moved the tag since the listing; it then stays.
        if ((await this.index.tagTarget(name, tag)) !== digest.value) return;
        await this.remove(name, tag);
        removed.push(tag);
      });
    }
    return removed.sort();
  }

  /** When a tag of the repository last moved (from the tag links' times; 0 when it has no tags). */
  async lastPush(name: string): Promise<number> {
    const record = await this.index.repository(name);
    if (!record) return 0;
    if (record.lastPush > 0) return record.lastPush;
    let latest = 0;
    for (const tag of record.tags.keys()) {
      try {
        latest = Math.max(
          latest,
          (await this.driver.stat(pathFor({ kind: 'tagCurrentLink', name, tag }))).modifiedAt.getTime(),
        );
      } catch {
        // raced with a delete
      }
    }
    await this.index.setLastPush(name, latest);
    return latest;
  }

  private async remove(name: string, tag: string): Promise<void> {
    const intent = await this.index.beginIntent('tag-delete', name, tag);
    await this.index.removeTag(name, tag);
    await this.driver.delete(pathFor({ kind: 'tagDir', name, tag }));
    await this.index.endIntent(intent);
  }
}
