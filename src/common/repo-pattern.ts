/**
 * Repository patterns of the access file (`auth/access.yaml`), read as gitignore and minimatch read globs. The
 * registry enforces them and the UI uses the same reading to decide what to offer, so the two never disagree.
 *
 * - `*` matches any characters except `/` (within one path segment): `apps/*` matches `apps/web`, not
 *   `apps/web/api`.
 * - `**` matches anything, `/` included: `apps/**` matches `apps/web/api` (not `apps` itself), `**` alone matches
 *   every name.
 * - `**` followed by `/`, at the start or right after a `/`, stands for zero or more whole segments: `a/**\/b`
 *   matches `a/b`, `a/x/b` and `a/x/y/b`; `**\/web` matches `web` and `a/b/web`.
 * - Every other character matches itself (`.` and `+` included).
 */
export function repoPatternToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c !== '*') out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    else if (pattern[i + 1] !== '*') out += '[^/]*';
    else {
      i++;
      const segmentStart = i === 1 || pattern[i - 2] === '/';
      if (segmentStart && pattern[i + 1] === '/') {
        i++;
        out += '(?:.*/)?';
      } else out += '.*';
    }
  }
  return new RegExp(`^${out}$`);
}
