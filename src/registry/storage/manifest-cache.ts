/**
 * Parsed manifests by digest, least recently used first out. Manifests are content-addressed, so an entry
 * never goes stale; the cache is cleared when GC or a repair may have removed what it holds.
 */
import type { ManifestInfo } from '../manifest.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  info: ManifestInfo;
}

/**
 * Manifests are small (a few KiB) and parsed once, so the cache is bounded by an estimate of what each entry
 * holds, not by body bytes alone: 4 MiB is about 2,000 typical manifests, the hot set of a team's registry
 * (a miss costs one file read). A larger bound showed up whole in the server's peak RSS under load.
 */
const LIMIT_BYTES = 4 * 1024 * 1024;
const ENTRY_OVERHEAD = 1024;

/** What an entry is counted as holding: its body and the parsed form beside it. */
const cost = (m: StoredManifest): number => m.body.length + ENTRY_OVERHEAD;

export class ManifestCache {
  private readonly entries = new Map<string, StoredManifest>();
  private bytes = 0;

  get(digest: string): StoredManifest | undefined {
    const cached = this.entries.get(digest);
    if (cached) {
      // Least recently used goes first: a hit moves the entry to the end of the Map's order.
      this.entries.delete(digest);
      this.entries.set(digest, cached);
    }
    return cached;
  }

  add(m: StoredManifest): void {
    if (this.entries.has(m.digest)) return;
    // A small body may be a slice of a larger shared buffer (a request's chunks, Node's buffer pool): the cache
    // keeps a copy of its own so that it does not hold the rest of that buffer alive.
    if (m.body.byteLength < m.body.buffer.byteLength) {
      const own = Buffer.allocUnsafeSlow(m.body.length);
      m.body.copy(own);
      m = { ...m, body: own };
    }
    this.entries.set(m.digest, m);
    this.bytes += cost(m);
    for (const [key, old] of this.entries) {
      if (this.bytes <= LIMIT_BYTES) break;
      this.entries.delete(key);
      this.bytes -= cost(old);
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
