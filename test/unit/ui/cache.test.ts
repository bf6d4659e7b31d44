import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../../src/ui/cache.js';

describe('TtlCache', () => {
  it('shares one computation between concurrent callers and reuses it until it expires', async () => {
    let t = 0;
    const cache = new TtlCache<number>(1000, 100, () => t);
    let calls = 0;
    const compute = async () => ++calls;
    const [a, b] = await Promise.all([cache.get('k', compute), cache.get('k', compute)]);
    expect([a, b, calls]).toEqual([1, 1, 1]);
    t = 999;
    expect(await cache.get('k', compute)).toBe(1);
    t = 1000;
    expect(await cache.get('k', compute)).toBe(2);
    expect(await cache.get('short', compute, 10)).toBe(3);
  });

  it('does not keep failures', async () => {
    const cache = new TtlCache<string>(60_000);
    await expect(cache.get('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await new Promise((r) => setImmediate(r));
    expect(await cache.get('k', async () => 'up')).toBe('up');
  });

  it('drops the oldest entries beyond its size and invalidates by key', async () => {
    const cache = new TtlCache<number>(60_000, 3);
    for (let i = 0; i < 5; i++) await cache.get(`k${i}`, async () => i);
    expect(cache.size).toBe(3);
    expect(await cache.get('k0', async () => 42)).toBe(42);
    cache.invalidate((k) => k.startsWith('k'));
    expect(cache.size).toBe(0);
  });
});
