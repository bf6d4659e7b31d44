/**
 * `regctl fsck --storage s3://…` on versitygw: a bucket written by `regctl serve` checks clean; planted bad data (a
 * blob missing from the bucket, a link holding garbage, a blob whose bytes changed) is reported and exits 10;
 * `--repair` removes it and leaves the intact image; `--rebuild-metadata` writes the store a later start reuses.
 */
import { execFile } from 'node:child_process';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import {
  builtCliPresent,
  REGCTL_BIN,
  REPO_ROOT,
  startRegistryProcess,
  startServe,
} from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';

const run = promisify(execFile);
const ready = versitygwAvailable() && builtCliPresent();
const PREFIX = 'fsck';
const V2 = 'docker/registry/v2';
const blobKey = (digest: string) => `${V2}/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;
const layerLinkKey = (repo: string, digest: string) =>
  `${V2}/repositories/${repo}/_layers/sha256/${digest.slice(7)}/link`;

interface Problem {
  kind: string;
  path: string;
}

describe.skipIf(!ready)('regctl fsck on an S3 bucket (needs npm run build)', () => {
  let s3: S3Server;
  let bucket: string;
  let dir: string;
  const config = Buffer.from('{"os":"linux","architecture":"amd64"}');
  const layer = Buffer.from('layer content for fsck on S3');
  const lost = Buffer.from('a layer that goes missing from the bucket');
  const kept = Buffer.from('a layer whose bytes get changed in the bucket');
  const intact = Buffer.from('the layer of the image nobody touches');
  const orphaned = Buffer.from('the layer of an image whose manifest goes missing');
  const tagLinkKey = (repo: string, tag: string) => `${V2}/repositories/${repo}/_manifests/tags/${tag}/current/link`;

  const fsck = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const storage = ['--storage', `s3://${bucket}/${PREFIX}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'];
    try {
      const { stdout, stderr } = await run(process.execPath, [REGCTL_BIN, 'fsck', ...storage, ...args], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, NO_COLOR: '1', ...s3.env() },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const key = (k: string) => `${PREFIX}/${k}`;
  const put = (k: string, body: Buffer | string) =>
    s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key(k), Body: body }));
  const get = async (k: string) =>
    Buffer.from(
      (await (
        await s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key(k) }))
      ).Body?.transformToByteArray()) ?? [],
    );
  const exists = (k: string) =>
    get(k).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    s3 = await startVersitygw();
    bucket = await s3.createBucket();
    dir = await mkdtemp(join(tmpdir(), 'regctl-fsck-s3-'));
    const reg = await startRegistryProcess({
      storageArgs: ['--storage', `s3://${bucket}/${PREFIX}`, '--s3-endpoint', s3.endpoint, '--s3-path-style'],
      env: s3.env(),
    });
    try {
      const c = new RegistryClient(reg.url, basicAuth(reg.username, reg.password));
      for (const [repo, l] of [
        ['fsck/app', layer],
        ['fsck/gone', lost],
        ['fsck/changed', kept],
        ['fsck/intact', intact],
        ['fsck/orphan', orphaned],
      ] as const) {
        await c.pushBlobMonolithic(repo, config);
        await c.pushBlobMonolithic(repo, l);
        await c.putManifest(repo, 'v1', imageManifest(config, [l]));
      }
    } finally {
      await reg.stop();
    }
  }, 120_000);
  afterAll(async () => {
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('checks a clean bucket: every blob read and hashed, exit 0', async () => {
    const r = await fsck(['--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { storage: string; blobsChecked: number; problems: Problem[] };
    expect(report.storage).toBe(`s3://${bucket}/${PREFIX}`);
    // config, 5 layers and 5 manifests
    expect(report.blobsChecked).toBe(11);
    expect(report.problems).toEqual([]);
  });

  it('reports a missing blob, a corrupted link and a changed blob; --repair removes them, the intact image stays', async () => {
    await s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key(blobKey(sha256(lost))) }));
    await put(layerLinkKey('fsck/app', sha256(layer)), 'not a digest');
    await put(blobKey(sha256(kept)), 'other bytes');
    const orphanManifest = sha256(imageManifest(config, [orphaned]));
    await s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key(blobKey(orphanManifest)) }));
    const r = await fsck(['--json']);
    expect(r.code).toBe(10);
    const problems = (JSON.parse(r.stdout) as { problems: Problem[] }).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'link-dangling', path: layerLinkKey('fsck/gone', sha256(lost)) }),
        expect.objectContaining({ kind: 'link-invalid', path: layerLinkKey('fsck/app', sha256(layer)) }),
        expect.objectContaining({ kind: 'blob-corrupt', path: blobKey(sha256(kept)) }),
        expect.objectContaining({ kind: 'link-dangling', path: layerLinkKey('fsck/changed', sha256(kept)) }),
        expect.objectContaining({ kind: 'tag-dangling', path: tagLinkKey('fsck/orphan', 'v1') }),
      ]),
    );
    expect(problems.filter((p) => p.path.includes('fsck/intact'))).toEqual([]);

    const human = await fsck([]);
    expect(human.code).toBe(10);
    expect(human.stderr).toContain(`problem(s) found in s3://${bucket}/${PREFIX}`);

    const repair = await fsck(['--repair']);
    expect(repair.code, repair.stderr).toBe(0);
    expect(repair.stdout).toContain('repaired blob-corrupt');
    expect(await exists(blobKey(sha256(kept)))).toBe(false);
    expect(await exists(layerLinkKey('fsck/app', sha256(layer)))).toBe(false);
    expect(await exists(tagLinkKey('fsck/orphan', 'v1'))).toBe(false);
    const again = await fsck([]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('no problems');
    expect(sha256(await get(blobKey(sha256(intact))))).toBe(sha256(intact));
  }, 60_000);

  it('--rebuild-metadata writes the state directory store, which the next start uses without importing', async () => {
    const stateDir = join(dir, 'state');
    const r = await fsck(['--rebuild-metadata', '--state-dir', stateDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      storage: `s3://${bucket}/${PREFIX}`,
      store: 'sqlite',
      repositories: 4,
    });
    const srv = await startServe(
      [
        '--storage',
        `s3://${bucket}/${PREFIX}`,
        '--s3-endpoint',
        s3.endpoint,
        '--s3-path-style',
        '--state-dir',
        stateDir,
        '--no-auth',
      ],
      { inheritEnv: false, env: s3.env() },
    );
    try {
      expect(srv.output()).not.toContain('importing storage');
      const tags = await fetch(`${srv.url}/v2/fsck/intact/tags/list`);
      expect(await tags.json()).toEqual({ name: 'fsck/intact', tags: ['v1'] });
    } finally {
      await srv.stop();
    }
    const memory = await fsck(['--rebuild-metadata', '--metadata', 'memory']);
    expect(memory.code).toBe(3);
    expect(memory.stderr.split('\n')[0]).toContain('memory is rebuilt at every start');
  }, 60_000);

  it('a bucket that does not exist is one line saying so, and a non-zero exit', async () => {
    const r = await run(
      process.execPath,
      [REGCTL_BIN, 'fsck', '--storage', 's3://no-such-bucket', '--s3-endpoint', s3.endpoint, '--s3-path-style'],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH, NO_COLOR: '1', ...s3.env() } },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(10);
    expect(r.stderr.split('\n')[0]).toMatch(/^✗ cannot read s3:\/\/no-such-bucket: /);
  });
});
