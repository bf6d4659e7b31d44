/**
 * What the signed-in user may do, from `GET /admin/v1/whoami`. Only decides what the UI shows; the registry
 * enforces the same rules on every request.
 */
import type { WhoAmI } from '../common/admin-api.js';
import { repoPatternToRegExp } from '../common/repo-pattern.js';

export type Action = 'pull' | 'push' | 'delete';

/** `whoami` undefined means the registry has no admin API: like registry:2, every signed-in user may do anything. */
export function can(whoami: WhoAmI | undefined, action: Action, repo: string): boolean {
  if (!whoami) return true;
  if (whoami.admin) return true;
  return whoami.rules.some((rule) => rule.actions.includes(action) && repoPatternToRegExp(rule.repos).test(repo));
}

export function isAdmin(whoami: WhoAmI | undefined): boolean {
  return whoami?.admin ?? false;
}
