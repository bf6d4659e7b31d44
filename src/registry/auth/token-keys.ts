/**
 * The token signing key: an EC P-256 private key (ES256) in a PKCS #8 PEM file, mode 0600.
 *
 * `regctl init` writes it beside htpasswd; `serve` creates it on first start when its path is configured but the
 * file is missing (written to a temporary name with mode 0600, then linked into place, so two replicas starting
 * together keep whichever key landed first and both use it). During a rotation's grace the key it replaced is kept
 * at `<path>.previous`: tokens it signed are still verified (never signed with) until the time its first line gives
 * (`Accepted until: <ISO 8601>`, explanatory text before the PEM block, which RFC 7468 lets parsers skip), or, without
 * that line, until the file goes.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK } from 'jose';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The JWK thumbprint (RFC 7638) of the public key: the `kid` of the tokens it signs. */
  kid: string;
}

export interface VerifyingKey {
  publicKey: KeyObject;
  kid: string;
  /** Milliseconds since the epoch after which it is no longer accepted; undefined: while the file exists. */
  until?: number;
}

const UNTIL_LINE = /^Accepted until: (\S+)$/m;

/** The text of `<path>.previous`: the replaced key's PEM, after the line saying until when it is accepted. */
export function previousKeyText(pem: string, untilMs: number): string {
  return `Accepted until: ${new Date(untilMs).toISOString()}\n${pem.slice(pem.indexOf('-----BEGIN'))}`;
}

export const previousKeyPath = (path: string): string => `${path}.previous`;

/** A new key as PEM text (PKCS #8), for `regctl init` and `serve`'s first start. */
export function newTokenKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function kidOf(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
}

/** Reads a PEM private key and checks it is a P-256 key (the only curve ES256 uses). */
export async function parseSigningKey(pem: string, path: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`token key ${path} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error(`token key ${path} must be an EC P-256 key (ES256)`);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: await kidOf(publicKey) };
}

/** Writes `pem` at `path` (0600) unless a file is already there; true when this call wrote it. */
export async function writeKeyFileExclusive(path: string, pem: string): Promise<boolean> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, pem, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** The signing key at `path`, created first when missing and `create` is set. */
export async function loadSigningKey(path: string, create: boolean): Promise<{ key: SigningKey; created: boolean }> {
  let created = false;
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw err;
    created = await writeKeyFileExclusive(path, newTokenKeyPem());
    pem = await readFile(path, 'utf8');
  }
  return { key: await parseSigningKey(pem, path), created };
}

/** The public half of `<path>.previous`, when that file exists. */
export async function loadPreviousKey(path: string): Promise<VerifyingKey | undefined> {
  let pem: string;
  try {
    pem = await readFile(previousKeyPath(path), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const { publicKey, kid } = await parseSigningKey(pem.slice(pem.indexOf('-----BEGIN')), previousKeyPath(path));
  const until = UNTIL_LINE.exec(pem)?.[1];
  const untilMs = until === undefined ? undefined : Date.parse(until);
  if (untilMs !== undefined && Number.isNaN(untilMs))
    throw new Error(`${previousKeyPath(path)}: "Accepted until: ${until}" is not a date`);
  return { publicKey, kid, ...(untilMs !== undefined ? { until: untilMs } : {}) };
}
