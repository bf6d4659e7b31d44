/**
 * What is attached to an image, for the image page: the referrers (OCI 1.1 referrers API) classified as signatures
 * (cosign, notation), attestations and SBOMs (common/artifact-kinds.ts), and cosign's tag-scheme attachments
 * (`sha256-<hex>.sig`, `.att`, `.sbom` tags of the same repository). A signature found here is present, not verified:
 * the UI holds no keys; the registry's signature policy (`policies.signatures`) is what verifies.
 */
import { artifactKind, cosignTag, type ArtifactKind } from '../common/artifact-kinds.js';
import type { RegistryData } from './data.js';
import type { Descriptor } from './registry-client.js';

export interface Attachment {
  kind: ArtifactKind | undefined;
  /** The artifact type as the registry lists it, or the manifest's media type. */
  type: string;
  digest: string;
  size: number | undefined;
  created: string | undefined;
  /** How it is attached: `referrer`, or the cosign tag that names it. */
  via: 'referrer' | { tag: string };
}

const TAG_KINDS: readonly { suffix: 'sig' | 'att' | 'sbom'; kind: ArtifactKind }[] = [
  { suffix: 'sig', kind: 'cosign signature' },
  { suffix: 'att', kind: 'attestation' },
  { suffix: 'sbom', kind: 'sbom' },
];

export function referrerAttachments(referrers: readonly Descriptor[]): Attachment[] {
  return referrers.map((r) => ({
    kind: artifactKind(r.artifactType, r.annotations),
    type: r.artifactType ?? r.mediaType,
    digest: r.digest,
    size: r.size,
    created: r.annotations?.['org.opencontainers.image.created'],
    via: 'referrer',
  }));
}

/** cosign's tag-scheme attachments of `digest` in `name`; none when the tags cannot be listed. */
export async function tagAttachments(data: RegistryData, name: string, digest: string): Promise<Attachment[]> {
  const tags = new Set(await data.tags(name).catch(() => [] as string[]));
  const out: Attachment[] = [];
  for (const { suffix, kind } of TAG_KINDS) {
    const tag = cosignTag(digest, suffix);
    if (!tags.has(tag)) continue;
    const m = await data.manifest(name, tag).catch(() => undefined);
    if (!m) continue;
    out.push({ kind, type: m.mediaType, digest: m.digest, size: undefined, created: undefined, via: { tag } });
  }
  return out;
}

/** Which signers signed, in a fixed order, for the page's marks. */
export function signers(attachments: readonly Attachment[]): ('cosign' | 'notation')[] {
  const kinds = new Set(attachments.map((a) => a.kind));
  return (['cosign', 'notation'] as const).filter((s) => kinds.has(`${s} signature`));
}
