import { describe, expect, it } from 'vitest';
import { LoginThrottle, SessionStore, tokensEqual } from '../../../src/ui/sessions.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('SessionStore', () => {
  it('creates sessions with random ids and CSRF tokens, and finds them by id', () => {
    const store = new SessionStore();
    const a = store.create('alice', 'pw-a', undefined);
    const b = store.create('bob', 'pw-b', { user: 'bob', admin: true, rules: [] });
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.csrf).not.toBe(a.id);
    expect(store.lookup(a.id)).toEqual({ session: a });
    expect(store.lookup('nope')).toEqual({ session: undefined, expired: false });
    expect(store.lookup(undefined)).toEqual({ session: undefined, expired: false });
  });

  it('ends idle sessions and says they expired; use keeps a session alive', () => {
    const c = clock();
    const store = new SessionStore({ idleMs: 1000, maxAgeMs: 10_000, now: c.now });
    const s = store.create('alice', 'pw', undefined);
    c.advance(900);
    expect(store.lookup(s.id).session).toBe(s);
    c.advance(900);
    expect(store.lookup(s.id).session).toBe(s);
    c.advance(1001);
    expect(store.lookup(s.id)).toEqual({ session: undefined, expired: true });
    expect(s.password).toBe('');
    expect(store.size).toBe(0);
  });

  it('ends sessions at their maximum age however busy they are', () => {
    const c = clock();
    const store = new SessionStore({ idleMs: 1000, maxAgeMs: 3000, now: c.now });
    const s = store.create('alice', 'pw', undefined);
    for (let i = 0; i < 5; i++) {
      c.advance(700);
      store.lookup(s.id);
    }
    expect(store.lookup(s.id).session).toBeUndefined();
  });

  it('ends every session of a user at once, forgetting passwords and caches', async () => {
    const store = new SessionStore();
    const a1 = store.create('alice', 'pw', undefined);
    const a2 = store.create('alice', 'pw', undefined);
    const b = store.create('bob', 'pw', undefined);
    await a1.cache.get('k', async () => 1);
    store.endUser('alice');
    expect(store.lookup(a1.id)).toEqual({ session: undefined, expired: true });
    expect(store.lookup(a2.id).session).toBeUndefined();
    expect(store.lookup(b.id).session).toBe(b);
    expect(a1.cache.size).toBe(0);
    expect(a1.password).toBe('');
  });

  it('compares tokens in constant time and only equal ones match', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'x')).toBe(false);
  });
});

describe('LoginThrottle', () => {
  it('allows a few failures, then makes each next attempt wait longer', () => {
    const c = clock();
    const t = new LoginThrottle({ freeAttempts: 3, baseDelayMs: 1000, maxDelayMs: 8000, windowMs: 60_000, now: c.now });
    const keys = ['user:alice', 'ip:10.0.0.1'];
    for (let i = 0; i < 2; i++) t.fail(keys);
    expect(t.retryAfterMs(keys)).toBe(0);
    t.fail(keys);
    expect(t.retryAfterMs(keys)).toBe(1000);
    t.fail(keys);
    expect(t.retryAfterMs(keys)).toBe(2000);
    for (let i = 0; i < 5; i++) t.fail(keys);
    expect(t.retryAfterMs(keys)).toBe(8000);
    c.advance(8000);
    expect(t.retryAfterMs(keys)).toBe(0);
  });

  it('throttles by any key that failed: another user from the same address waits too', () => {
    const c = clock();
    const t = new LoginThrottle({ freeAttempts: 1, baseDelayMs: 1000, now: c.now });
    t.fail(['user:alice', 'ip:10.0.0.1']);
    expect(t.retryAfterMs(['user:bob', 'ip:10.0.0.1'])).toBe(1000);
    expect(t.retryAfterMs(['user:bob', 'ip:10.0.0.2'])).toBe(0);
  });

  it('forgets failures after success or after the window', () => {
    const c = clock();
    const t = new LoginThrottle({ freeAttempts: 1, baseDelayMs: 1000, windowMs: 5000, now: c.now });
    t.fail(['user:alice']);
    t.succeed(['user:alice']);
    expect(t.retryAfterMs(['user:alice'])).toBe(0);
    t.fail(['user:alice']);
    c.advance(5001);
    expect(t.retryAfterMs(['user:alice'])).toBe(0);
  });
});
