/**
 * The dev stack's local CA and its leaf certificate (files: see `src/stack/dev-tls.ts`).
 *
 * node:crypto makes keys and parses certificates but cannot build one, so `@peculiar/x509` (on node's WebCrypto)
 * writes them: ECDSA P-256, which Go's crypto/x509 (dockerd), browsers and NSS all accept. The CA is constrained
 * to the stack's domain (a critical name constraint), so a copied `ca.key` cannot vouch for any other site a
 * browser that trusts the CA visits. `regctl init` keeps a CA that is still good and renews the leaf only when it
 * no longer fits (other host names, another CA, less than `RENEW_DAYS` left).
 */
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createPrivateKey, KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from '@peculiar/asn1-x509';
import * as x509 from './x509.js';
import { readIfExists } from '../common/fs.js';
import { CA_CERT_FILE, CA_KEY_FILE, leafFiles } from '../stack/dev-tls.js';
import { atomicWrite } from '../stack/write.js';

export const CA_DAYS = 3 * 365;
export const LEAF_DAYS = 180;
/** `regctl init` issues a new leaf when the current one has fewer days left; doctor warns from then on. */
export const RENEW_DAYS = 30;
const DAY_MS = 86_400_000;
// node's WebCrypto, whose TypeScript declaration differs from the DOM's `Crypto` the library is typed against.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PemPair {
  cert: string;
  key: string;
}

const serial = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // a positive INTEGER
  return bytes.toString('hex');
};

const keyPem = (key: webcrypto.CryptoKey): string =>
  KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();

async function signingKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
}

function nameConstraints(domain: string): x509.Extension {
  const permitted = new GeneralSubtrees([new GeneralSubtree({ base: new GeneralName({ dNSName: domain }) })]);
  return new x509.Extension(
    id_ce_nameConstraints,
    true,
    AsnConvert.serialize(new NameConstraints({ permittedSubtrees: permitted })),
  );
}

/** A new CA for the host names under `domain` (the stack's `host`), valid from `now` for CA_DAYS. */
export async function makeCa(domain: string, now = new Date()): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=regctl local CA for ${domain}, O=regctl dev stack`,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      nameConstraints(domain),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: keyPem(keys.privateKey) };
}

/** A server certificate for `names`, signed by `ca`, valid from `now` for LEAF_DAYS (or `days`). */
export async function issueLeaf(ca: PemPair, names: string[], now = new Date(), days = LEAF_DAYS): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const caCert = new x509.X509Certificate(ca.cert);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: await signingKey(ca.key),
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: keyPem(keys.privateKey) };
}

/** The DNS subtrees a CA permits; undefined when it has no name constraints (it may vouch for any name). */
export function permittedDomains(certPem: string): string[] | undefined {
  const ext = new x509.X509Certificate(certPem).getExtension(id_ce_nameConstraints);
  if (!ext) return undefined;
  const parsed = AsnConvert.parse(ext.value, NameConstraints);
  return (parsed.permittedSubtrees ?? []).flatMap((s) => (s.base.dNSName ? [s.base.dNSName] : []));
}

const within = (name: string, domain: string): boolean => name === domain || name.endsWith(`.${domain}`);

/** Whole days until a certificate's notAfter (negative once expired). */
export const daysLeft = (cert: X509Certificate, now: Date): number =>
  Math.floor((new Date(cert.validTo).getTime() - now.getTime()) / DAY_MS);

/** What is wrong with a CA for `names`, or undefined when it can sign their leaf for a while yet. */
export function caProblem(pair: PemPair, names: string[], now = new Date()): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
  } catch {
    return 'ca.crt is not a PEM certificate';
  }
  if (!cert.ca) return 'ca.crt is not a CA certificate';
  try {
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) return 'ca.key is not the key of ca.crt';
  } catch {
    return 'ca.key is not a PEM private key';
  }
  if (new Date(cert.validFrom) > now) return `ca.crt is not valid before ${cert.validFrom}`;
  if (daysLeft(cert, now) < RENEW_DAYS) return `ca.crt expires ${cert.validTo}`;
  const domains = permittedDomains(pair.cert);
  if (!domains) return undefined;
  const outside = names.filter((n) => !domains.some((d) => within(n, d)));
  if (outside.length > 0) return `ca.crt may only sign names under ${domains.join(', ')}, not ${outside.join(', ')}`;
  return undefined;
}

/** The DNS names of a certificate's subjectAltName. */
export const dnsNames = (cert: X509Certificate): string[] =>
  (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));

/** What is wrong with a leaf for `names` under the CA `caCert`, or undefined when it serves them `minDays` yet. */
export function leafProblem(
  leaf: PemPair,
  caCert: string,
  names: string[],
  now = new Date(),
  minDays = RENEW_DAYS,
): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(leaf.cert);
  } catch {
    return 'the leaf is not a PEM certificate';
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(leaf.key))) return 'the leaf key does not match its certificate';
  } catch {
    return 'the leaf key is not a PEM private key';
  }
  const ca = new X509Certificate(caCert);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'the leaf is not signed by ca.crt';
  const missing = names.filter((n) => !dnsNames(cert).includes(n));
  if (missing.length > 0) return `the leaf does not name ${missing.join(', ')} (it names ${dnsNames(cert).join(', ')})`;
  const left = daysLeft(cert, now);
  if (left < 0) return `the leaf expired ${cert.validTo}`;
  if (left < minDays) return `the leaf expires ${cert.validTo} (${left} days left)`;
  return undefined;
}

export interface DevCertFile {
  path: string;
  status: 'created' | 'kept' | 'renewed';
  secret: boolean;
}

export interface DevCertResult {
  files: DevCertFile[];
  /** Why an existing CA was replaced: the engine and browsers that trusted the old one must be told again. */
  caReplaced?: string;
}

async function readPair(dir: string, cert: string, key: string): Promise<PemPair | undefined> {
  const [c, k] = await Promise.all([readIfExists(join(dir, cert)), readIfExists(join(dir, key))]);
  return c !== undefined && k !== undefined ? { cert: c, key: k } : undefined;
}

/**
 * Makes or keeps the stack's CA and leaf for `names` (the dev host names under `domain`). Keys are written first
 * and 0600, each file atomically; a kept key has its mode re-asserted.
 */
export async function ensureDevCertificates(
  dir: string,
  domain: string,
  names: string[],
  now = new Date(),
): Promise<DevCertResult> {
  const files: DevCertFile[] = [];
  const result: DevCertResult = { files };
  let ca = await readPair(dir, CA_CERT_FILE, CA_KEY_FILE);
  const problem = ca ? caProblem(ca, names, now) : undefined;
  if (ca && !problem) {
    await chmod(join(dir, CA_KEY_FILE), 0o600);
    files.push(
      { path: CA_CERT_FILE, status: 'kept', secret: false },
      { path: CA_KEY_FILE, status: 'kept', secret: true },
    );
  } else {
    const status = ca ? 'renewed' : 'created';
    if (problem) result.caReplaced = problem;
    ca = await makeCa(domain, now);
    await atomicWrite(join(dir, CA_KEY_FILE), ca.key, 0o600);
    await atomicWrite(join(dir, CA_CERT_FILE), ca.cert, 0o644);
    files.push({ path: CA_CERT_FILE, status, secret: false }, { path: CA_KEY_FILE, status, secret: true });
  }
  const paths = leafFiles(domain);
  const leaf = await readPair(dir, paths.cert, paths.key);
  if (leaf && !leafProblem(leaf, ca.cert, names, now)) {
    await chmod(join(dir, paths.key), 0o600);
    files.push({ path: paths.cert, status: 'kept', secret: false }, { path: paths.key, status: 'kept', secret: true });
  } else {
    const status = leaf ? 'renewed' : 'created';
    const fresh = await issueLeaf(ca, names, now);
    await atomicWrite(join(dir, paths.key), fresh.key, 0o600);
    await atomicWrite(join(dir, paths.cert), fresh.cert, 0o644);
    files.push({ path: paths.cert, status, secret: false }, { path: paths.key, status, secret: true });
  }
  return result;
}

/** The permission bits of a file, or undefined when it does not exist. */
export async function fileMode(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.mode & 0o777,
    () => undefined,
  );
}
