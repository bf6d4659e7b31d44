import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fence } from '../../../src/registry/fence.js';
import {
  BackupFormatError,
  MANIFEST_NAME,
  blobDigestOfPath,
  isArchivePath,
  parseBackupManifest,
  type BackupManifest,
} from '../../../src/registry/backup/manifest.js';
import {
  dataDirIsEmpty,
  readArchiveManifest,
  restoreArchive,
  RestoreRefused,
} from '../../../src/registry/backup/restore.js';
import {
  authHeaders,
  getBlob,
  getManifestDigest,
  pushImage,
  putManifest,
  OCI_INDEX,
  startFixture,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

const hex = (c: string) => c.repeat(64);

function manifest(over: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: 'regctl-backup',
    formatVersion: 1,
    id: 'x',
    regctlVersion: '0.1.0',
    createdAt: '2026-01-01T00:00:00.000Z',
    fenceMs: 3,
    base: null,
    repositories: [],
    files: [],
    baseBlobs: [],
    missingBlobs: [],
    ...over,
  };
}

describe('backup manifest', () => {
  it('accepts registry layout paths only', () => {
    expect(isArchivePath(`docker/registry/v2/blobs/sha256/aa/${hex('a')}/data`)).toBe(true);
    expect(isArchivePath('docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link')).toBe(true);
    expect(isArchivePath('docker/registry/v2/repositories/app/_uploads/x/data')).toBe(false);
    expect(isArchivePath('../etc/passwd')).toBe(false);
    expect(isArchivePath('/docker/registry/v2/repositories/a/_layers/x')).toBe(false);
    expect(isArchivePath('docker/registry/v2/repositories/a/../../b/_layers/x')).toBe(false);
    expect(isArchivePath(`docker/registry/v2/blobs/sha256/bb/${hex('a')}/data`)).toBe(false);
    expect(blobDigestOfPath(`docker/registry/v2/blobs/sha256/aa/${hex('a')}/data`)).toEqual({
      algorithm: 'sha256',
      hex: hex('a'),
    });
  });

  it('round-trips and rejects bad content with a message naming the problem', () => {
    const good = manifest({
      files: [{ path: `docker/registry/v2/blobs/sha256/aa/${hex('a')}/data`, size: 3, sha256: hex('a') }],
    });
    expect(parseBackupManifest(JSON.stringify(good))).toEqual(good);
    expect(() => parseBackupManifest('{')).toThrow(BackupFormatError);
    expect(() => parseBackupManifest(JSON.stringify({ ...good, format: 'other' }))).toThrow(/format/);
    expect(() =>
      parseBackupManifest(JSON.stringify(manifest({ files: [{ path: '../x', size: 1, sha256: hex('a') }] }))),
    ).toThrow(/outside the registry layout/);
    expect(() => parseBackupManifest(JSON.stringify(manifest({ files: [good.files[0]!, good.files[0]!] })))).toThrow(
      /twice/,
    );
    expect(() =>
      parseBackupManifest(JSON.stringify(manifest({ files: [{ ...good.files[0]!, sha256: hex('b') }] }))),
    ).toThrow(/not its digest/);
    expect(() => parseBackupManifest(JSON.stringify(manifest({ baseBlobs: good.files })))).toThrow(/names no base/);
  });
});

describe('Fence write tracking', () => {
  it('drain waits for writes that got past the fence; new writes wait for it to lift', async () => {
    const fence = new Fence();
    const release = await fence.enterWrite(100);
    fence.set(10);
    let drained = false;
    const drain = fence.drain(1000).then((ok) => (drained = ok));
    await new Promise((r) => setTimeout(r, 30));
    expect(drained).toBe(false);
    const late = fence.enterWrite(5000);
    release();
    await drain;
    expect(drained).toBe(true);
    expect(fence.writesInProgress).toBe(0);
    fence.clear();
    const releaseLate = await late;
    expect(fence.writesInProgress).toBe(1);
    releaseLate();
    releaseLate();
    expect(fence.writesInProgress).toBe(0);
  });

  it('a write refused after the wait is not counted', async () => {
    const fence = new Fence();
    fence.set(10);
    await expect(fence.enterWrite(50)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(fence.writesInProgress).toBe(0);
  });
});

describe('GET /admin/v1/backup and restoreArchive', () => {
  let fx: Fixture;
  let archive: string;
  const pushed: { repo: string; tag: string; digest: string; blobs: string[] }[] = [];
  const bigLayer = randomBytes(300_000);
  let referrer = '';

  beforeAll(async () => {
    fx = await startFixture();
    for (const [repo, tag] of [
      ['team/app', 'v1'],
      ['tools', 'latest'],
    ] as const) {
      const img = await pushImage(
        fx.url,
        repo,
        tag,
        [repo === 'tools' ? bigLayer : randomBytes(200_000), randomBytes(1000)],
        fx.admin,
      );
      pushed.push({ repo, tag, ...img });
    }
    const idx = await putManifest(
      fx.url,
      'team/app',
      'multi',
      {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: pushed[0]!.digest,
            size: 1,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      },
      OCI_INDEX,
      fx.admin,
    );
    expect(idx.status).toBe(201);
    const sig = await pushImage(fx.url, 'team/app', 'sig', [Buffer.from('signature')], fx.admin, {
      artifactType: 'application/vnd.example.sig',
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: pushed[0]!.digest, size: 1 },
    });
    const untag = await fetch(`${fx.url}/v2/team/app/manifests/sig`, {
      method: 'DELETE',
      headers: authHeaders(fx.admin),
    });
    expect(untag.status).toBe(202);
    referrer = sig.digest;
    const res = await fetch(`${fx.url}/admin/v1/backup`, { headers: authHeaders(fx.admin) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    archive = join(fx.root, 'backup.tar');
    await writeFile(archive, Buffer.from(await res.arrayBuffer()));
  });
  afterAll(async () => fx.close());

  it('writes the manifest first, listing every file with size and sha256', async () => {
    const m = await readArchiveManifest(archive);
    expect(m.regctlVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(m.repositories.map((r) => r.name)).toEqual(['team/app', 'tools']);
    const blobPaths = m.files.filter((f) => blobDigestOfPath(f.path)).map((f) => f.sha256);
    for (const p of pushed)
      for (const b of [p.digest, ...p.blobs]) expect(blobPaths).toContain(b.slice('sha256:'.length));
    expect(m.files.some((f) => f.path.endsWith('/_manifests/tags/multi/current/link'))).toBe(true);
    expect(m.missingBlobs).toEqual([]);
    const raw = await readFile(archive);
    expect(raw.subarray(0, MANIFEST_NAME.length).toString()).toBe(MANIFEST_NAME);
  });

  it('a sweeping GC is refused while a backup streams, and runs once it is done', async () => {
    await pushImage(fx.url, 'big', 'v1', [randomBytes(32 * 1024 * 1024)], fx.admin);
    const res = await fetch(`${fx.url}/admin/v1/backup`, { headers: authHeaders(fx.admin) });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const gc = await fetch(`${fx.url}/admin/v1/gc`, {
      method: 'POST',
      headers: { ...authHeaders(fx.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ dryRun: false }),
    });
    expect(gc.status).toBe(429);
    expect(JSON.stringify(await gc.json())).toContain('a backup is running');
    const dry = await fetch(`${fx.url}/admin/v1/gc`, {
      method: 'POST',
      headers: { ...authHeaders(fx.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ dryRun: true }),
    });
    expect(dry.status).toBe(200);
    await reader.cancel();
    await expect
      .poll(
        async () =>
          (
            await fetch(`${fx.url}/admin/v1/gc`, {
              method: 'POST',
              headers: { ...authHeaders(fx.admin), 'content-type': 'application/json' },
              body: JSON.stringify({ dryRun: false }),
            })
          ).status,
        { timeout: 5000, interval: 100 },
      )
      .toBe(200);
  });

  it('refuses a non-admin', async () => {
    const res = await fetch(`${fx.url}/admin/v1/backup`);
    expect(res.status).toBe(401);
  });

  it('restores into an empty directory that a registry then serves with identical digests', async () => {
    const target = join(fx.root, 'restored');
    await mkdir(target);
    const progress: number[] = [];
    const r = await restoreArchive({ archive, dataDir: target, onProgress: (p) => progress.push(p.bytes) });
    expect(r.files).toBeGreaterThan(10);
    expect(progress.at(-1)).toBe(r.bytes);
    expect((await readdir(target)).sort()).toEqual(['docker']);
    const { createRegistryServer } = await import('../../../src/registry/server.js');
    const other = createRegistryServer({ dataDir: target, noAuth: true, port: 0, log: () => undefined });
    const { url } = await other.listen();
    try {
      for (const p of pushed) {
        expect(await getManifestDigest(url, p.repo, p.tag, undefined)).toEqual({ status: 200, digest: p.digest });
        for (const b of p.blobs) expect(await getBlob(url, p.repo, b, undefined)).toEqual({ status: 200, digest: b });
      }
      expect((await getManifestDigest(url, 'team/app', 'multi', undefined)).status).toBe(200);
      const refs = (await (await fetch(`${url}/v2/team/app/referrers/${pushed[0]!.digest}`)).json()) as {
        manifests: { digest: string; artifactType?: string }[];
      };
      expect(refs.manifests).toEqual([
        expect.objectContaining({ digest: referrer, artifactType: 'application/vnd.example.sig' }),
      ]);
      expect((await getManifestDigest(url, 'team/app', referrer, undefined)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('refuses a non-empty directory without force, and replaces it with force', async () => {
    const target = join(fx.root, 'restored-twice');
    await mkdir(join(target, '.regctl-restore-leftover/docker'), { recursive: true });
    await restoreArchive({ archive, dataDir: target });
    await expect(restoreArchive({ archive, dataDir: target })).rejects.toMatchObject({ reason: 'NOT_EMPTY' });
    const r = await restoreArchive({ archive, dataDir: target, force: true });
    expect(r.replaced).toBe(true);
    expect((await readdir(target)).sort()).toEqual(['docker']);
  });

  it('refuses an archive with one flipped byte in a blob and writes nothing', async () => {
    const raw = await readFile(archive);
    const m = await readArchiveManifest(archive);
    const big = m.files.find((f) => f.size === 300_000)!;
    const at = raw.indexOf(bigLayer.subarray(0, 64)) + 1000;
    expect(at).toBeGreaterThan(1000);
    const damagedFile = join(fx.root, 'damaged.tar');
    const copy = Buffer.from(raw);
    copy[at] = (copy[at]! + 1) % 256;
    await writeFile(damagedFile, copy);
    const target = join(fx.root, 'never');
    await mkdir(target);
    const err = await restoreArchive({ archive: damagedFile, dataDir: target }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreRefused);
    expect((err as RestoreRefused).reason).toBe('DAMAGED');
    expect((err as Error).message).toContain(big.path);
    expect(await readdir(target)).toEqual([]);
    expect(await dataDirIsEmpty(target)).toBe(true);
  });

  it('refuses a truncated archive and one that is not a backup', async () => {
    const raw = await readFile(archive);
    const cut = join(fx.root, 'cut.tar');
    await writeFile(cut, raw.subarray(0, Math.floor(raw.length / 2)));
    const target = join(fx.root, 'never2');
    await mkdir(target);
    await expect(restoreArchive({ archive: cut, dataDir: target })).rejects.toMatchObject({ reason: 'DAMAGED' });
    const junk = join(fx.root, 'junk.tar');
    await writeFile(junk, randomBytes(4096));
    await expect(restoreArchive({ archive: junk, dataDir: target })).rejects.toMatchObject({ reason: 'DAMAGED' });
    expect(await readdir(target)).toEqual([]);
  });
});
