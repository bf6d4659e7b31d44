/**
 * Signature verification for `policies.signatures` (common/policies.ts): does a manifest of a repository carry a
 * valid signature by one of a rule's keys? Two signers are understood, both found in the repository itself:
 *
 * - cosign v3's default, a sigstore bundle referrer (artifactType `application/vnd.dev.sigstore.bundle.v0.3+json`,
 *   annotation `dev.sigstore.bundle.predicateType: https://sigstore.dev/cosign/sign/v1`): its layer is the bundle
 *   JSON, whose DSSE envelope carries an in-toto statement naming the subject's sha256 and the predicate above; each
 *   signature is over the envelope's PAE encoding (DSSE v1), checked against the key as below.
 * - cosign, simple signing with a key pair: a signature manifest, either a referrer of the subject (artifactType
 *   `application/vnd.dev.cosign.artifact.sig.v1+json`, `--registry-referrers-mode=oci-1-1`) or tagged
 *   `sha256-<hex>.sig` (cosign's tag scheme). Each layer of type `…cosign.simplesigning.v1+json` is a JSON payload
 *   whose `critical.image.docker-manifest-digest` names the subject; its annotation
 *   `dev.cosignproject.cosign/signature` is the base64 DER signature of the payload bytes (SHA-256; ECDSA P-256 as
 *   `cosign generate-key-pair` makes, RSA PKCS#1 v1.5 also accepted).
 * - notation, JWS envelopes (`application/jose+json` layers of a referrer with artifactType
 *   `application/vnd.cncf.notary.signature`): the payload's `targetArtifact.digest` names the subject, the leaf
 *   certificate of `x5c` signs `protected.payload` (PS256/384/512 or ES256/384/512), each certificate of the chain is
 *   issued and signed by the next, the signing time lies in the leaf's validity, and the chain is anchored in a
 *   configured key: a certificate (or public key) of the rule that is one of the chain's or signed its last one.
 *   Not checked: revocation, timestamps countersigned by a TSA, COSE envelopes (refused as unsigned).
 *
 * Results are cached per (signature manifest digest, subject digest, key): all three name immutable content, so a
 * cached answer never goes stale; a new signature is a new manifest digest and is verified when first seen.
 */
import { createHash, createPublicKey, constants, verify, X509Certificate, type KeyObject } from 'node:crypto';
import {
  BUNDLE_PREDICATE_ANNOTATION,
  COSIGN_SIGN_PREDICATE,
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIGNATURE_TYPE,
  COSIGN_SIMPLESIGNING_TYPE,
  NOTATION_SIGNATURE_TYPE,
  SIGSTORE_BUNDLE_PREFIX,
  cosignTag,
} from '../../common/artifact-kinds.js';
import type { SignatureKey } from '../../common/policies.js';
import type { Descriptor } from '../manifest.js';
import { tryParseDigest } from '../reference.js';
import type { StoredManifest } from '../storage/store.js';

/** Where signatures are read from: the repository's referrers, tags and blobs (storeSource in signature-source.ts). */
export interface SignatureSource {
  referrers(name: string, subject: string): Promise<Descriptor[]>;
  /** A manifest of the repository by tag or digest; undefined when absent. */
  manifest(name: string, ref: { tag: string } | { digest: string }): Promise<StoredManifest | undefined>;
  /** A blob linked in the repository, at most `limit` bytes; undefined when absent or larger. */
  blob(name: string, digest: string, limit: number): Promise<Buffer | undefined>;
}

export type SignatureForm = 'cosign bundle' | 'cosign referrer' | 'cosign tag' | 'notation referrer';

export interface FoundSignature {
  form: SignatureForm;
  manifest: StoredManifest;
}

const MAX_PAYLOAD = 256 * 1024;
const CACHE_LIMIT = 10_000;
const JWS_TYPE = 'application/jose+json';

function b64url(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function parseJson(buf: Buffer): Record<string, unknown> | undefined {
  try {
    return asRecord(JSON.parse(buf.toString('utf8')));
  } catch {
    return undefined;
  }
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** A rule's key as a public key, and as a certificate when it is one (the anchor of a notation chain). */
interface TrustKey {
  fingerprint: string;
  publicKey: KeyObject;
  certificate?: X509Certificate;
}

/** Parsed keys by PEM text: a rule's keys are parsed once, not at every request. */
const parsedKeys = new Map<string, TrustKey | undefined>();

function trustKey(key: SignatureKey): TrustKey | undefined {
  if (parsedKeys.has(key.pem)) return parsedKeys.get(key.pem);
  if (parsedKeys.size >= 1000) parsedKeys.clear();
  const parsed = parseTrustKey(key);
  parsedKeys.set(key.pem, parsed);
  return parsed;
}

function parseTrustKey(key: SignatureKey): TrustKey | undefined {
  try {
    const publicKey = createPublicKey(key.pem);
    const certificate = key.pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(key.pem) : undefined;
    const fingerprint = createHash('sha256').update(spki(publicKey)).digest('hex');
    return certificate ? { fingerprint, publicKey, certificate } : { fingerprint, publicKey };
  } catch {
    return undefined;
  }
}

/** The signature manifests of `subject` in `name`: cosign (both forms) and notation. */
export async function findSignatures(
  source: SignatureSource,
  name: string,
  subject: string,
): Promise<FoundSignature[]> {
  const found: FoundSignature[] = [];
  for (const d of await source.referrers(name, subject)) {
    const bundle =
      d.artifactType?.startsWith(SIGSTORE_BUNDLE_PREFIX) &&
      d.annotations?.[BUNDLE_PREDICATE_ANNOTATION] === COSIGN_SIGN_PREDICATE;
    const form: SignatureForm | undefined = bundle
      ? 'cosign bundle'
      : d.artifactType === COSIGN_SIGNATURE_TYPE
        ? 'cosign referrer'
        : d.artifactType === NOTATION_SIGNATURE_TYPE
          ? 'notation referrer'
          : undefined;
    const m = form && (await source.manifest(name, { digest: d.digest }));
    if (form && m) found.push({ form, manifest: m });
  }
  if (tryParseDigest(subject)) {
    const tagged = await source.manifest(name, { tag: cosignTag(subject, 'sig') });
    if (tagged) found.push({ form: 'cosign tag', manifest: tagged });
  }
  return found;
}

async function cosignValid(
  source: SignatureSource,
  name: string,
  sig: StoredManifest,
  subject: string,
  key: TrustKey,
): Promise<boolean> {
  for (const layer of sig.info.blobs) {
    const signature = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
    if (layer.mediaType !== COSIGN_SIMPLESIGNING_TYPE || !signature) continue;
    const payload = await source.blob(name, layer.digest, MAX_PAYLOAD);
    if (!payload) continue;
    const critical = asRecord(parseJson(payload)?.critical);
    if (asRecord(critical?.image)?.['docker-manifest-digest'] !== subject) continue;
    if (verifies(payload, key, Buffer.from(signature, 'base64'))) return true;
  }
  return false;
}

/** DSSE v1 pre-authentication encoding: what a DSSE signature signs. */
function pae(payloadType: string, body: Buffer): Buffer {
  const head = `DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${body.length} `;
  return Buffer.concat([Buffer.from(head), body]);
}

function verifies(data: Buffer, key: TrustKey, signature: Buffer): boolean {
  try {
    return verify('sha256', data, key.publicKey, signature);
  } catch {
    // a signature of the wrong shape for this key is no signature by it
    return false;
  }
}

async function bundleValid(
  source: SignatureSource,
  name: string,
  sig: StoredManifest,
  subject: string,
  key: TrustKey,
): Promise<boolean> {
  const [alg, hex] = subject.split(':');
  for (const layer of sig.info.blobs) {
    if (!layer.mediaType.startsWith(SIGSTORE_BUNDLE_PREFIX)) continue;
    const raw = await source.blob(name, layer.digest, MAX_PAYLOAD);
    const envelope = asRecord((raw && parseJson(raw))?.dsseEnvelope);
    const { payload, payloadType, signatures } = envelope ?? {};
    if (typeof payload !== 'string' || typeof payloadType !== 'string' || !Array.isArray(signatures)) continue;
    const body = Buffer.from(payload, 'base64');
    const statement = parseJson(body);
    const subjects = Array.isArray(statement?.subject) ? (statement.subject as unknown[]) : [];
    if (statement?.predicateType !== COSIGN_SIGN_PREDICATE) continue;
    if (!subjects.some((s) => alg && asRecord(asRecord(s)?.digest)?.[alg] === hex)) continue;
    const signed = pae(payloadType, body);
    for (const s of signatures) {
      const sigText = asRecord(s)?.sig;
      if (typeof sigText === 'string' && verifies(signed, key, Buffer.from(sigText, 'base64'))) return true;
    }
  }
  return false;
}

const JWS_ALGS: Record<string, { hash: string; pss: boolean }> = {
  PS256: { hash: 'sha256', pss: true },
  PS384: { hash: 'sha384', pss: true },
  PS512: { hash: 'sha512', pss: true },
  ES256: { hash: 'sha256', pss: false },
  ES384: { hash: 'sha384', pss: false },
  ES512: { hash: 'sha512', pss: false },
};

/** Whether the chain (leaf first) links up and is anchored in `key`; `at` must lie in the leaf's validity. */
function chainTrusted(chain: X509Certificate[], key: TrustKey, at: Date): boolean {
  const leaf = chain[0];
  if (!leaf || at < new Date(leaf.validFrom) || at > new Date(leaf.validTo)) return false;
  for (let i = 0; i + 1 < chain.length; i++) {
    const [cert, issuer] = [chain[i] as X509Certificate, chain[i + 1] as X509Certificate];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false;
  }
  const anchor = spki(key.publicKey);
  if (chain.some((c) => spki(c.publicKey).equals(anchor))) return true;
  const last = chain[chain.length - 1] as X509Certificate;
  return (key.certificate === undefined || last.checkIssued(key.certificate)) && last.verify(key.publicKey);
}

function jwsValid(envelope: Record<string, unknown>, subject: string, key: TrustKey): boolean {
  const { payload, protected: prot, signature } = envelope;
  const x5c = asRecord(envelope.header)?.x5c;
  if (typeof payload !== 'string' || typeof prot !== 'string' || typeof signature !== 'string') return false;
  if (!Array.isArray(x5c) || x5c.length === 0 || !x5c.every((c) => typeof c === 'string')) return false;
  const header = parseJson(b64url(prot));
  const alg = JWS_ALGS[String(header?.alg)];
  const target = asRecord(parseJson(b64url(payload))?.targetArtifact);
  if (!header || !alg || target?.digest !== subject) return false;
  const chain = x5c.map((c: string) => new X509Certificate(Buffer.from(c, 'base64')));
  const time = header['io.cncf.notary.signingTime'];
  const signedAt = new Date(typeof time === 'string' ? time : NaN);
  if (Number.isNaN(signedAt.getTime()) || !chainTrusted(chain, key, signedAt)) return false;
  const leafKey = (chain[0] as X509Certificate).publicKey;
  const verifyKey = alg.pss
    ? { key: leafKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : { key: leafKey, dsaEncoding: 'ieee-p1363' as const };
  return verify(alg.hash, Buffer.from(`${prot}.${payload}`), verifyKey, b64url(signature));
}

async function notationValid(
  source: SignatureSource,
  name: string,
  sig: StoredManifest,
  subject: string,
  key: TrustKey,
): Promise<boolean> {
  for (const layer of sig.info.blobs) {
    if (layer.mediaType !== JWS_TYPE) continue;
    const envelope = await source.blob(name, layer.digest, MAX_PAYLOAD).then((b) => b && parseJson(b));
    try {
      if (envelope && jwsValid(envelope, subject, key)) return true;
    } catch {
      // an unparsable certificate or signature of the wrong shape: not a valid signature
    }
  }
  return false;
}

/** Verifies signatures against keys, remembering each answer (see the file comment). */
export class SignatureVerifier {
  private readonly cache = new Map<string, boolean>();

  /** The first of `keys` that validly signed `subject` in `name`, with the signature's form; undefined: none. */
  async signedBy(
    source: SignatureSource,
    name: string,
    subject: string,
    keys: readonly SignatureKey[],
  ): Promise<{ key: SignatureKey; form: SignatureForm } | undefined> {
    const trusted = keys.map((k) => ({ key: k, trust: trustKey(k) }));
    for (const sig of await findSignatures(source, name, subject)) {
      for (const { key, trust } of trusted) {
        if (!trust) continue;
        const id = `${sig.manifest.digest} ${subject} ${trust.fingerprint}`;
        let ok = this.cache.get(id);
        if (ok === undefined) {
          const check =
            sig.form === 'cosign bundle' ? bundleValid : sig.form === 'notation referrer' ? notationValid : cosignValid;
          ok = await check(source, name, sig.manifest, subject, trust);
          if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
          this.cache.set(id, ok);
        }
        if (ok) return { key, form: sig.form };
      }
    }
    return undefined;
  }
}
