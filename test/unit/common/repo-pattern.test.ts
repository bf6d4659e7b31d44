import { describe, expect, it } from 'vitest';
import { repoPatternToRegExp } from '../../../src/common/repo-pattern.js';

describe('repoPatternToRegExp', () => {
  it.each([
    // `*`: any characters within one segment
    ['apps/*', 'apps/web', true],
    ['apps/*', 'apps/', true],
    ['apps/*', 'apps/web/api', false],
    ['*', 'web', true],
    ['*', 'apps/web', false],
    ['apps/w*b', 'apps/web', true],
    ['apps/w*b', 'apps/w/b', false],
    // `**` alone: every name
    ['**', 'web', true],
    ['**', 'anything/at/all', true],
    // a trailing `/**`: everything below, not the prefix itself
    ['apps/**', 'apps/web', true],
    ['apps/**', 'apps/web/api', true],
    ['apps/**', 'apps', false],
    ['apps/**', 'appsweb', false],
    // `/**/`: zero or more whole segments
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['a/**/b', 'a/xb', false],
    ['a/**/b', 'a/b/c', false],
    // a leading `**/`: at any depth, the top included
    ['**/web', 'web', true],
    ['**/web', 'a/b/web', true],
    ['**/web', 'a/webby', false],
    // `**` inside a segment matches anything, `/` included
    ['apps/x**', 'apps/x/y/z', true],
    ['a**/b', 'ax/y/b', true],
    ['a**/b', 'ab', false],
    // regular-expression metacharacters stand for themselves
    ['team.x/*', 'team.x/a', true],
    ['team.x/*', 'teamyx/a', false],
    ['c++/lib', 'c++/lib', true],
    ['c++/lib', 'cc/lib', false],
    ['a(b)/[c]', 'a(b)/[c]', true],
    ['a?b', 'axb', false],
    ['v1$', 'v1$', true],
  ])('%s matches %s: %s', (pattern, name, expected) => {
    expect(repoPatternToRegExp(pattern).test(name)).toBe(expected);
  });
});
