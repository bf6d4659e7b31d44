/**
 * Failures the reliability runs found, kept as regression tests against the real server on a socket.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { runFsck } from '../../../src/registry/storage/maintenance.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { RegistryClient, sha256 } from './helpers/client.js';

const V2 = 'docker/registry/v2';

describe('regressions found by the crash harness', () => {
  let dir: string;
  let server: RegistryServer;
  let client: RegistryClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-regress-'));
    server = createRegistryServer({ port: 0, dataDir: join(dir, 'data'), noAuth: true, logLevel: 'silent' });
    client = new RegistryClient((await server.listen()).url);
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GC removes layer links left pointing at blobs a killed GC had already swept', async () => {
    // A GC killed between sweeping a blob and unlinking it leaves `_layers/<digest>/link` without a blob;
    // later GCs used to keep such links forever (fsck: link-dangling).
    const blob = Buffer.from('swept by a GC that was then killed');
    const digest = await client.pushBlobMonolithic('regress/gc', blob);
    await rm(join(dir, 'data', V2, 'blobs/sha256', digest.slice(7, 9), digest.slice(7)), { recursive: true });
    const store = new RegistryStore(new FsDriver(join(dir, 'data')));
    expect((await runFsck(store)).problems.map((p) => p.kind)).toEqual(['link-dangling']);

    await client.json('POST', '/admin/v1/gc', { graceSeconds: 0 });
    await expect(access(join(dir, 'data', V2, 'repositories/regress/gc/_layers/sha256', digest.slice(7), 'link'))).rejects.toThrow();
    expect((await runFsck(store)).problems).toEqual([]);
    expect(digest).toBe(sha256(blob));
  });

  it('GC keeps the links of blobs that are present', async () => {
    const blob = Buffer.from('a blob pushed and kept by the grace window');
    const digest = await client.pushBlobMonolithic('regress/gc-keep', blob);
    await client.json('POST', '/admin/v1/gc', { graceSeconds: 3600 });
    const got = await client.getBlob('regress/gc-keep', digest);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(digest);
  });
});
