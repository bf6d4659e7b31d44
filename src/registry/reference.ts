/**
 * Repository names, tags and digests as the OCI distribution spec defines them.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
 */
import { RegistryError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const NAME_PATTERN = `${COMPONENT}(?:/${COMPONENT})*`;
export const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** A reference (`<name>:<tag>`) stays under 255 characters; the name alone is held to that too. */
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = 'sha256' | 'sha512';
export const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `<algorithm>:<hex>` */
  value: string;
}

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertName(name: string): string {
  if (!isValidName(name)) throw new RegistryError('NAME_INVALID', { name });
  return name;
}

export function isTag(reference: string): boolean {
  return TAG_RE.test(reference);
}

/** Parses a digest; malformed ones and algorithms other than sha256/sha512 are DIGEST_INVALID. */
export function parseDigest(text: string): Digest {
  const m = DIGEST_RE.exec(text);
  if (!m) throw new RegistryError('DIGEST_INVALID', { digest: text, reason: 'malformed digest' });
  const algorithm = m[1] as string;
  const hex = m[2] as string;
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new RegistryError('DIGEST_INVALID', { digest: text, reason: `unsupported digest algorithm ${algorithm}` });
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', { digest: text, reason: 'malformed digest' });
  }
  return { algorithm, hex, value: text };
}

export function tryParseDigest(text: string): Digest | undefined {
  try {
    return parseDigest(text);
  } catch {
    return undefined;
  }
}

/** A manifest reference is a tag or a digest; anything else is invalid. */
export function parseReference(reference: string): { tag: string } | { digest: Digest } {
  if (reference.includes(':')) return { digest: parseDigest(reference) };
  if (!isTag(reference)) throw new RegistryError('TAG_INVALID', { tag: reference });
  return { tag: reference };
}
