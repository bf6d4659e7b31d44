/** skopeo, crane and oras against `regctl serve` with credentials. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable, peerPath } from '../../helpers/peers.js';
import { writeOciLayout } from './oci-layout.js';
import { run } from '../../helpers/run.js';
import { startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { basicAuth } from '../../helpers/auth.js';

let reg: RegistryProcess;
let work: string;
beforeAll(async () => {
  reg = await startRegistryProcess();
  work = await mkdtemp(join(tmpdir(), 'regctl-clients-it-'));
});
afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const authHeader = () => basicAuth(reg.username, reg.password);
const api = (path: string, init: RequestInit = {}) =>
  fetch(`${reg.url}${path}`, { ...init, headers: { authorization: authHeader(), ...init.headers } });

describe.skipIf(!peerAvailable('skopeo'))('skopeo', () => {
  it('copies an image in and out with credentials; digests are preserved', async () => {
    const src = await writeOciLayout(join(work, 'sk-src'), { tag: 'v1' });
    const creds = `${reg.username}:${reg.password}`;
    await run(peerPath('skopeo'), [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      creds,
      `oci:${src.dir}:v1`,
      `docker://${reg.host}/sk/img:v1`,
    ]);
    await expect(
      run(peerPath('skopeo'), [
        'inspect',
        '--tls-verify=false',
        '--creds',
        `${reg.username}:wrong`,
        `docker://${reg.host}/sk/img:v1`,
      ]),
    ).rejects.toThrow(/unauthorized|401|authentication/i);
    const inspect = JSON.parse(
      await run(peerPath('skopeo'), [
        'inspect',
        '--tls-verify=false',
        '--creds',
        creds,
        `docker://${reg.host}/sk/img:v1`,
      ]),
    ) as { Digest: string; Layers: string[] };
    expect(inspect.Digest).toBe(src.manifestDigest);
    expect(inspect.Layers).toEqual(src.layerDigests);
    const out = join(work, 'sk-out');
    await run(peerPath('skopeo'), [
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      creds,
      `docker://${reg.host}/sk/img@${src.manifestDigest}`,
      `oci:${out}:copy`,
    ]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(src.manifestDigest);
  });
});

describe.skipIf(!peerAvailable('crane'))('crane', () => {
  const crane = (args: string[]) =>
    run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane-config') } });

  it('push, pull, tag, multi-platform index, index copy and tag delete', async () => {
    await run(peerPath('crane'), ['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password], {
      env: { DOCKER_CONFIG: join(work, 'crane-config') },
    });
    const amd = await writeOciLayout(join(work, 'cr-amd'), { tag: 'amd64', arch: 'amd64' });
    const arm = await writeOciLayout(join(work, 'cr-arm'), { tag: 'arm64', arch: 'arm64' });
    await crane(['push', amd.dir, `${reg.host}/cr/img:amd64`]);
    await crane(['push', arm.dir, `${reg.host}/cr/img:arm64`]);
    expect((await crane(['digest', `${reg.host}/cr/img:amd64`])).trim()).toBe(amd.manifestDigest);

    const pulled = join(work, 'cr-pulled');
    await crane(['pull', '--format', 'oci', `${reg.host}/cr/img:amd64`, pulled]);
    const idx = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(idx.manifests[0]?.digest).toBe(amd.manifestDigest);

    await crane(['tag', `${reg.host}/cr/img:amd64`, 'latest']);
    expect((await crane(['ls', `${reg.host}/cr/img`])).trim().split('\n').sort()).toEqual(['amd64', 'arm64', 'latest']);

    await crane([
      'index',
      'append',
      '-m',
      `${reg.host}/cr/img:amd64`,
      '-m',
      `${reg.host}/cr/img:arm64`,
      '-t',
      `${reg.host}/cr/multi:v1`,
    ]);
    const index = JSON.parse(await crane(['manifest', `${reg.host}/cr/multi:v1`])) as {
      manifests: { digest: string; platform?: { architecture: string } }[];
    };
    expect(index.manifests.map((m) => [m.digest, m.platform?.architecture])).toEqual([
      [amd.manifestDigest, 'amd64'],
      [arm.manifestDigest, 'arm64'],
    ]);
    const indexDigest = (await crane(['digest', `${reg.host}/cr/multi:v1`])).trim();
    await crane(['copy', `${reg.host}/cr/multi:v1`, `${reg.host}/cr/mirror:v1`]);
    expect((await crane(['digest', `${reg.host}/cr/mirror:v1`])).trim()).toBe(indexDigest);
    expect((await crane(['digest', '--platform', 'linux/arm64', `${reg.host}/cr/mirror:v1`])).trim()).toBe(
      arm.manifestDigest,
    );

    await crane(['delete', `${reg.host}/cr/img:latest`]);
    expect((await crane(['ls', `${reg.host}/cr/img`])).trim().split('\n').sort()).toEqual(['amd64', 'arm64']);
    expect((await crane(['digest', `${reg.host}/cr/img@${amd.manifestDigest}`])).trim()).toBe(amd.manifestDigest);
    const catalog = (await crane(['catalog', reg.host])).trim().split('\n');
    expect(catalog).toEqual(expect.arrayContaining(['cr/img', 'cr/multi', 'cr/mirror']));
  });
});

describe.skipIf(!peerAvailable('oras'))('oras', () => {
  const oras = (args: string[], stdoutOnly = false) =>
    run(peerPath('oras'), [...args, '--plain-http', '-u', reg.username, '-p', reg.password], {
      env: { DOCKER_CONFIG: join(work, 'oras-config') },
      stdoutOnly,
    });

  it('pushes an artifact, attaches a referrer and discovers it', async () => {
    const dir = join(work, 'oras');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'report.txt'), 'artifact body\n');
    await writeFile(join(dir, 'sig.txt'), 'signature body\n');
    const push = await run(
      peerPath('oras'),
      [
        'push',
        `${reg.host}/or/art:v1`,
        'report.txt:text/plain',
        '--artifact-type',
        'application/vnd.example.report',
        '--plain-http',
        '-u',
        reg.username,
        '-p',
        reg.password,
      ],
      { env: { DOCKER_CONFIG: join(work, 'oras-config') }, cwd: dir },
    );
    expect(push).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    const subject = /Digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1] as string;
    const attach = await oras([
      'attach',
      `${reg.host}/or/art:v1`,
      `${join(dir, 'sig.txt')}:text/plain`,
      '--artifact-type',
      'application/vnd.example.signature',
      '--disable-path-validation',
    ]);
    const referrer = /Digest: (sha256:[0-9a-f]{64})/.exec(attach)?.[1] as string;
    expect(referrer).toBeDefined();
    const discovered = JSON.parse(await oras(['discover', `${reg.host}/or/art:v1`, '--format', 'json'], true)) as {
      manifests?: { digest: string; artifactType: string }[];
      referrers?: { digest: string; artifactType: string }[];
    };
    const list = discovered.manifests ?? discovered.referrers ?? [];
    expect(list.map((m) => [m.digest, m.artifactType])).toEqual([[referrer, 'application/vnd.example.signature']]);
    const viaApi = (await (
      await api(`/v2/or/art/referrers/${subject}?artifactType=application/vnd.example.signature`)
    ).json()) as { manifests: { digest: string }[] };
    expect(viaApi.manifests.map((m) => m.digest)).toEqual([referrer]);
    const pulled = join(work, 'oras-pull');
    await oras(['pull', `${reg.host}/or/art:v1`, '-o', pulled]);
    expect(await readFile(join(pulled, 'report.txt'), 'utf8')).toBe('artifact body\n');
  });
});
