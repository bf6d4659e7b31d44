/** The facts the metadata store keeps about a manifest, taken from its parsed form. */
import { effectiveArtifactType, type ManifestInfo } from '../manifest.js';
import type { ManifestFacts } from './store.js';

export function manifestFacts(info: ManifestInfo, size: number): ManifestFacts {
  const facts: ManifestFacts = {
    mediaType: info.mediaType,
    size,
    references: [...info.blobs, ...info.children].map((d) => ({ digest: d.digest, size: d.size })),
  };
  const config = info.isIndex ? undefined : info.blobs[0]?.digest;
  if (config !== undefined) facts.configDigest = config;
  if (info.subject) facts.subject = info.subject.digest;
  const type = effectiveArtifactType(info);
  if (type !== undefined) facts.artifactType = type;
  return facts;
}
