import { describe, expect, it } from 'vitest';
import { isValidName, isValidReference, parseRoute, Paths } from '../../../src/ui/paths.js';

describe('parseRoute', () => {
  it.each([
    ['/', { page: 'home' }],
    ['/repos', { page: 'repos' }],
    ['/storage', { page: 'storage' }],
    ['/login', { page: 'login' }],
    ['/healthz', { page: 'healthz' }],
    ['/static/app.js', { page: 'static', file: 'app.js' }],
    ['/r/web', { page: 'repo', name: 'web' }],
    ['/r/team/sub/web/', { page: 'repo', name: 'team/sub/web' }],
    ['/r/team/web/-/image/1.0', { page: 'image', name: 'team/web', reference: '1.0' }],
    ['/r/team/web/-/image/sha256%3Aabc123', { page: 'image', name: 'team/web', reference: 'sha256:abc123' }],
    ['/r/team/web/-/delete/latest', { page: 'delete', name: 'team/web', tag: 'latest' }],
    ['/r/team/web/-/other/x', { page: 'unknown' }],
    ['/r/team/web/-/image/1.0/extra', { page: 'unknown' }],
    ['/nothing', { page: 'unknown' }],
    ['/%E0%A4%A', { page: 'unknown' }],
  ])('%s', (path, route) => {
    expect(parseRoute(path)).toEqual(route);
  });

  it('says what is invalid about a name, tag or digest', () => {
    expect(parseRoute('/r/Team/Web')).toEqual({ page: 'invalid', what: '"Team/Web" is not a valid repository name' });
    expect(parseRoute('/r/web/-/image/-bad')).toEqual({ page: 'invalid', what: '"-bad" is not a valid tag or digest' });
    expect(parseRoute('/r/web/-/delete/sha256:abc')).toEqual({
      page: 'invalid',
      what: '"sha256:abc" is not a valid tag',
    });
  });

  it('validates names, tags and digests as the distribution spec does', () => {
    expect(isValidName('a/b-c/d__e/f.g')).toBe(true);
    expect(isValidName('a//b')).toBe(false);
    expect(isValidName('a/-/b')).toBe(false);
    expect(isValidReference('v1.2.3_rc-1')).toBe(true);
    expect(isValidReference('x'.repeat(129))).toBe(false);
    expect(isValidReference('sha256:0123abcd')).toBe(true);
  });
});

describe('Paths', () => {
  it('builds links at the root and under /ui', () => {
    const root = new Paths('');
    const ui = new Paths('/ui');
    expect(root.repo('team/web')).toBe('/r/team/web');
    expect(ui.image('team/web', 'sha256:ab')).toBe('/ui/r/team/web/-/image/sha256%3Aab');
    expect(ui.repos({ q: 'a b', sort: undefined, page: 2 })).toBe('/ui/repos?q=a+b&page=2');
    expect(root.cookiePath()).toBe('/');
    expect(ui.cookiePath()).toBe('/ui/');
  });

  it('only redirects after sign-in to paths inside the UI', () => {
    const ui = new Paths('/ui');
    expect(ui.safeNext('/ui/r/team/web?page=2')).toBe('/ui/r/team/web?page=2');
    expect(ui.safeNext('//evil.example.com/x')).toBe('/ui/repos');
    expect(ui.safeNext('https://evil.example.com/')).toBe('/ui/repos');
    expect(ui.safeNext('/\\evil.example.com')).toBe('/ui/repos');
    expect(ui.safeNext('/v2/_catalog')).toBe('/ui/repos');
    expect(ui.safeNext('/ui/logout')).toBe('/ui/repos');
    expect(ui.safeNext(null)).toBe('/ui/repos');
    expect(new Paths('').safeNext('/storage')).toBe('/storage');
  });
});
