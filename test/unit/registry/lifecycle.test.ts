import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { errorCode, pushImage, snapshot, startRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry | undefined;
afterEach(async () => {
  await reg?.stop();
  reg = undefined;
});

describe('stale uploads', () => {
  it('are purged by the timer once older than the purge age, and at startup', async () => {
    reg = await startRegistry({ uploadPurgeAgeMs: 1500 });
    const s = await reg.fetch('/v2/s/app/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    await reg.fetch(loc, { method: 'PATCH', body: 'partial' });
    expect((await reg.fetch(loc)).status).toBe(204);
    // The upload answers 404 as soon as its state file is gone; the purge removes the rest of its directory, and
    // the emptied _uploads directory, in the moments after.
    await vi.waitFor(
      async () => {
        expect((await reg!.fetch(loc)).status).toBe(404);
        expect(Object.keys(await snapshot(reg!.data)).filter((p) => p.includes('_uploads'))).toEqual([]);
      },
      { timeout: 8000, interval: 250 },
    );
  });

  it('an upload left by an earlier process is purged at startup', async () => {
    const first = await startRegistry({ uploadPurgeAgeMs: 3600_000 });
    const dir = join(
      first.data,
      'docker/registry/v2/repositories/old/app/_uploads/3f0b4b8e-1111-4222-8333-444455556666',
    );
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'startedat'), new Date(Date.now() - 7200_000).toISOString());
    await writeFile(join(dir, 'data'), 'left behind');
    await first.server.close();
    const { createRegistryServer } = await import('../../../src/registry/server.js');
    const second = createRegistryServer({
      port: 0,
      dataDir: first.data,
      noAuth: true,
      uploadPurgeAgeMs: 3600_000,
      log: () => undefined,
    });
    await second.listen();
    await second.close();
    expect(Object.keys(await snapshot(first.data)).some((p) => p.includes('_uploads'))).toBe(false);
    await first.stop();
  });
});

describe('tags left incomplete by a killed process', () => {
  // The walk of the in-memory index finds such a directory; a persistent store is told by the write's intent
  // instead (metadata-crash.test.ts kills a tag write the same way).
  it('a tag directory without current/link is removed at startup; complete tags stay', async () => {
    const first = await startRegistry({ metadata: { kind: 'memory' } });
    const img = await pushImage(first, 'inc/app', 'v1');
    const tags = join(first.data, 'docker/registry/v2/repositories/inc/app/_manifests/tags');
    // What a kill between a tag's index link and its current link leaves.
    const broken = join(tags, 'half-written/index/sha256', img.digest.slice(7));
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'link'), img.digest);
    await first.server.close();
    const { createRegistryServer } = await import('../../../src/registry/server.js');
    const logs: string[] = [];
    const second = createRegistryServer({
      port: 0,
      dataDir: first.data,
      noAuth: true,
      metadata: { kind: 'memory' },
      log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
    });
    const { url } = await second.listen();
    try {
      expect(await readdir(tags)).toEqual(['v1']);
      expect(logs).toContainEqual(expect.stringContaining('"count":1'));
      expect((await fetch(`${url}/v2/inc/app/manifests/v1`)).status).toBe(200);
      expect(await (await fetch(`${url}/v2/inc/app/tags/list`)).json()).toEqual({ name: 'inc/app', tags: ['v1'] });
    } finally {
      await second.close();
      await first.stop();
    }
  });
});

describe('resumed uploads', () => {
  it('an upload started before a restart completes afterwards (hash state rebuilt from the file)', async () => {
    const first = await startRegistry();
    const s = await first.fetch('/v2/r/app/blobs/uploads/', { method: 'POST' });
    const loc = s.headers.get('location') as string;
    await first.fetch(loc, { method: 'PATCH', body: 'before restart, ' });
    await first.server.close();
    const { createRegistryServer } = await import('../../../src/registry/server.js');
    const second = createRegistryServer({ port: 0, dataDir: first.data, noAuth: true, log: () => undefined });
    const { url } = await second.listen();
    try {
      const status = await fetch(url + loc);
      expect(status.headers.get('range')).toBe('0-15');
      const { createHash } = await import('node:crypto');
      const digest = `sha256:${createHash('sha256').update('before restart, after restart').digest('hex')}`;
      const put = await fetch(`${url}${loc}?digest=${digest}`, { method: 'PUT', body: 'after restart' });
      expect(put.status).toBe(201);
      expect(await (await fetch(`${url}/v2/r/app/blobs/${digest}`)).text()).toBe('before restart, after restart');
    } finally {
      await second.close();
      await first.stop();
    }
  });
});

describe('free space guard', () => {
  it('refuses pushes with 503 when free space is below --min-free, reads go on', async () => {
    reg = await startRegistry({ minFreeBytes: Number.MAX_SAFE_INTEGER });
    const res = await reg.fetch('/v2/m/app/blobs/uploads/', { method: 'POST' });
    expect(res.status).toBe(503);
    expect(await errorCode(res)).toBe('UNAVAILABLE');
    expect((await reg.fetch('/v2/_catalog')).status).toBe(200);
  });
});

describe('open mode and HEAD', () => {
  it('--no-auth serves without credentials; HEAD /v2/ answers like GET', async () => {
    reg = await startRegistry({ auth: false, access: false });
    expect((await reg.fetch('/v2/', { auth: null })).status).toBe(200);
    expect((await reg.fetch('/v2/', { method: 'HEAD', auth: null })).status).toBe(200);
    expect((await reg.fetch('/admin/v1/whoami', { auth: null })).status).toBe(200);
  });
});
