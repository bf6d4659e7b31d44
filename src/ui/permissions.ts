/**
 * What the signed-in user may do, from `GET /admin/v1/whoami`. Only decides what the UI shows; the registry
 * enforces the same rules on every request.
 */
import type { WhoAmI } from '../common/admin-api.js';

export type Action = 'pull' | 'push' | 'delete';

/** `*` matches within one path segment, `**` across segments (the access file's syntax). */
export function repoPatternToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else out += '.*';
      } else out += '[^/]*';
    } else out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** `whoami` undefined means the registry has no admin API: like registry:2, every signed-in user may do anything. */
export function can(whoami: WhoAmI | undefined, action: Action, repo: string): boolean {
  if (!whoami) return true;
  if (whoami.admin) return true;
  return whoami.rules.some((rule) => rule.actions.includes(action) && repoPatternToRegExp(rule.repos).test(repo));
}

export function isAdmin(whoami: WhoAmI | undefined): boolean {
  return whoami?.admin ?? false;
}
