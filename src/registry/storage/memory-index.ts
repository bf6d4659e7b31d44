/**
 * The repository index held in this process's memory: built from storage at start-up and updated on every
 * write, for a registry that is the only writer of its storage.
 */
import type { RepositoryIndex, RepositoryRecord } from './repository-index.js';

interface Entry {
  tags: Map<string, string>;
  revisions: Set<string>;
  lastPush: number;
}

export class MemoryIndex implements RepositoryIndex {
  private readonly repos = new Map<string, Entry>();
  private catalogCache: string[] | undefined;
  private readonly lastUse = new Map<string, number>();

  async catalog(): Promise<string[]> {
    this.catalogCache ??= [...this.repos.keys()].sort();
    return this.catalogCache;
  }

  repositoryCount(): number {
    return this.repos.size;
  }

  async hasRepository(name: string): Promise<boolean> {
    return this.repos.has(name);
  }

  async repository(name: string): Promise<RepositoryRecord | undefined> {
    return this.repos.get(name);
  }

  async tags(name: string): Promise<string[] | undefined> {
    const e = this.repos.get(name);
    return e ? [...e.tags.keys()].sort() : undefined;
  }

  async tagTarget(name: string, tag: string): Promise<string | undefined> {
    return this.repos.get(name)?.tags.get(tag);
  }

  async hasRevision(name: string, digest: string): Promise<boolean> {
    return this.repos.get(name)?.revisions.has(digest) ?? false;
  }

  async addRevision(name: string, digest: string, at: number): Promise<void> {
    const e = this.entry(name);
    e.revisions.add(digest);
    e.lastPush = at;
  }

  async removeRevision(name: string, digest: string): Promise<void> {
    this.repos.get(name)?.revisions.delete(digest);
    this.dropIfEmpty(name);
  }

  async setTag(name: string, tag: string, digest: string): Promise<void> {
    this.entry(name).tags.set(tag, digest);
  }

  async removeTag(name: string, tag: string): Promise<void> {
    this.repos.get(name)?.tags.delete(tag);
    this.dropIfEmpty(name);
  }

  async setLastPush(name: string, at: number): Promise<void> {
    const e = this.repos.get(name);
    if (e) e.lastPush = at;
  }

  async clear(): Promise<void> {
    this.repos.clear();
    this.catalogCache = undefined;
  }

  async load(name: string, record: RepositoryRecord): Promise<void> {
    if (record.tags.size === 0 && record.revisions.size === 0) return;
    this.repos.set(name, {
      tags: new Map(record.tags),
      revisions: new Set(record.revisions),
      lastPush: record.lastPush,
    });
    this.catalogCache = undefined;
  }

  noteUse(digest: string, at = Date.now()): void {
    this.lastUse.set(digest, at);
  }

  async usedSince(digest: string, since: number): Promise<boolean> {
    return (this.lastUse.get(digest) ?? 0) >= since;
  }

  async pruneUses(before: number): Promise<void> {
    for (const [d, t] of this.lastUse) if (t < before) this.lastUse.delete(d);
  }

  private entry(name: string): Entry {
    let e = this.repos.get(name);
    if (!e) {
      e = { tags: new Map(), revisions: new Set(), lastPush: 0 };
      this.repos.set(name, e);
      this.catalogCache = undefined;
    }
    return e;
  }

  private dropIfEmpty(name: string): void {
    const e = this.repos.get(name);
    if (e && e.tags.size === 0 && e.revisions.size === 0) {
      this.repos.delete(name);
      this.catalogCache = undefined;
    }
  }
}
