import { describe, expect, it } from 'vitest';
import { repoPatternToRegExp } from '../../../src/common/repo-pattern.js';
import { can, isAdmin } from '../../../src/ui/permissions.js';

describe('repository patterns', () => {
  it.each([
    ['apps/*', 'apps/web', true],
    ['apps/*', 'apps/web/api', false],
    ['apps/**', 'apps/web/api', true],
    ['apps/**', 'apps', false],
    ['**/web', 'web', true],
    ['**/web', 'a/b/web', true],
    ['**', 'anything/at/all', true],
    ['team.x/*', 'teamyx/a', false],
  ])('%s matches %s: %s', (pattern, repo, expected) => {
    expect(repoPatternToRegExp(pattern).test(repo)).toBe(expected);
  });
});

describe('can', () => {
  const ci = {
    user: 'ci',
    admin: false,
    rules: [
      { repos: 'apps/**', actions: ['pull', 'push'] },
      { repos: 'apps/tmp/*', actions: ['delete'] },
    ],
  };
  it('follows the rules for non-admins', () => {
    expect(can(ci, 'pull', 'apps/web')).toBe(true);
    expect(can(ci, 'delete', 'apps/web')).toBe(false);
    expect(can(ci, 'delete', 'apps/tmp/x')).toBe(true);
    expect(can(ci, 'pull', 'other/web')).toBe(false);
    expect(isAdmin(ci)).toBe(false);
  });
  it('lets admins, and everyone on a registry without the admin API, do anything', () => {
    expect(can({ user: 'a', admin: true, rules: [] }, 'delete', 'x')).toBe(true);
    expect(can(undefined, 'delete', 'x')).toBe(true);
    expect(isAdmin(undefined)).toBe(false);
  });
});
