/**
 * htpasswd files holding bcrypt hashes only (`$2a$`, `$2b$`, `$2y$`, as bcryptjs and `htpasswd -B` write
 * them). Other hash schemes are ignored and reported, never accepted.
 */
export interface HtpasswdParse {
  users: Map<string, string>;
  /** One line per ignored entry, without the hash. */
  warnings: string[];
}

const BCRYPT_RE = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

export function parseHtpasswd(text: string): HtpasswdParse {
  const users = new Map<string, string>();
  const warnings: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      warnings.push(`line ${i + 1}: not user:hash`);
      continue;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT_RE.test(hash)) {
      warnings.push(`line ${i + 1}: user ${user} has a non-bcrypt hash (use htpasswd -B)`);
      continue;
    }
    users.set(user, hash);
  }
  return { users, warnings };
}
