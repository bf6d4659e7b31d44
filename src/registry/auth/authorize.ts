/**
 * Authorization of an authenticated `/v2/` request: the access policy always (so a right taken away stops working
 * at once, even for a token issued before), and, for a Bearer token, its `access` claim too. A request the policy
 * refuses is DENIED (403); one the policy allows but the token does not cover is 401 `insufficient_scope`, so the
 * client fetches a token for that scope and retries.
 */
import { RegistryError } from '../errors.js';
import { isValidName } from '../reference.js';
import type { AccessPolicy, Action } from './access.js';
import { accessAllows, type AccessEntry } from './token-scope.js';

export interface RepositoryRequest {
  policy: AccessPolicy;
  user: string;
  /** The token's `access` claim; undefined for Basic credentials. */
  access: AccessEntry[] | undefined;
  name: string;
  action: Action;
  url: URL;
  mountsFrom: boolean;
  /** The 401 that asks for a token with `scope`. */
  insufficient: (scope: string) => RegistryError;
}

const granted = (access: AccessEntry[] | undefined, repo: string, action: Action) =>
  access === undefined || accessAllows(access, 'repository', repo, action);

/** Throws DENIED or the insufficient-scope 401; drops a mount whose source the user (or token) may not pull. */
export function authorizeRepository(r: RepositoryRequest): void {
  if (!r.policy.can(r.user, r.name, r.action)) throw new RegistryError('DENIED', { name: r.name, action: r.action });
  if (!granted(r.access, r.name, r.action))
    throw r.insufficient(`repository:${r.name}:${r.action === 'push' ? 'pull,push' : r.action}`);
  const from = r.url.searchParams.get('from');
  if (
    r.mountsFrom &&
    from !== null &&
    (!isValidName(from) || !r.policy.can(r.user, from, 'pull') || !granted(r.access, from, 'pull'))
  ) {
    // No pull right on the source: no mount, the client gets an upload session instead.
    r.url.searchParams.delete('mount');
    r.url.searchParams.delete('from');
  }
}

/**
 * A request without a user (no credentials, or an anonymous token): only a pull of a repository the access file's
 * `anonymous.pull` names, and with a token only when the token covers it; and, when some repository is public, the
 * catalog (which then lists the public repositories only). Everything else is 401, so the client asks for
 * credentials.
 */
export function authorizeAnonymous(r: {
  policy: AccessPolicy;
  access: AccessEntry[] | undefined;
  name: string | undefined;
  action: string;
  unauthorized: () => RegistryError;
  insufficient: (scope: string) => RegistryError;
}): void {
  if (r.action === 'catalog' && r.policy.hasPublic) return authorizeCatalog(r.access, r.insufficient);
  if (r.action !== 'pull' || r.name === undefined || !r.policy.anonymousCan(r.name, 'pull')) throw r.unauthorized();
  if (!granted(r.access, r.name, 'pull')) throw r.insufficient(`repository:${r.name}:pull`);
}

/** The catalog with a token needs `registry:catalog:*`; what it lists is filtered by the policy either way. */
export function authorizeCatalog(access: AccessEntry[] | undefined, insufficient: (scope: string) => RegistryError) {
  if (access !== undefined && !accessAllows(access, 'registry', 'catalog', '*'))
    throw insufficient('registry:catalog:*');
}

/** Everything `/v2/` asks of an authenticated registry, by the route's action; see the functions above. */
export function authorizeRequest(
  r: Omit<RepositoryRequest, 'user' | 'name' | 'action'> & {
    user: string | undefined;
    name: string | undefined;
    action: string;
    unauthorized: () => RegistryError;
  },
): void {
  if (r.user === undefined) return authorizeAnonymous(r);
  if (r.action === 'catalog') return authorizeCatalog(r.access, r.insufficient);
  if (r.action === 'base') return;
  // Default deny: a repository route this code does not know the action of is refused, never let through.
  if (r.name === undefined || (r.action !== 'pull' && r.action !== 'push' && r.action !== 'delete'))
    throw new RegistryError('DENIED', { action: r.action });
  authorizeRepository({ ...r, user: r.user, name: r.name, action: r.action });
}
