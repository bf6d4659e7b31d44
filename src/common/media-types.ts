/**
 * The manifest media types the registry stores and the clients (ops, UI) ask for. One table for the whole
 * project: Docker schema 2 manifest and manifest list, OCI image manifest and index, and the OCI empty
 * descriptor used by artifacts.
 */
export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Every manifest media type the registry accepts, indexes first (the order an `Accept` header lists them). */
export const MANIFEST_TYPES: readonly string[] = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.dockerManifest,
];

/** Media types of manifests that list other manifests. */
export const INDEX_TYPES: ReadonlySet<string> = new Set<string>([MEDIA_TYPES.dockerList, MEDIA_TYPES.ociIndex]);
