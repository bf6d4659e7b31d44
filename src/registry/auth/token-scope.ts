/**
 * Scopes of the Docker registry token specification (distribution's docs/spec/auth/scope.md), the `access` claim
 * they become, and the check of a request against it.
 *
 *   scope  = resourcetype ":" resourcename ":" action *( "," action )   e.g. repository:team/app:pull,push
 *
 * Only what the registry itself checks is granted: `repository:NAME:ACTIONS` with pull, push, delete and `*` (every
 * action the user is allowed), and `registry:catalog:*` (the catalog, which lists only what the user may pull).
 * Anything else asked for is left out of the token, as the specification says a token server may do.
 */
import { isValidName } from '../reference.js';
import type { AccessPolicy, Action } from './access.js';

/** One entry of the `access` claim, as the specification gives it. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

/**
 * Parses scope strings (the `scope` query parameters, or one space-separated list of a POST). A repository name may
 * hold a registry host with a port (`host:5000/app`), so the type ends at the first colon and the actions start
 * after the last one. Unreadable entries are left out.
 */
export function parseScopes(values: readonly string[]): AccessEntry[] {
  const out: AccessEntry[] = [];
  for (const value of values)
    for (const item of value.split(' ')) {
      const first = item.indexOf(':');
      const last = item.lastIndexOf(':');
      if (first <= 0 || last <= first + 1) continue;
      const actions = item
        .slice(last + 1)
        .split(',')
        .filter(Boolean);
      out.push({ type: item.slice(0, first), name: item.slice(first + 1, last), actions });
    }
  return out;
}

/**
 * The part of what was asked for that `user` may have under `policy`, merged per resource. An anonymous request
 * (`user` undefined) gets pull on the policy's anonymous patterns and nothing else.
 */
export function grantedAccess(
  user: string | undefined,
  asked: readonly AccessEntry[],
  policy: AccessPolicy,
): AccessEntry[] {
  const can = (repo: string, action: Action) =>
    user === undefined ? policy.anonymousCan(repo, action) : policy.can(user, repo, action);
  const byResource = new Map<string, AccessEntry>();
  for (const a of asked) {
    let actions: string[] = [];
    if (a.type === 'repository' && isValidName(a.name)) {
      const wanted = a.actions.includes('*') ? ACTIONS : ACTIONS.filter((x) => a.actions.includes(x));
      actions = wanted.filter((x) => can(a.name, x));
    } else if (
      (user !== undefined || policy.hasPublic) &&
      a.type === 'registry' &&
      a.name === 'catalog' &&
      a.actions.includes('*')
    ) {
      // The catalog lists only what the holder may pull: for an anonymous token, the public repositories.
      actions = ['*'];
    }
    if (actions.length === 0) continue;
    const key = `${a.type}:${a.name}`;
    const prev = byResource.get(key);
    byResource.set(key, {
      type: a.type,
      name: a.name,
      actions: [...new Set([...(prev?.actions ?? []), ...actions])],
    });
  }
  return [...byResource.values()];
}

/** The granted access as a scope list (the POST response's `scope`). */
export function scopeString(access: readonly AccessEntry[]): string {
  return access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
}

/** Whether an `access` claim allows `action` on a repository, or the catalog (`registry:catalog`). */
export function accessAllows(access: readonly AccessEntry[], type: string, name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && a.actions.includes(action));
}

/** Reads an `access` claim from a verified token; anything not shaped like one becomes no access at all. */
export function accessClaim(value: unknown): AccessEntry[] {
  if (!Array.isArray(value)) return [];
  const out: AccessEntry[] = [];
  for (const v of value as unknown[]) {
    if (typeof v !== 'object' || v === null) continue;
    const { type, name, actions } = v as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions)) continue;
    out.push({ type, name, actions: actions.filter((x): x is string => typeof x === 'string') });
  }
  return out;
}
