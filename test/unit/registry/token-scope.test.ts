import { describe, expect, it } from 'vitest';
import { AccessPolicy } from '../../../src/registry/auth/access.js';
import { scopeForRequest } from '../../../src/registry/auth/token-service.js';
import { accessClaim, grantedAccess, parseScopes, scopeString } from '../../../src/registry/auth/token-scope.js';

const POLICY = AccessPolicy.parse(`users:
  admin: { admin: true }
  ci: { rules: [ { repos: "apps/**", actions: [pull, push] }, { repos: "base/*", actions: [pull] } ] }
`);

describe('token scopes', () => {
  it('parses scope lists, names with a registry port, and leaves out what cannot be read', () => {
    expect(parseScopes(['repository:apps/web:pull,push', 'registry:catalog:* repository:host:5000/x:pull'])).toEqual([
      { type: 'repository', name: 'apps/web', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: 'host:5000/x', actions: ['pull'] },
    ]);
    expect(parseScopes(['', 'nonsense', 'repository::pull', ':x:pull'])).toEqual([]);
  });

  it('grants what was asked AND what the policy allows, merged per repository', () => {
    const asked = parseScopes([
      'repository:apps/web:pull,push,delete',
      'repository:base/node:pull,push',
      'repository:secret/x:pull',
      'repository:apps/web:pull',
      'repository:INVALID NAME:pull',
      'registry:catalog:*',
      'registry:other:*',
    ]);
    const ci = grantedAccess('ci', asked, POLICY);
    expect(ci).toEqual([
      { type: 'repository', name: 'apps/web', actions: ['pull', 'push'] },
      { type: 'repository', name: 'base/node', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    expect(scopeString(ci)).toBe('repository:apps/web:pull,push repository:base/node:pull registry:catalog:*');
    expect(grantedAccess('admin', parseScopes(['repository:secret/x:*']), POLICY)).toEqual([
      { type: 'repository', name: 'secret/x', actions: ['pull', 'push', 'delete'] },
    ]);
    expect(grantedAccess('nobody', asked, POLICY).filter((a) => a.type === 'repository')).toEqual([]);
  });

  it('reads only well-formed access claims', () => {
    expect(accessClaim('x')).toEqual([]);
    expect(accessClaim([{ type: 'repository', name: 'a', actions: ['pull', 3] }, null, { type: 1 }])).toEqual([
      { type: 'repository', name: 'a', actions: ['pull'] },
    ]);
  });

  it('names the scope a request needs in its challenge', () => {
    expect(scopeForRequest('/v2/', 'GET')).toBeUndefined();
    expect(scopeForRequest('/v2/_catalog', 'GET')).toBe('registry:catalog:*');
    expect(scopeForRequest('/v2/apps/web/manifests/v1', 'HEAD')).toBe('repository:apps/web:pull');
    expect(scopeForRequest('/v2/apps/web/manifests/v1', 'PUT')).toBe('repository:apps/web:pull,push');
    expect(scopeForRequest('/v2/apps/web/blobs/uploads/', 'POST')).toBe('repository:apps/web:pull,push');
    expect(scopeForRequest('/v2/apps/web/manifests/v1', 'DELETE')).toBe('repository:apps/web:delete');
  });
});
