/**
 * `regctl serve --storage s3://...` on versitygw: the OCI conformance suite, crane and oras, buckets exchanged with
 * distribution v3 (its S3 driver) in both directions, and one-line errors for bad settings.
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import {
  freePort,
  peerAvailable,
  peerPath,
  failureReport,
  runConformance,
  OUR_CONFORMANCE_SETTINGS,
} from '../../helpers/peers.js';
import { startReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import {
  REGCTL_BIN,
  REPO_ROOT,
  builtCliPresent,
  startRegistryProcess,
  type RegistryProcess,
} from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { writeOciLayout } from './oci-layout.js';

const ready = versitygwAvailable() && builtCliPresent();
let s3: S3Server;
let work: string;

beforeAll(async () => {
  if (!ready) return;
  s3 = await startVersitygw();
  work = await mkdtemp(join(tmpdir(), 'regctl-s3-serve-'));
}, 60_000);
afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const storageArgs = (bucket: string, prefix: string) => [
  '--storage',
  `s3://${bucket}/${prefix}`,
  '--s3-endpoint',
  s3.endpoint,
  '--s3-path-style',
];

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3
      .client()
      .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push(o.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function openUploads(bucket: string): Promise<number> {
  return ((await s3.client().send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length;
}

/** crane with its own docker config (credentials for `reg` when given). */
async function crane(args: string[], reg?: RegistryProcess): Promise<string> {
  const env = { DOCKER_CONFIG: join(work, 'crane-config') };
  if (reg) await run(peerPath('crane'), ['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password], { env });
  return run(peerPath('crane'), [...args, '--insecure'], { env, stdoutOnly: true });
}

describe.skipIf(!ready || !peerAvailable('conformance'))('OCI conformance: regctl serve on S3', () => {
  let reg: RegistryProcess;
  let bucket: string;
  beforeAll(async () => {
    bucket = await s3.createBucket();
    reg = await startRegistryProcess({ storageArgs: storageArgs(bucket, 'conf'), env: s3.env() });
  });
  afterAll(async () => reg?.stop());

  it('passes every enabled test; the bucket holds distribution keys and no open multipart upload', async () => {
    const resultsDir = join(work, 'conformance');
    const result = await runConformance({
      registry: reg.host,
      username: reg.username,
      password: reg.password,
      resultsDir,
      env: OUR_CONFORMANCE_SETTINGS,
    });
    const all = { ...result.apis, ...result.data };
    const failed = Object.entries(all).filter(([, v]) => v !== 'Pass' && v !== 'Disabled');
    expect(failed, failureReport(result)).toEqual([]);
    expect(Object.entries(all).filter(([, v]) => v === 'Pass').length).toBeGreaterThan(10);
    expect(result.exitCode).toBe(0);
    const stored = await keys(bucket);
    expect(stored.length).toBeGreaterThan(0);
    // Distribution's keys, and beside v2 the one key of ours: the marker naming the import the metadata store holds.
    expect(stored.filter((k) => !k.startsWith('conf/docker/registry/v2/'))).toEqual([
      'conf/docker/registry/regctl/metadata-id',
    ]);
    expect(
      stored.some((k) => /^conf\/docker\/registry\/v2\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data$/.test(k)),
    ).toBe(true);
    expect(await openUploads(bucket)).toBe(0);
    // the S3 keys never reach the logs
    expect(reg.output()).not.toContain(s3.secretAccessKey);
    // nor does the SDK's console warning for each streaming upload that fails (the suite's bad-digest pushes make
    // the registry abort some): past the startup line, the output is the registry's JSON log lines only
    const lines = reg
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.includes('registry listening on'));
    expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
  });
});

describe.skipIf(!ready || !peerAvailable('crane') || !peerAvailable('oras'))('crane and oras on S3', () => {
  let reg: RegistryProcess;
  beforeAll(async () => {
    reg = await startRegistryProcess({ storageArgs: storageArgs(await s3.createBucket(), 'clients'), env: s3.env() });
  });
  afterAll(async () => reg?.stop());

  it('crane pushes an image with 12 MiB layers and pulls it back with the same digests', async () => {
    const img = await writeOciLayout(join(work, 'cr-src'), { tag: 'v1', layers: 2, layerBytes: 12 * 1024 * 1024 });
    await crane(['push', img.dir, `${reg.host}/cr/big:v1`], reg);
    expect((await crane(['digest', `${reg.host}/cr/big:v1`])).trim()).toBe(img.manifestDigest);
    const pulled = join(work, 'cr-out');
    await crane(['pull', '--format', 'oci', `${reg.host}/cr/big:v1`, pulled]);
    for (const layer of img.layerDigests) {
      const hex = layer.slice('sha256:'.length);
      const [a, b] = await Promise.all([
        readFile(join(img.dir, 'blobs/sha256', hex)),
        readFile(join(pulled, 'blobs/sha256', hex)),
      ]);
      expect(b.equals(a)).toBe(true);
    }
  });

  it('oras pushes and pulls an artifact', async () => {
    const dir = join(work, 'oras');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'report.txt'), 'artifact body on S3\n');
    const auth = ['--plain-http', '-u', reg.username, '-p', reg.password];
    const env = { DOCKER_CONFIG: join(work, 'oras-config') };
    await run(peerPath('oras'), ['push', `${reg.host}/or/art:v1`, 'report.txt:text/plain', ...auth], { env, cwd: dir });
    const out = join(work, 'oras-out');
    await run(peerPath('oras'), ['pull', `${reg.host}/or/art:v1`, '-o', out, ...auth], { env });
    expect(await readFile(join(out, 'report.txt'), 'utf8')).toBe('artifact body on S3\n');
  });
});

describe.skipIf(!ready || !peerAvailable('crane') || !peerAvailable('registry-v3'))(
  'buckets exchanged with distribution v3 (its S3 driver)',
  () => {
    const v3 = (bucket: string, rootdirectory: string) =>
      startReferenceRegistry({
        implementation: 'registry-v3',
        auth: false,
        s3: {
          endpoint: s3.endpoint,
          region: s3.region,
          bucket,
          rootdirectory,
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
        },
      });

    it('a bucket written by distribution v3 is served by regctl with identical digests', async () => {
      const bucket = await s3.createBucket();
      const img = await writeOciLayout(join(work, 'from-v3'), { tag: 'v1', layers: 2, layerBytes: 6 * 1024 * 1024 });
      const dist = await v3(bucket, '/shared');
      try {
        await crane(['push', img.dir, `${dist.host}/team/app:v1`]);
      } finally {
        await dist.stop();
      }
      const written = await keys(bucket);
      expect(written.filter((k) => k.endsWith('/data')).length).toBeGreaterThanOrEqual(4);
      expect(written.every((k) => k.startsWith('shared/docker/registry/v2/'))).toBe(true);
      const reg = await startRegistryProcess({ storageArgs: storageArgs(bucket, 'shared'), env: s3.env() });
      try {
        expect((await crane(['digest', `${reg.host}/team/app:v1`], reg)).trim()).toBe(img.manifestDigest);
        expect((await crane(['catalog', reg.host])).trim().split('\n')).toEqual(['team/app']);
        const pulled = join(work, 'from-v3-out');
        await crane(['pull', '--format', 'oci', `${reg.host}/team/app:v1`, pulled]);
        const index = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as {
          manifests: { digest: string }[];
        };
        expect(index.manifests[0]?.digest).toBe(img.manifestDigest);
      } finally {
        await reg.stop();
      }
    });

    it('a bucket written by regctl is served by distribution v3 with identical digests', async () => {
      const bucket = await s3.createBucket();
      const img = await writeOciLayout(join(work, 'to-v3'), { tag: 'v1', layers: 2, layerBytes: 6 * 1024 * 1024 });
      const reg = await startRegistryProcess({ storageArgs: storageArgs(bucket, 'ours'), env: s3.env() });
      try {
        await crane(['push', img.dir, `${reg.host}/team/svc:v2`], reg);
      } finally {
        await reg.stop();
      }
      expect(await openUploads(bucket)).toBe(0);
      const dist = await v3(bucket, '/ours');
      try {
        expect((await crane(['digest', `${dist.host}/team/svc:v2`])).trim()).toBe(img.manifestDigest);
        const pulled = join(work, 'to-v3-out');
        await crane(['pull', '--format', 'oci', `${dist.host}/team/svc:v2`, pulled]);
        for (const layer of img.layerDigests) {
          const hex = layer.slice('sha256:'.length);
          const [a, b] = await Promise.all([
            readFile(join(img.dir, 'blobs/sha256', hex)),
            readFile(join(pulled, 'blobs/sha256', hex)),
          ]);
          expect(b.equals(a)).toBe(true);
        }
      } finally {
        await dist.stop();
      }
    });
  },
);

/** GET of a blob through the registry, redirects not followed. */
function getBlob(reg: RegistryProcess, name: string, digest: string, method = 'GET'): Promise<Response> {
  return fetch(`${reg.url}/v2/${name}/blobs/${digest}`, {
    method,
    redirect: 'manual',
    headers: { authorization: basicAuth(reg.username, reg.password) },
  });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe.skipIf(!ready || !peerAvailable('crane'))('--s3-redirect: blob downloads from presigned S3 URLs', () => {
  let bucket: string;
  let plain: RegistryProcess;
  let redirecting: RegistryProcess;
  beforeAll(async () => {
    bucket = await s3.createBucket();
    plain = await startRegistryProcess({ storageArgs: storageArgs(bucket, 'redir'), env: s3.env() });
  });
  afterAll(async () => {
    await plain?.stop();
    await redirecting?.stop();
  });

  it('off by default; on, GET answers 307 to a URL on the S3 endpoint that serves the bytes and ranges', async () => {
    const img = await writeOciLayout(join(work, 'redir'), { tag: 'v1', layers: 1, layerBytes: 256 * 1024 });
    await crane(['push', img.dir, `${plain.host}/rd/img:v1`], plain);
    const layer = img.layerDigests[0] as string;
    const expected = await readFile(join(img.dir, 'blobs/sha256', layer.slice('sha256:'.length)));
    // started after the push: a process's tag index is built at start (the shared metadata store is separate work)
    redirecting = await startRegistryProcess({
      storageArgs: [...storageArgs(bucket, 'redir'), '--s3-redirect'],
      env: s3.env(),
    });

    const direct = await getBlob(plain, 'rd/img', layer);
    expect(direct.status).toBe(200);
    expect(sha256(Buffer.from(await direct.arrayBuffer()))).toBe(layer);

    const redirected = await getBlob(redirecting, 'rd/img', layer);
    await redirected.arrayBuffer();
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('docker-content-digest')).toBe(layer);
    const location = redirected.headers.get('location') as string;
    expect(location.startsWith(`${s3.endpoint}/${bucket}/redir/docker/registry/v2/blobs/sha256/`)).toBe(true);
    expect(location).toContain('X-Amz-Signature=');
    expect(location).not.toContain(s3.secretAccessKey);
    // the presigned URL needs no credentials of the client's
    const fromS3 = await fetch(location);
    expect(fromS3.status).toBe(200);
    expect(Buffer.from(await fromS3.arrayBuffer()).equals(expected)).toBe(true);
    const ranged = await fetch(location, { headers: { Range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(expected.subarray(10, 20))).toBe(true);
    // HEAD and unknown blobs are still answered by the registry
    const head = await getBlob(redirecting, 'rd/img', layer, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(expected.length));
    const unknown = await getBlob(redirecting, 'rd/img', sha256(Buffer.from('absent')));
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();
    // a client following the redirect pulls the image
    const pulled = join(work, 'redir-out');
    await crane(['pull', '--format', 'oci', `${redirecting.host}/rd/img:v1`, pulled], redirecting);
    const again = await readFile(join(pulled, 'blobs/sha256', layer.slice('sha256:'.length)));
    expect(again.equals(expected)).toBe(true);
  });
});

/** Runs `regctl serve` expecting it to refuse to start; resolves with its exit code and output. */
function serveFails(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [REGCTL_BIN, 'serve', '--no-auth', '--listen', '127.0.0.1:0', ...args],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe.skipIf(!ready)('regctl serve refuses bad S3 settings with one line', () => {
  it('a URL that is not s3://, a closed endpoint, a missing bucket and refused credentials', async () => {
    const bad = await serveFails(['--storage', 'http://bucket'], s3.env());
    expect(bad.code).toBe(2);
    expect(bad.output.split('\n')[0]).toMatch(/^✗ storage: "http:\/\/bucket" is not an s3:\/\/ URL/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await serveFails(
      ['--storage', 's3://bucket', '--s3-endpoint', closed, '--s3-path-style'],
      s3.env(),
    );
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.output.trim().split('\n')).toEqual([
      `✗ registry cannot start: S3 endpoint ${closed} is unreachable (ECONNREFUSED): check --s3-endpoint and that the server runs`,
      '  hint: check --storage, --s3-endpoint, --s3-region and the AWS credentials',
    ]);

    const missing = await serveFails(storageArgs('no-such-bucket', ''), s3.env());
    expect(missing.code).not.toBe(0);
    expect(missing.output.split('\n')[0]).toBe(
      `✗ registry cannot start: bucket "no-such-bucket" does not exist at ${s3.endpoint}: create it or fix --storage`,
    );

    const noCredentials = await serveFails(storageArgs('no-such-bucket', ''), {
      HOME: join(work, 'empty-home'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    expect(noCredentials.code).not.toBe(0);
    expect(noCredentials.output.split('\n')[0]).toBe(
      '✗ registry cannot start: no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)',
    );

    const bucket = await s3.createBucket();
    const wrongSecret = 'wrong-secret-value-1234';
    const refused = await serveFails(storageArgs(bucket, ''), { ...s3.env(), AWS_SECRET_ACCESS_KEY: wrongSecret });
    expect(refused.code).not.toBe(0);
    expect(refused.output.split('\n')[0]).toMatch(
      /^✗ registry cannot start: S3 at \S+ refused the credentials for bucket "b-[0-9a-f]+" \((SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId)\): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY$/,
    );
    expect(refused.output).not.toContain(wrongSecret);
    expect(await keys(bucket)).toEqual([]);
  });
});
