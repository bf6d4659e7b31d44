/**
 * What a referrer (or a cosign attachment tag) is, from its artifact type: read by the registry's signature policy
 * (registry/policy/signatures.ts) and by the UI's image page, so both call the same things signatures.
 */

export const COSIGN_SIGNATURE_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
export const COSIGN_SIMPLESIGNING_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const NOTATION_SIGNATURE_TYPE = 'application/vnd.cncf.notary.signature';
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';
/** The manifest annotation naming a sigstore bundle's in-toto predicate; cosign's image signature is COSIGN_SIGN_PREDICATE. */
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

export type ArtifactKind = 'cosign signature' | 'notation signature' | 'attestation' | 'sbom';

const ATTESTATION = /in-toto|attestation|\.att\b|slsa|provenance|vuln/i;
const SBOM = /spdx|cyclonedx|sbom|syft/i;

/**
 * The kind of a referrer by its artifact type (and, for a sigstore bundle, the predicate its annotations name: cosign
 * v3 signs an image as a bundle with the predicate COSIGN_SIGN_PREDICATE, and attests with others); undefined for
 * anything else (shown as its type alone).
 */
export function artifactKind(
  artifactType: string | undefined,
  annotations?: Readonly<Record<string, string>>,
): ArtifactKind | undefined {
  if (!artifactType) return undefined;
  if (artifactType === COSIGN_SIGNATURE_TYPE) return 'cosign signature';
  if (artifactType === NOTATION_SIGNATURE_TYPE) return 'notation signature';
  if (artifactType.startsWith(SIGSTORE_BUNDLE_PREFIX)) {
    const predicate = annotations?.[BUNDLE_PREDICATE_ANNOTATION] ?? '';
    if (predicate === COSIGN_SIGN_PREDICATE) return 'cosign signature';
    return SBOM.test(predicate) ? 'sbom' : 'attestation';
  }
  if (SBOM.test(artifactType)) return 'sbom';
  if (ATTESTATION.test(artifactType)) return 'attestation';
  return undefined;
}

/** True for the signature kinds. */
export function isSignatureKind(kind: ArtifactKind | undefined): boolean {
  return kind === 'cosign signature' || kind === 'notation signature';
}

/** cosign's tag scheme: `sha256-<hex>.sig` (signature), `.att` (attestation), `.sbom` for the manifest `digest`. */
export function cosignTag(digest: string, suffix: 'sig' | 'att' | 'sbom'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

/** Whether `tag` is one of cosign's attachment tags (or the referrers fallback tag `sha256-<hex>`). */
export function isAttachmentTag(tag: string): boolean {
  return /^sha256-[0-9a-f]{64}(\.[a-z]+)?$/.test(tag);
}
