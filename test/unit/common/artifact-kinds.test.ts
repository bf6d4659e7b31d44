import { describe, expect, it } from 'vitest';
import { artifactKind, cosignTag, isAttachmentTag, isSignatureKind } from '../../../src/common/artifact-kinds.js';

const HEX = 'a'.repeat(64);

describe('artifact kinds', () => {
  it('names signatures, attestations and SBOMs by artifact type and bundle predicate', () => {
    expect(artifactKind('application/vnd.dev.cosign.artifact.sig.v1+json')).toBe('cosign signature');
    expect(artifactKind('application/vnd.cncf.notary.signature')).toBe('notation signature');
    const bundle = 'application/vnd.dev.sigstore.bundle.v0.3+json';
    const predicate = (p: string) => ({ 'dev.sigstore.bundle.predicateType': p });
    expect(artifactKind(bundle, predicate('https://sigstore.dev/cosign/sign/v1'))).toBe('cosign signature');
    expect(artifactKind(bundle, predicate('https://slsa.dev/provenance/v1'))).toBe('attestation');
    expect(artifactKind(bundle, predicate('https://spdx.dev/Document'))).toBe('sbom');
    expect(artifactKind(bundle)).toBe('attestation');
    expect(artifactKind('application/spdx+json')).toBe('sbom');
    expect(artifactKind('application/vnd.cyclonedx+json')).toBe('sbom');
    expect(artifactKind('application/vnd.in-toto+json')).toBe('attestation');
    expect(artifactKind('application/vnd.example.thing')).toBeUndefined();
    expect(artifactKind(undefined)).toBeUndefined();
    expect(isSignatureKind('notation signature')).toBe(true);
    expect(isSignatureKind('sbom')).toBe(false);
  });

  it("knows cosign's attachment tags", () => {
    expect(cosignTag(`sha256:${HEX}`, 'sig')).toBe(`sha256-${HEX}.sig`);
    expect(isAttachmentTag(`sha256-${HEX}.sig`)).toBe(true);
    expect(isAttachmentTag(`sha256-${HEX}`)).toBe(true);
    expect(isAttachmentTag(`sha256-${HEX.slice(1)}.sig`)).toBe(false);
    expect(isAttachmentTag('v1.sig')).toBe(false);
  });
});
