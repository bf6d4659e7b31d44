import { randomBytes } from 'node:crypto';

export const MIN_PASSWORD_LENGTH = 24;

/**
 * A strong password from the system's CSPRNG, URL-safe (base64url alphabet: A-Z a-z 0-9 - _), so it needs
 * no quoting in `.env`, shells, URLs or `docker login --password-stdin`. 32 characters carry 192 bits.
 */
export function generatePassword(length = 32): string {
  if (!Number.isInteger(length) || length < MIN_PASSWORD_LENGTH) {
    throw new RangeError(`password length must be an integer of at least ${MIN_PASSWORD_LENGTH}`);
  }
  return randomBytes(Math.ceil((length * 3) / 4))
    .toString('base64url')
    .slice(0, length);
}
