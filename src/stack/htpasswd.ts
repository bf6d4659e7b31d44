/**
 * htpasswd files with bcrypt entries, as `htpasswd -B` writes them: one `user:hash` per line. Hashes are
 * written with the `$2y$` prefix Apache uses (the same algorithm as `$2a$`/`$2b$`), so `htpasswd -vB`,
 * Go's bcrypt and bcryptjs all verify them.
 */
import bcrypt from 'bcryptjs';

export const DEFAULT_BCRYPT_COST = 10;

export interface HtpasswdEntry {
  user: string;
  hash: string;
}

export function hashPassword(password: string, cost = DEFAULT_BCRYPT_COST): string {
  if (!Number.isInteger(cost) || cost < 4 || cost > 17) throw new RangeError('bcrypt cost must be 4 to 17');
  return bcrypt.hashSync(password, cost).replace(/^\$2[ab]\$/, '$2y$');
}

export function verifyPassword(password: string, hash: string): boolean {
  return bcrypt.compareSync(password, hash);
}

/** Parses an htpasswd file; blank lines and `#` comments are skipped. */
export function parseHtpasswd(text: string): HtpasswdEntry[] {
  const entries: HtpasswdEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`htpasswd line without "user:hash": ${line.slice(0, 20)}…`);
    entries.push({ user: line.slice(0, colon), hash: line.slice(colon + 1) });
  }
  return entries;
}

export function formatHtpasswd(entries: HtpasswdEntry[]): string {
  for (const e of entries) {
    if (!e.user || e.user.includes(':') || /\s/.test(e.user)) throw new Error(`invalid htpasswd user name "${e.user}"`);
  }
  return entries.map((e) => `${e.user}:${e.hash}\n`).join('');
}

/** Sets (adds or replaces) one user's password, keeping every other line and the order. */
export function setHtpasswdUser(text: string, user: string, password: string, cost = DEFAULT_BCRYPT_COST): string {
  const entries = parseHtpasswd(text);
  const hash = hashPassword(password, cost);
  const existing = entries.find((e) => e.user === user);
  if (existing) existing.hash = hash;
  else entries.push({ user, hash });
  return formatHtpasswd(entries);
}

export function removeHtpasswdUser(text: string, user: string): string {
  return formatHtpasswd(parseHtpasswd(text).filter((e) => e.user !== user));
}

/** Checks a user's password against an htpasswd text; unknown users fail. */
export function checkHtpasswd(text: string, user: string, password: string): boolean {
  const entry = parseHtpasswd(text).find((e) => e.user === user);
  return entry ? verifyPassword(password, entry.hash) : false;
}
