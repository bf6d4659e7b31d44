/**
 * The registry's online backup and `regctl restore --storage s3://…` on versitygw: a backup of a registry on one
 * bucket restores into another, which a registry then serves with the same digests; a blob missing from the bucket
 * is listed by the backup; a damaged archive writes nothing into the bucket; a bucket holding data is refused
 * without --force and replaced with it.
 */
import { execFile } from 'node:child_process';
import { DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readArchiveManifest } from '../../../src/registry/backup/restore.js';
import { basicAuth } from '../../helpers/auth.js';
import {
  builtCliPresent,
  REGCTL_BIN,
  REPO_ROOT,
  startRegistryProcess,
  type RegistryProcess,
} from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';

const run = promisify(execFile);
const ready = versitygwAvailable() && builtCliPresent();
const blobKey = (digest: string) => `reg/docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;

describe.skipIf(!ready)('online backup and restore on S3 (needs npm run build)', () => {
  let s3: S3Server;
  let dir: string;
  let source: string;
  let reg: RegistryProcess;
  const config = Buffer.from('{"os":"linux","architecture":"arm64"}');
  const layers = [Buffer.from('first layer backed up from S3'), Buffer.from('second layer backed up from S3')];
  const manifests: { tag: string; digest: string; body: Buffer }[] = [];

  const storageArgs = (bucket: string) => [
    '--storage',
    `s3://${bucket}/reg`,
    '--s3-endpoint',
    s3.endpoint,
    '--s3-path-style',
  ];
  const start = (bucket: string) => startRegistryProcess({ storageArgs: storageArgs(bucket), env: s3.env() });
  const client = (r: RegistryProcess) => new RegistryClient(r.url, basicAuth(r.username, r.password));
  const backupTo = async (file: string) => {
    const res = await fetch(`${reg.url}/admin/v1/backup`, {
      headers: { authorization: basicAuth(reg.username, reg.password) },
    });
    expect(res.status).toBe(200);
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    return readArchiveManifest(file);
  };
  const restore = async (file: string, bucket: string, extra: string[] = []) =>
    run(process.execPath, [REGCTL_BIN, 'restore', file, ...storageArgs(bucket), ...extra], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, NO_COLOR: '1', ...s3.env() },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
  const keys = async (bucket: string) =>
    ((await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key);

  beforeAll(async () => {
    s3 = await startVersitygw();
    dir = await mkdtemp(join(tmpdir(), 'regctl-backup-s3-'));
    source = await s3.createBucket();
    reg = await start(source);
    const c = client(reg);
    await c.pushBlobMonolithic('team/app', config);
    for (const [i, layer] of layers.entries()) {
      await c.pushBlobMonolithic('team/app', layer);
      const body = imageManifest(config, [layer]);
      manifests.push({ tag: `v${i + 1}`, digest: await c.putManifest('team/app', `v${i + 1}`, body), body });
    }
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('backs up a registry on S3 and restores it into another bucket, served with the same digests', async () => {
    const file = join(dir, 'full.tar');
    const m = await backupTo(file);
    expect(m.missingBlobs).toEqual([]);
    expect(m.repositories.map((r) => r.name)).toEqual(['team/app']);
    const target = await s3.createBucket();
    const r = await restore(file, target, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: m.id, verifyOnly: false, replaced: false });
    const restored = await start(target);
    try {
      const c = client(restored);
      for (const { tag, digest } of manifests) {
        const got = await c.getManifest('team/app', tag);
        expect(got.status).toBe(200);
        expect(sha256(got.body)).toBe(digest);
      }
      for (const b of [config, ...layers]) {
        const got = await c.getBlob('team/app', sha256(b));
        expect(got.status).toBe(200);
        expect(sha256(got.body)).toBe(sha256(b));
      }
    } finally {
      await restored.stop();
    }

    // Into a bucket holding data: refused without --force (nothing changed), replaced with it.
    const refused = await restore(file, target);
    expect(refused.code).toBe(6);
    expect(refused.stderr.split('\n')[0]).toBe(
      `✗ s3://${target}/reg already holds registry data; nothing was restored`,
    );
    const forced = await restore(file, target, ['--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ replaced: true });
  }, 120_000);

  it('a damaged archive is refused after reading it whole, and the bucket stays empty', async () => {
    const file = join(dir, 'full-again.tar');
    await backupTo(file);
    const bytes = await readFile(file);
    // Change one byte of the first layer's content inside the archive.
    const at = bytes.indexOf(layers[0] as Buffer);
    expect(at).toBeGreaterThan(0);
    bytes[at] = bytes[at]! ^ 0xff;
    const damaged = join(dir, 'damaged.tar');
    await writeFile(damaged, bytes);
    const target = await s3.createBucket();
    const r = await restore(damaged, target);
    expect(r.code).toBe(11);
    expect(r.stderr.split('\n')[0]).toMatch(/is damaged: .* does not match its (sha256|digest); nothing was restored$/);
    expect(await keys(target)).toEqual([]);

    // What a stack's restore container prints and regctl reads: one JSON event per line, ending in the error.
    const lines = await restore(damaged, target, ['--json-lines']);
    expect(lines.code).toBe(11);
    const events = lines.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; code?: string });
    expect(events.at(-1)).toMatchObject({ event: 'error', code: 'BACKUP_INVALID' });
    expect(await keys(target)).toEqual([]);
    const good = await restore(file, target, ['--json-lines']);
    expect(good.code, good.stderr).toBe(0);
    const done = good.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; result?: unknown });
    expect(done.at(-1)).toMatchObject({ event: 'done', result: { replaced: false, verifyOnly: false } });
    expect(done.slice(0, -1).every((e) => e.event === 'progress')).toBe(true);
  }, 60_000);

  it('a blob missing from the bucket is listed by the backup as missing', async () => {
    const lost = sha256(layers[1] as Buffer);
    await s3.client().send(new DeleteObjectCommand({ Bucket: source, Key: blobKey(lost) }));
    const m = await backupTo(join(dir, 'with-missing.tar'));
    expect(m.missingBlobs).toEqual([lost]);
  }, 60_000);
});
