/**
 * Distribution's on-disk layout, produced by one pure function. Paths are relative to the data directory
 * and always use `/`. A "link" file holds only a digest string (`sha256:<hex>`), exactly as registry:2 writes
 * it, so a directory written by registry:2 is served as is and vice versa.
 *
 * <data>/docker/registry/v2/
 *   blobs/<alg>/<hex[0:2]>/<hex>/data                          blob and manifest content, shared by all repositories
 *   repositories/<name>/                                       <name> may contain slashes
 *     _layers/<alg>/<hex>/link                                 blob linked into the repository
 *     _manifests/revisions/<alg>/<hex>/link                    manifest revision present in the repository
 *     _manifests/tags/<tag>/current/link                       what the tag points at now
 *     _manifests/tags/<tag>/index/<alg>/<hex>/link             every manifest the tag has pointed at
 *     _manifests/referrers/<alg>/<subjecthex>/<alg>/<hex>/link referrers index (ours; registry:2 ignores it)
 *     _uploads/<uuid>/data                                     upload in progress
 *     _uploads/<uuid>/startedat                                RFC 3339 start time
 *     _uploads/<uuid>/hashstates/<alg>/<offset>                (registry:2 only; we keep hash state in memory)
 * <data>/docker/registry/regctl/metadata-id                  (ours) which metadata store imported this storage
 */
import type { Digest } from '../reference.js';

export const ROOT = 'docker/registry/v2';

export type PathSpec =
  | { kind: 'blobsRoot' }
  | { kind: 'blobData'; digest: Digest }
  | { kind: 'blobDir'; digest: Digest }
  | { kind: 'repositoriesRoot' }
  | { kind: 'repository'; name: string }
  | { kind: 'layersRoot'; name: string }
  | { kind: 'layerLink'; name: string; digest: Digest }
  | { kind: 'revisionsRoot'; name: string }
  | { kind: 'revisionLink'; name: string; digest: Digest }
  | { kind: 'revisionDir'; name: string; digest: Digest }
  | { kind: 'tagsRoot'; name: string }
  | { kind: 'tagDir'; name: string; tag: string }
  | { kind: 'tagCurrentLink'; name: string; tag: string }
  | { kind: 'tagIndexLink'; name: string; tag: string; digest: Digest }
  | { kind: 'referrersRoot'; name: string }
  | { kind: 'referrersDir'; name: string; subject: Digest }
  | { kind: 'referrerLink'; name: string; subject: Digest; digest: Digest }
  | { kind: 'uploadsRoot'; name: string }
  | { kind: 'uploadDir'; name: string; id: string }
  | { kind: 'uploadData'; name: string; id: string }
  | { kind: 'uploadStartedAt'; name: string; id: string }
  | { kind: 'metadataMarker' };

export function pathFor(spec: PathSpec): string {
  const repo = (name: string) => `${ROOT}/repositories/${name}`;
  const d = (digest: Digest) => `${digest.algorithm}/${digest.hex}`;
  switch (spec.kind) {
    case 'blobsRoot':
      return `${ROOT}/blobs`;
    case 'metadataMarker':
      // Beside v2, not in it: distribution never reads it, and a restore (which replaces docker/) drops it.
      return 'docker/registry/regctl/metadata-id';
    case 'blobDir':
      return `${ROOT}/blobs/${spec.digest.algorithm}/${spec.digest.hex.slice(0, 2)}/${spec.digest.hex}`;
    case 'blobData':
      return `${ROOT}/blobs/${spec.digest.algorithm}/${spec.digest.hex.slice(0, 2)}/${spec.digest.hex}/data`;
    case 'repositoriesRoot':
      return `${ROOT}/repositories`;
    case 'repository':
      return repo(spec.name);
    case 'layersRoot':
      return `${repo(spec.name)}/_layers`;
    case 'layerLink':
      return `${repo(spec.name)}/_layers/${d(spec.digest)}/link`;
    case 'revisionsRoot':
      return `${repo(spec.name)}/_manifests/revisions`;
    case 'revisionDir':
      return `${repo(spec.name)}/_manifests/revisions/${d(spec.digest)}`;
    case 'revisionLink':
      return `${repo(spec.name)}/_manifests/revisions/${d(spec.digest)}/link`;
    case 'tagsRoot':
      return `${repo(spec.name)}/_manifests/tags`;
    case 'tagDir':
      return `${repo(spec.name)}/_manifests/tags/${spec.tag}`;
    case 'tagCurrentLink':
      return `${repo(spec.name)}/_manifests/tags/${spec.tag}/current/link`;
    case 'tagIndexLink':
      return `${repo(spec.name)}/_manifests/tags/${spec.tag}/index/${d(spec.digest)}/link`;
    case 'referrersRoot':
      return `${repo(spec.name)}/_manifests/referrers`;
    case 'referrersDir':
      return `${repo(spec.name)}/_manifests/referrers/${d(spec.subject)}`;
    case 'referrerLink':
      return `${repo(spec.name)}/_manifests/referrers/${d(spec.subject)}/${d(spec.digest)}/link`;
    case 'uploadsRoot':
      return `${repo(spec.name)}/_uploads`;
    case 'uploadDir':
      return `${repo(spec.name)}/_uploads/${spec.id}`;
    case 'uploadData':
      return `${repo(spec.name)}/_uploads/${spec.id}/data`;
    case 'uploadStartedAt':
      return `${repo(spec.name)}/_uploads/${spec.id}/startedat`;
  }
}
