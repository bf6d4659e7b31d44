/**
 * The grace file next to htpasswd (`<htpasswd>.grace`, mode 0600): secrets that still work for a while after a
 * rotation. One `user:bcrypt-hash:expiresUnixSeconds` line per old secret; blank lines and `#` comments are
 * skipped. htpasswd itself stays a standard file that `htpasswd -vB` and registry:2 understand; only our
 * registry reads this one, and it refuses each line's secret once its expiry has passed, reload or not.
 */
export interface GraceEntry {
  user: string;
  hash: string;
  /** Unix time in seconds after which the secret is refused. */
  expiresAt: number;
}

export interface GraceParse {
  entries: GraceEntry[];
  /** One line per ignored entry, without the hash. */
  warnings: string[];
}

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

export function graceFilePath(htpasswdPath: string): string {
  return `${htpasswdPath}.grace`;
}

export function parseGraceFile(text: string): GraceParse {
  const entries: GraceEntry[] = [];
  const warnings: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const first = line.indexOf(':');
    const last = line.lastIndexOf(':');
    if (first <= 0 || last === first) {
      warnings.push(`line ${i + 1}: not user:hash:expires`);
      continue;
    }
    const user = line.slice(0, first);
    const hash = line.slice(first + 1, last);
    const expires = line.slice(last + 1);
    if (!BCRYPT_RE.test(hash)) {
      warnings.push(`line ${i + 1}: user ${user} has a non-bcrypt hash`);
      continue;
    }
    if (!/^\d{1,12}$/.test(expires)) {
      warnings.push(`line ${i + 1}: user ${user} has an invalid expiry`);
      continue;
    }
    entries.push({ user, hash, expiresAt: Number(expires) });
  }
  return { entries, warnings };
}

export function formatGraceFile(entries: GraceEntry[]): string {
  for (const e of entries) {
    if (!e.user || e.user.includes(':') || /\s/.test(e.user)) throw new Error(`invalid user name "${e.user}"`);
    if (!BCRYPT_RE.test(e.hash)) throw new Error(`grace entry of ${e.user} is not a bcrypt hash`);
    if (!Number.isInteger(e.expiresAt) || e.expiresAt < 0)
      throw new Error(`grace entry of ${e.user} has an invalid expiry`);
  }
  return entries.map((e) => `${e.user}:${e.hash}:${e.expiresAt}\n`).join('');
}

/** Entries still valid at `nowSeconds`. */
export function liveGraceEntries(entries: GraceEntry[], nowSeconds: number): GraceEntry[] {
  return entries.filter((e) => e.expiresAt > nowSeconds);
}
