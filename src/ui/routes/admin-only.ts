/** What the administrators' pages (storage, robots, delivery log) share: who may see them. */
import type { WhoAmI } from '../../common/admin-api.js';
import { HttpProblem } from '../http.js';
import { isAdmin } from '../permissions.js';

/**
 * Refuses an administrators' page: 404 when the registry has no regctl admin API (`whoami` unknown), 403 when the
 * user is not an administrator. `what` names the page in the messages ("The storage report").
 */
export function requireAdmin(whoami: WhoAmI | undefined, what: string): void {
  if (!whoami) {
    throw new HttpProblem({
      status: 404,
      title: 'Not available',
      message: `${what} needs the admin API of regctl’s registry, which this registry does not have.`,
    });
  }
  if (!isAdmin(whoami)) {
    throw new HttpProblem({
      status: 403,
      title: 'Administrators only',
      message: `${what} needs an administrator account on the registry.`,
    });
  }
}
