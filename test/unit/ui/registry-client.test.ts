import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/peers.js';
import {
  nextLink,
  RegistryAuthError,
  RegistryClient,
  RegistryDownError,
  RegistryNotFoundError,
} from '../../../src/ui/registry-client.js';
import { startTestRegistry, type TestRegistry } from './registry-helper.js';

describe('nextLink', () => {
  it('finds rel="next" among Link values', () => {
    expect(nextLink('</v2/_catalog?last=b&n=2>; rel="next"')).toBe('/v2/_catalog?last=b&n=2');
    expect(nextLink('<https://x/a>; rel="prev", </v2/x/tags/list?n=1&last=a>; rel=next')).toBe(
      '/v2/x/tags/list?n=1&last=a',
    );
    expect(nextLink('</a>; rel="prev"')).toBeUndefined();
    expect(nextLink(null)).toBeUndefined();
    expect(nextLink('garbage')).toBeUndefined();
  });
});

describe('RegistryClient against our registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  const names = ['a/one', 'a/two', 'b/three', 'c', 'd/e/f'];

  beforeAll(async () => {
    reg = await startTestRegistry();
    for (const n of names) await reg.pushImage(n, 'v1');
    for (const t of ['v2', 'v3', 'v4']) await reg.pushImage('c', t);
    client = new RegistryClient({ baseUrl: reg.url, credentials: { user: reg.user, password: reg.password } });
  });
  afterAll(() => reg?.close());

  it('follows catalog pagination to the end, whatever the page size', async () => {
    for (const n of [1, 2, 3, 1000]) expect(await client.catalog(n)).toEqual([...names].sort());
  });

  it('follows tag-list pagination to the end', async () => {
    expect(await client.tags('c', 1)).toEqual(['v1', 'v2', 'v3', 'v4']);
  });

  it('reads a manifest with its digest, and a config blob', async () => {
    const m = await client.manifest('a/one', 'v1');
    expect(m.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const byDigest = await client.manifest('a/one', m.digest);
    expect(byDigest.raw).toBe(m.raw);
    const cfg = await client.blobJson<{ created: string }>(
      'a/one',
      (m.manifest as { config: { digest: string } }).config.digest,
    );
    expect(cfg.created).toBe('2026-11-01T00:00:00Z');
  });

  it('deletes one tag and leaves the others', async () => {
    await reg.pushImage('x/del', 'keep');
    await reg.pushImage('x/del', 'drop');
    await client.deleteTag('x/del', 'drop');
    expect(await client.tags('x/del')).toEqual(['keep']);
  });

  it('types its failures: bad credentials, unknown things, nothing listening', async () => {
    const wrong = new RegistryClient({ baseUrl: reg.url, credentials: { user: reg.user, password: 'wrong' } });
    await expect(wrong.ping()).rejects.toBeInstanceOf(RegistryAuthError);
    await expect(client.manifest('a/one', 'nope')).rejects.toBeInstanceOf(RegistryNotFoundError);
    await expect(client.tags('no/such')).rejects.toBeInstanceOf(RegistryNotFoundError);
    const dead = new RegistryClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      credentials: { user: 'a', password: 'b' },
    });
    await expect(dead.ping()).rejects.toBeInstanceOf(RegistryDownError);
  });

  it('reads whoami and usage from the admin API', async () => {
    expect(await client.whoami()).toMatchObject({ user: reg.user, admin: true });
    const usage = await client.usage();
    expect(usage.repositories.map((r) => r.name)).toContain('a/one');
    expect(usage.totalBytes).toBeGreaterThan(0);
  });
});
