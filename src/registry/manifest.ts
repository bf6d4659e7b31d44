/**
 * Manifest media types and validation. Accepted: Docker schema2 manifest and manifest list, OCI image
 * manifest and index (including artifacts carrying `artifactType` and `subject`). Schema1 is refused.
 */
import { INDEX_TYPES, MANIFEST_TYPES, MEDIA_TYPES } from '../common/media-types.js';
import { RegistryError } from './errors.js';
import { parseDigest, type Digest } from './reference.js';

export { MANIFEST_TYPES, MEDIA_TYPES };

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** What the registry needs to know about a stored manifest, parsed once and cached by digest. */
export interface ManifestInfo {
  mediaType: string;
  isIndex: boolean;
  /** Blobs (config and layers) for image manifests. */
  blobs: Descriptor[];
  /** Child manifests for indexes. */
  children: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** OCI annotations are a string-to-string map; anything else is refused rather than stored and served back. */
function annotationsOf(v: unknown, where: string): Record<string, string> {
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `${where} annotations must map strings to strings` });
  }
  return v as Record<string, string>;
}

function descriptor(v: unknown, where: string): Descriptor {
  if (!isRecord(v)) throw new RegistryError('MANIFEST_INVALID', { reason: `${where} is not a descriptor` });
  const { mediaType, digest, size } = v;
  if (
    typeof mediaType !== 'string' ||
    typeof digest !== 'string' ||
    typeof size !== 'number' ||
    !Number.isSafeInteger(size) ||
    size < 0
  ) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `${where} needs mediaType, digest and size` });
  }
  try {
    parseDigest(digest);
  } catch {
    throw new RegistryError('MANIFEST_INVALID', { reason: `${where} has an invalid digest ${digest}` });
  }
  const d: Descriptor = { mediaType, digest, size };
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  if (v.annotations !== undefined && v.annotations !== null) d.annotations = annotationsOf(v.annotations, where);
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isRecord(v.platform)) d.platform = v.platform;
  return d;
}

/**
 * Parses and validates a manifest body. `contentType` is the request's Content-Type (may be empty); when the
 * body carries `mediaType` too they must agree (as registry:2, which refuses a manifest sent as text/plain).
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ManifestInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('MANIFEST_INVALID', { reason: 'body is not valid JSON' });
  }
  if (!isRecord(doc)) throw new RegistryError('MANIFEST_INVALID', { reason: 'manifest is not a JSON object' });
  const ct = contentType?.split(';')[0]?.trim() || undefined;
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (ct && declared && ct !== declared) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `Content-Type ${ct} does not match mediaType ${declared}` });
  }
  const mediaType =
    declared ??
    (ct && MANIFEST_TYPES.includes(ct)
      ? ct
      : Array.isArray(doc.manifests)
        ? MEDIA_TYPES.ociIndex
        : MEDIA_TYPES.ociManifest);
  if (!MANIFEST_TYPES.includes(mediaType)) {
    throw new RegistryError('MANIFEST_INVALID', { reason: `unsupported manifest media type ${mediaType}` });
  }
  if (doc.schemaVersion !== 2) throw new RegistryError('MANIFEST_INVALID', { reason: 'schemaVersion must be 2' });
  const info: ManifestInfo = { mediaType, isIndex: INDEX_TYPES.has(mediaType), blobs: [], children: [] };
  if (info.isIndex) {
    if (!Array.isArray(doc.manifests))
      throw new RegistryError('MANIFEST_INVALID', { reason: 'an index needs a manifests array' });
    info.children = doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
  } else {
    info.blobs.push(descriptor(doc.config, 'config'));
    if (!Array.isArray(doc.layers))
      throw new RegistryError('MANIFEST_INVALID', { reason: 'an image manifest needs a layers array' });
    for (const [i, l] of doc.layers.entries()) info.blobs.push(descriptor(l, `layers[${i}]`));
  }
  if (doc.subject !== undefined) info.subject = descriptor(doc.subject, 'subject');
  if (typeof doc.artifactType === 'string') info.artifactType = doc.artifactType;
  if (doc.annotations !== undefined && doc.annotations !== null)
    info.annotations = annotationsOf(doc.annotations, 'manifest');
  return info;
}

/** The artifactType a referrers listing reports: the manifest's own, else an image manifest's config type. */
export function effectiveArtifactType(info: ManifestInfo): string | undefined {
  if (info.artifactType) return info.artifactType;
  if (!info.isIndex) return info.blobs[0]?.mediaType;
  return undefined;
}

/** Layers that live elsewhere (foreign / non-distributable with URLs) need not be in the registry. */
export function mustExist(d: Descriptor): boolean {
  return !(d.urls && d.urls.length > 0 && /foreign|nondistributable/.test(d.mediaType));
}

export function digestOf(d: Descriptor): Digest {
  return parseDigest(d.digest);
}
