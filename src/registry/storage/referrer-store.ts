/**
 * The referrers API: manifests of a repository whose `subject` is a given digest, found through the referrer
 * links written beside each such manifest (`_manifests/referrers/<subject>/<alg>/<hex>/link`).
 */
import { MEDIA_TYPES, effectiveArtifactType, type Descriptor } from '../manifest.js';
import { tryParseDigest, type Digest } from '../reference.js';
import type { StorageDriver } from './driver.js';
import { childDirs } from './links.js';
import type { ManifestStore } from './manifest-store.js';
import { pathFor } from './paths.js';
import type { MetadataStore } from '../metadata/store.js';

export class ReferrerStore {
  constructor(
    private readonly driver: StorageDriver,
    private readonly index: MetadataStore,
    private readonly manifests: ManifestStore,
  ) {}

  /** Descriptors of the manifests in `name` whose subject is `subject`, optionally of one artifactType, by digest. */
  async list(name: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const known = await this.index.referrers(name, subject.value);
    if (known) {
      const out: Descriptor[] = [];
      for (const r of known) {
        if (artifactType !== undefined && r.artifactType !== artifactType) continue;
        const desc: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
        if (r.artifactType !== undefined) desc.artifactType = r.artifactType;
        const d = tryParseDigest(r.digest);
        const annotations = d ? (await this.manifests.read(d))?.info.annotations : undefined;
        if (annotations) desc.annotations = annotations;
        out.push(desc);
      }
      return out;
    }
    return this.listFromStorage(name, subject, artifactType);
  }

  /** The same, from the referrer links in storage (a store without manifest facts for the repository). */
  private async listFromStorage(name: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const dir = pathFor({ kind: 'referrersDir', name, subject });
    const out: Descriptor[] = [];
    for (const alg of await childDirs(this.driver, dir)) {
      for (const hex of await childDirs(this.driver, `${dir}/${alg}`)) {
        const d = tryParseDigest(`${alg}:${hex}`);
        if (!d || !(await this.index.hasRevision(name, d.value))) continue;
        const m = await this.manifests.read(d);
        if (!m || m.info.subject?.digest !== subject.value) continue;
        const type = effectiveArtifactType(m.info);
        if (artifactType !== undefined && type !== artifactType) continue;
        const desc: Descriptor = { mediaType: m.mediaType, digest: d.value, size: m.body.length };
        if (type) desc.artifactType = type;
        if (m.info.annotations) desc.annotations = m.info.annotations;
        out.push(desc);
      }
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }
}

/** The referrers response body: an OCI index of the descriptors. */
export function referrersIndex(descriptors: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: descriptors }));
}
