/**
 * Token auth (`regctl serve --auth token`) with real clients, through a real Traefik in front of the registry (file
 * provider, as the stack routes it): skopeo, crane, oras, regclient, docker, podman and containerd's `ctr` each log
 * in, push and pull, the token endpoint reached through Traefik too (the realm names the host the client used).
 * Basic credentials are still accepted on `/v2/`, so a client that sent them would pass
 * without ever fetching a token: the registry's request log marks requests made with a Bearer token, and every
 * successful `/v2/<repo>` request of each client must carry that mark.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { startTraefik, type TraefikProcess } from '../../helpers/traefik-process.js';
import { writeOciLayout } from './oci-layout.js';

let reg: RegistryProcess;
let traefik: TraefikProcess;
/** Where the clients reach the registry: Traefik's entrypoint. */
let front: { host: string; url: string };
let work: string;

beforeAll(async () => {
  if (!builtCliPresent()) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-token-it-'));
  await writeFile(
    join(work, 'access.yaml'),
    'users:\n  tester: { rules: [ { repos: "tok/**", actions: [pull, push, delete] } ] }\n' +
      'anonymous: { pull: [ "tok/crane/**" ] }\n',
  );
  reg = await startRegistryProcess({
    args: [
      '--access',
      join(work, 'access.yaml'),
      '--auth',
      'token',
      '--token-key',
      join(work, 'token-key.pem'),
      '--log-level',
      'info',
    ],
  });
  traefik = await startTraefik({ servers: [reg.url], tlsRoute: true });
  front = { host: traefik.host, url: traefik.url };
}, 60_000);
afterAll(async () => {
  await traefik?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface LogLine {
  msg?: string;
  route?: string;
  path?: string;
  status?: number;
  user?: string;
  bearer?: boolean;
}

/** The request log lines of the registry so far. */
function requests(): LogLine[] {
  return reg
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === 'request');
}

/** Every successful request on `/v2/<prefix>` was made with a Bearer token, and there were some. */
function expectBearerOnly(prefix: string): void {
  const ok = requests().filter((l) => l.path?.startsWith(`/v2/${prefix}`) && (l.status ?? 500) < 400);
  expect(ok.length, `no successful request on /v2/${prefix}`).toBeGreaterThan(0);
  expect(ok.filter((l) => l.bearer !== true).map((l) => l.path)).toEqual([]);
}

async function token(user: string, password: string, scopes: string[]): Promise<string> {
  const q = new URLSearchParams({ service: 'regctl' });
  for (const s of scopes) q.append('scope', s);
  const res = await fetch(`${front.url}/auth/token?${q}`, { headers: { authorization: basicAuth(user, password) } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

describe.skipIf(!builtCliPresent())('token auth: the endpoint, challenges and scopes (needs npm run build)', () => {
  it('challenges with Bearer and the scope, keeps its key 0600, and issues only what the policy allows', async () => {
    expect((await stat(join(work, 'token-key.pem'))).mode & 0o777).toBe(0o600);
    const base = await fetch(`${front.url}/v2/`);
    expect(base.status).toBe(401);
    expect(base.headers.get('www-authenticate')).toBe(`Bearer realm="${front.url}/auth/token",service="regctl"`);
    const manifest = await fetch(`${front.url}/v2/tok/a/manifests/v1`);
    expect(manifest.headers.get('www-authenticate')).toContain('scope="repository:tok/a:pull"');

    // A token for tok/a is refused on tok/b: 401 insufficient_scope (the user may, the token does not say so).
    const forA = await token(reg.username, reg.password, ['repository:tok/a:pull']);
    const onB = await fetch(`${front.url}/v2/tok/b/tags/list`, { headers: { authorization: `Bearer ${forA}` } });
    expect(onB.status).toBe(401);
    expect(onB.headers.get('www-authenticate')).toContain('scope="repository:tok/b:pull",error="insufficient_scope"');
    expect(((await onB.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');
    // Outside the user's rules nothing is granted, and the request is DENIED.
    const outside = await token(reg.username, reg.password, ['repository:elsewhere/x:pull,push']);
    const denied = await fetch(`${front.url}/v2/elsewhere/x/tags/list`, {
      headers: { authorization: `Bearer ${outside}` },
    });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');

    // POST with grant_type=password and access_type=offline: a refresh token, which then gets scoped tokens.
    const login = await fetch(`${front.url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        username: reg.username,
        password: reg.password,
        service: 'regctl',
        client_id: 'it',
        access_type: 'offline',
      }),
    });
    const { refresh_token: refresh } = (await login.json()) as { refresh_token: string };
    expect(refresh).toMatch(/^ey/);
    const again = await fetch(`${front.url}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refresh,
        service: 'regctl',
        client_id: 'it',
        scope: 'repository:tok/a:pull,push repository:elsewhere/x:pull',
      }),
    });
    const { scope, access_token: scoped } = (await again.json()) as { scope: string; access_token: string };
    expect(scope).toBe('repository:tok/a:pull,push');
    // No secret in the logs: neither the password (sent in a form body) nor any token.
    for (const secret of [reg.password, refresh, scoped, forA, outside])
      expect(reg.output()).not.toContain(secret.slice(-24));
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('skopeo'))('token auth: skopeo', () => {
  it('copies an image in and out', async () => {
    const src = await writeOciLayout(join(work, 'sk-src'), { tag: 'v1' });
    const creds = `${reg.username}:${reg.password}`;
    await run(peerPath('skopeo'), [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      creds,
      `oci:${src.dir}:v1`,
      `docker://${front.host}/tok/skopeo/img:v1`,
    ]);
    const out = join(work, 'sk-out');
    await run(peerPath('skopeo'), [
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      creds,
      `docker://${front.host}/tok/skopeo/img:v1`,
      `oci:${out}:copy`,
    ]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(src.manifestDigest);
    expectBearerOnly('tok/skopeo/');
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('crane'))('token auth: crane', () => {
  it('logs in, pushes, pulls and lists tags', async () => {
    const env = { DOCKER_CONFIG: join(work, 'crane-config') };
    const crane = (args: string[]) => run(peerPath('crane'), [...args, '--insecure'], { env });
    await run(peerPath('crane'), ['auth', 'login', front.host, '-u', reg.username, '-p', reg.password], { env });
    const img = await writeOciLayout(join(work, 'cr-src'), { tag: 'v1' });
    await crane(['push', img.dir, `${front.host}/tok/crane/img:v1`]);
    expect((await crane(['digest', `${front.host}/tok/crane/img:v1`])).trim()).toBe(img.manifestDigest);
    const pulled = join(work, 'cr-pulled');
    await crane(['pull', '--format', 'oci', `${front.host}/tok/crane/img:v1`, pulled]);
    const idx = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(idx.manifests[0]?.digest).toBe(img.manifestDigest);
    expect((await crane(['ls', `${front.host}/tok/crane/img`])).trim()).toBe('v1');
    await expect(crane(['push', img.dir, `${front.host}/elsewhere/img:v1`])).rejects.toThrow(/DENIED|denied|403/);
    // Without credentials: the anonymous pull the access file allows (an anonymous token), and no push.
    const anonymous = { DOCKER_CONFIG: join(work, 'crane-anonymous') };
    const anon = (args: string[]) => run(peerPath('crane'), [...args, '--insecure'], { env: anonymous });
    expect((await anon(['digest', `${front.host}/tok/crane/img:v1`])).trim()).toBe(img.manifestDigest);
    // The refused push goes to the registry directly: through Traefik's TLS route crane speaks HTTP/2 and sends
    // this manifest PUT with an empty body under a Content-Length of 715 (Traefik's debug log), answered 502.
    const direct = (args: string[]) => run(peerPath('crane'), [...args, '--insecure'], { env: anonymous });
    await expect(direct(['push', img.dir, `${reg.host}/tok/crane/img:v2`])).rejects.toThrow(/UNAUTHORIZED|401/);
    await expect(anon(['digest', `${front.host}/tok/skopeo/img:v1`])).rejects.toThrow(/UNAUTHORIZED|401/);
    expectBearerOnly('tok/crane/');
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('oras'))('token auth: oras', () => {
  it('logs in, pushes an artifact and pulls it', async () => {
    const env = { DOCKER_CONFIG: join(work, 'oras-config') };
    const dir = join(work, 'oras');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'report.txt'), 'artifact body\n');
    await run(peerPath('oras'), ['login', '--plain-http', '-u', reg.username, '-p', reg.password, front.host], { env });
    const push = await run(
      peerPath('oras'),
      ['push', '--plain-http', `${front.host}/tok/oras/art:v1`, 'report.txt:text/plain'],
      { env, cwd: dir },
    );
    expect(push).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    const out = join(work, 'oras-pull');
    await run(peerPath('oras'), ['pull', '--plain-http', `${front.host}/tok/oras/art:v1`, '-o', out], { env });
    expect(await readFile(join(out, 'report.txt'), 'utf8')).toBe('artifact body\n');
    expectBearerOnly('tok/oras/');
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('regclient'))('token auth: regclient', () => {
  it('copies an image in and out', async () => {
    const env = { HOME: join(work, 'regclient-home') };
    await mkdir(env.HOME, { recursive: true });
    const host = `reg=${front.host},user=${reg.username},pass=${reg.password},tls=disabled`;
    const rc = (args: string[]) => run(peerPath('regclient'), ['--host', host, ...args], { env });
    const img = await writeOciLayout(join(work, 'rc-src'), { tag: 'v1' });
    await rc(['image', 'copy', `ocidir://${img.dir}:v1`, `${front.host}/tok/regclient/img:v1`]);
    expect((await rc(['image', 'digest', `${front.host}/tok/regclient/img:v1`])).trim()).toBe(img.manifestDigest);
    await rc(['image', 'copy', `${front.host}/tok/regclient/img:v1`, `ocidir://${join(work, 'rc-out')}:v1`]);
    const idx = JSON.parse(await readFile(join(work, 'rc-out', 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    expect(idx.manifests.map((m) => m.digest)).toContain(img.manifestDigest);
    expectBearerOnly('tok/regclient/');
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('podman'))('token auth: podman', () => {
  it('logs in, pushes and pulls back by digest', async () => {
    const dir = join(tmpdir(), `regctl-token-podman-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    const env = { REGISTRY_AUTH_FILE: join(dir, 'auth.json') };
    await writeFile(env.REGISTRY_AUTH_FILE, '{}\n', { mode: 0o600 });
    const podman = (args: string[]) => run(peerPath('podman'), args, { env, stdoutOnly: true });
    const local = `localhost/regctl-it/token-podman-${process.pid}:v1`;
    try {
      const img = await writeOciLayout(join(dir, 'layout'), { tag: 'v1', layers: 2 });
      const id = (await podman(['pull', `oci:${img.dir}:v1`])).trim().split('\n').pop() as string;
      await podman(['tag', id, local]);
      await podman(['login', '--tls-verify=false', '-u', reg.username, '-p', reg.password, front.host]);
      await podman(['push', '--tls-verify=false', local, `docker://${front.host}/tok/podman/img:v1`]);
      await podman(['rmi', '-f', local]);
      const pulled = await podman(['pull', '--tls-verify=false', `${front.host}/tok/podman/img:v1`]);
      expect(pulled.trim().split('\n').pop()).toBe(id);
      expectBearerOnly('tok/podman/');
    } finally {
      await run(peerPath('podman'), ['rmi', '-f', local, `${front.host}/tok/podman/img:v1`]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!builtCliPresent() || !dockerAvailable())('token auth: docker', () => {
  it('logs in with a refresh token (no password in its config), pushes and pulls', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker-config'), DOCKER_BUILDKIT: '0' };
    const image = `${front.host}/tok/docker/img:v1`;
    const base = `regctl-it/token-base-${randomBytes(4).toString('hex')}:latest`;
    try {
      await mkdir(join(work, 'rootfs/etc'), { recursive: true });
      await writeFile(join(work, 'rootfs/etc/hello'), `token ${base}\n`);
      await run('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.']);
      await run('docker', ['import', join(work, 'rootfs.tar'), base], { env });
      await run('docker', ['tag', base, image], { env });
      await expect(
        run('docker', ['login', front.host, '-u', reg.username, '--password-stdin'], { env, input: 'wrong' }),
      ).rejects.toThrow(/unauthorized|401/i);
      const out = await run('docker', ['login', front.host, '-u', reg.username, '--password-stdin'], {
        env,
        input: reg.password,
      });
      expect(out).toContain('Login Succeeded');
      const config = await readFile(join(work, 'docker-config', 'config.json'), 'utf8');
      expect(config).toContain('identitytoken');
      expect(config).not.toContain(reg.password);
      expect(config).not.toContain(Buffer.from(`${reg.username}:${reg.password}`).toString('base64'));
      const push = await run('docker', ['push', image], { env });
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push)?.[1] as string;
      expect(digest).toBeDefined();
      await run('docker', ['rmi', '-f', image], { env });
      expect(await run('docker', ['pull', `${front.host}/tok/docker/img@${digest}`], { env })).toContain(digest);
      expectBearerOnly('tok/docker/');
    } finally {
      for (const ref of [image, `${front.host}/tok/docker/img`, base])
        await run('docker', ['rmi', '-f', ref], { env }).catch(() => undefined);
    }
  });
});

describe.skipIf(!builtCliPresent() || !peerAvailable('ctr') || !dockerAvailable())(
  "token auth: containerd's ctr",
  () => {
    it('pulls an image and pushes it under another tag, fetching its tokens with the user and password', async () => {
      // dockerd's own containerd, in a namespace of this test's (removed at the end with what it holds).
      const ns = `regctl-it-token-${randomBytes(4).toString('hex')}`;
      const ctr = (args: string[]) =>
        run(peerPath('ctr'), ['--address', '/var/run/docker/containerd/containerd.sock', '-n', ns, ...args]);
      const user = `${reg.username}:${reg.password}`;
      const env = { DOCKER_CONFIG: join(work, 'ctr-crane-config') };
      await run(peerPath('crane'), ['auth', 'login', front.host, '-u', reg.username, '-p', reg.password], { env });
      const img = await writeOciLayout(join(work, 'ctr-src'), { tag: 'v1' });
      await run(peerPath('crane'), ['push', img.dir, `${front.host}/tok/ctr/img:v1`, '--insecure'], { env });
      try {
        // No credentials: the registry challenges, and ctr has nothing to answer with.
        await expect(ctr(['images', 'pull', '--plain-http', `${front.host}/tok/ctr/img:v1`])).rejects.toThrow(
          /401|unauthorized/i,
        );
        await ctr(['images', 'pull', '--plain-http', '--user', user, `${front.host}/tok/ctr/img:v1`]);
        const listed = await ctr(['images', 'ls', '-q']);
        expect(listed.split('\n')).toContain(`${front.host}/tok/ctr/img:v1`);
        await ctr(['images', 'tag', `${front.host}/tok/ctr/img:v1`, `${front.host}/tok/ctr/img:v2`]);
        await ctr(['images', 'push', '--plain-http', '--user', user, `${front.host}/tok/ctr/img:v2`]);
        const digest = await run(peerPath('crane'), ['digest', `${front.host}/tok/ctr/img:v2`, '--insecure'], { env });
        expect(digest.trim()).toBe(img.manifestDigest);
        expectBearerOnly('tok/ctr/');
      } finally {
        for (const tag of ['v1', 'v2']) await ctr(['images', 'rm', `${front.host}/tok/ctr/img:${tag}`]).catch(() => '');
        const content = await ctr(['content', 'ls', '-q']).catch(() => '');
        for (const d of content.split('\n').filter(Boolean)) await ctr(['content', 'rm', d]).catch(() => '');
        for (const s of (await ctr(['snapshots', 'ls']).catch(() => '')).split('\n').slice(1)) {
          const key = s.split(/\s+/)[0];
          if (key) await ctr(['snapshots', 'rm', key]).catch(() => '');
        }
        await ctr(['namespaces', 'rm', ns]).catch(() => '');
      }
    });
  },
);
