/**
 * The dev stack on the real engine behind the real Traefik: init, up, docker login/push/pull of a
 * multi-layer image through Traefik at registry.<host>, the UI, status, an idempotent second up, a blob
 * upload slower than Traefik's default 60 s read timeout, and down.
 *
 * The docker CLI reaches registry.example.test:<port> through Traefik without any daemon change: dockerd
 * resolves a registry's host name and treats it as insecure when it resolves into 127.0.0.0/8 (a default
 * insecure range), and the test maps the name to 127.0.0.1 in /etc/hosts. As for any insecure registry,
 * dockerd speaks HTTPS without verifying the certificate first; Traefik answers TLS on the `web` entrypoint
 * (its default certificate, through the dev `-tls` twin routers), so pushes go through that route.
 */
import { basicAuth } from '../helpers/auth.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { probe } from '../../src/ops/http-probe.js';
import {
  REGISTRY_HOST,
  UI_HOST,
  addHostsLine,
  buildMultiLayerImage,
  stackTestsReady,
  dockerCli,
  forceRemoveProject,
  initStack,
  packageSnapshot,
  projectResources,
  regctl,
  removePackageSnapshot,
  type E2eStack,
} from './helpers.js';

/** This file's own compose project, so that it never touches another test's stack. */
const PROJECT = 'e2edev';
const IMAGE = `regctl-e2e/${PROJECT}:test`;
const ready = stackTestsReady();

interface StatusJson {
  healthy: boolean;
  mode: string;
  services: { service: string; state: string; health?: string }[];
  volumes: { name: string; sizeBytes?: number }[];
  urls: { registry: string; ui?: string };
}

describe.skipIf(!ready)('dev stack on the real engine behind Traefik', () => {
  let stack: E2eStack;
  let removeHosts: () => Promise<void> = async () => undefined;
  let dockerConfig: string;
  let docker: ReturnType<typeof dockerCli>;
  let registry: string;

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    stack = await initStack(['--name', PROJECT], { registryImage: IMAGE });
    registry = `${REGISTRY_HOST}:${stack.ports.http}`;
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e stack-dev');
    dockerConfig = await mkdtemp(join(tmpdir(), 'regctl-e2e-docker-'));
    docker = dockerCli(dockerConfig);
  });

  afterAll(async () => {
    await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    await forceRemoveProject(PROJECT, { image: IMAGE });
    await removeHosts();
    await docker(['rmi', '-f', `${registry}/e2e/multi:1`, 'regctl-e2e/multi:1']);
    await rm(dockerConfig, { recursive: true, force: true });
    await stack.cleanup();
    await removePackageSnapshot();
  });

  it('regctl up gives a healthy stack and prints how to use it', async () => {
    const res = await regctl(['up', '--dir', stack.dir]);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain('/v2/ answers 401 without credentials');
    expect(res.stdout).toContain("/v2/ answers 200 with admin's credentials");
    expect(res.stdout).toContain(`UI answers at http://${UI_HOST}:${stack.ports.http}`);
    expect(res.stdout).toContain(`docker login ${registry} -u admin --password-stdin`);
    expect(res.stdout).toContain('"insecure-registries"');
    expect(res.all).not.toContain(stack.password);
    const r = await projectResources(PROJECT);
    expect(r.containers).toEqual([`${PROJECT}-registry`, `${PROJECT}-traefik`, `${PROJECT}-ui`]);
  });

  it('docker login, then push and pull of a multi-layer image through Traefik at registry.<host>', async () => {
    const login = await docker(['login', registry, '-u', 'admin', '--password-stdin'], { input: stack.password });
    expect(login.exitCode, login.all).toBe(0);
    expect(login.stdout).toContain('Login Succeeded');

    await buildMultiLayerImage('regctl-e2e/multi:1', 6, docker);
    const id = (await docker(['image', 'inspect', '--format', '{{.Id}}', 'regctl-e2e/multi:1'])).stdout.trim();
    const layers = (
      await docker(['image', 'inspect', '--format', '{{len .RootFS.Layers}}', 'regctl-e2e/multi:1'])
    ).stdout.trim();
    expect(Number(layers)).toBe(6);

    const target = `${registry}/e2e/multi:1`;
    expect((await docker(['tag', 'regctl-e2e/multi:1', target])).exitCode).toBe(0);
    const push = await docker(['push', target]);
    expect(push.exitCode, push.all).toBe(0);
    expect(push.stdout).toMatch(/1: digest: sha256:[0-9a-f]{64}/);

    expect((await docker(['rmi', target, 'regctl-e2e/multi:1'])).exitCode).toBe(0);
    const pull = await docker(['pull', target]);
    expect(pull.exitCode, pull.all).toBe(0);
    expect((await docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim()).toBe(id);

    const tags = await probe({
      port: stack.ports.http,
      host: REGISTRY_HOST,
      path: '/v2/e2e/multi/tags/list',
      auth: { username: 'admin', password: stack.password },
    });
    expect(JSON.parse(tags.body)).toEqual({ name: 'e2e/multi', tags: ['1'] });
  });

  it('the UI answers at registry-ui.<host> through Traefik', async () => {
    const res = await probe({ port: stack.ports.http, host: UI_HOST, path: '/' });
    expect(res.status).toBeLessThan(400);
    const other = await probe({ port: stack.ports.http, host: 'unknown.example.test', path: '/' });
    expect(other.status).toBe(404);
  });

  it('regctl status --json reports every service running and healthy', async () => {
    const res = await regctl(['status', '--dir', stack.dir, '--json']);
    expect(res.exitCode, res.all).toBe(0);
    const s = JSON.parse(res.stdout) as StatusJson;
    expect(s.healthy).toBe(true);
    expect(s.mode).toBe('dev');
    expect(s.services.map((x) => [x.service, x.state, x.health])).toEqual([
      ['traefik', 'running', 'healthy'],
      ['registry', 'running', 'healthy'],
      ['ui', 'running', 'healthy'],
    ]);
    expect(s.volumes[0]?.name).toBe(`${PROJECT}_registry-data`);
    expect(s.volumes[0]?.sizeBytes).toBeGreaterThan(6 * 256 * 1024);
  });

  it('a second regctl up changes nothing', async () => {
    const ids = async () =>
      (await docker(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${PROJECT}`])).stdout
        .split('\n')
        .sort();
    const before = await ids();
    const res = await regctl(['up', '--dir', stack.dir]);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain(`Image ${IMAGE} is up to date`);
    expect(res.stdout).toContain('nothing changed');
    expect(res.stdout).not.toMatch(/ (created|recreated|started)$/m);
    expect(await ids()).toEqual(before);
  });

  it('after a change to one service, up recreates only that container', async () => {
    const file = join(stack.dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['registry', 'logLevel'], 'debug');
    await writeFile(file, doc.toString());
    const res = await regctl(['up', '--dir', stack.dir]);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain(`${PROJECT}-registry recreated`);
    expect(res.stdout).toContain(`${PROJECT}-traefik unchanged`);
    expect(res.stdout).toContain(`${PROJECT}-ui unchanged`);
    const cmd = (await docker(['inspect', '--format', '{{json .Config.Cmd}}', `${PROJECT}-registry`])).stdout;
    expect(cmd).toContain('"--log-level","debug"');
  });

  it('a blob upload lasting longer than 60 s passes through Traefik', async () => {
    const auth = basicAuth('admin', stack.password);
    const start = await probe({
      port: stack.ports.http,
      host: REGISTRY_HOST,
      path: '/v2/e2e/slow/blobs/uploads/',
      method: 'POST',
      auth: { username: 'admin', password: stack.password },
    });
    expect(start.status).toBe(202);
    const location = new URL(String(start.headers.location), `http://${REGISTRY_HOST}`);

    const chunk = Buffer.alloc(16 * 1024, 7);
    const seconds = 70;
    const hash = createHash('sha256');
    const began = Date.now();
    const patched = await new Promise<{ status: number; location: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: stack.ports.http,
          method: 'PATCH',
          path: location.pathname + location.search,
          headers: { host: REGISTRY_HOST, authorization: auth, 'content-type': 'application/octet-stream' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? '') }));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const timer = setInterval(() => {
        hash.update(chunk);
        req.write(chunk);
        if (++sent === seconds) {
          clearInterval(timer);
          req.end();
        }
      }, 1000);
    });
    const elapsed = (Date.now() - began) / 1000;
    expect(elapsed).toBeGreaterThan(65);
    expect(patched.status).toBe(202);

    const digest = `sha256:${hash.digest('hex')}`;
    const next = new URL(patched.location, `http://${REGISTRY_HOST}`);
    next.searchParams.set('digest', digest);
    const put = await probe({
      port: stack.ports.http,
      host: REGISTRY_HOST,
      path: next.pathname + next.search,
      method: 'PUT',
      auth: { username: 'admin', password: stack.password },
    });
    expect(put.status).toBe(201);
    const head = await probe({
      port: stack.ports.http,
      host: REGISTRY_HOST,
      path: `/v2/e2e/slow/blobs/${digest}`,
      method: 'HEAD',
      auth: { username: 'admin', password: stack.password },
    });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(seconds * chunk.length);
  }, 180_000);

  it('regctl logs shows the registry log', async () => {
    const res = await regctl(['logs', 'registry', '--dir', stack.dir, '--tail', '5']);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout.trim().split('\n').length).toBeLessThanOrEqual(5);
    expect(res.stdout.trim().length).toBeGreaterThan(0);
  });

  it("regctl logs -f follows Traefik's access log until interrupted", async () => {
    const pkg = await packageSnapshot();
    const child = spawn(
      'node',
      [join(pkg, 'bin/regctl.js'), 'logs', 'traefik', '-f', '--tail', '0', '--dir', stack.dir],
      {
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let seen = '';
    child.stdout.on('data', (c: Buffer) => {
      seen += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const marker = `/v2/follow-${Date.now()}/tags/list`;
    const deadline = Date.now() + 30_000;
    while (!seen.includes(marker) && Date.now() < deadline) {
      await probe({ port: stack.ports.http, host: REGISTRY_HOST, path: marker });
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(seen).toContain(`"GET ${marker} HTTP/1.1" 401`);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('regctl down removes the stack and keeps the data volume', async () => {
    const res = await regctl(['down', '--dir', stack.dir]);
    expect(res.exitCode, res.all).toBe(0);
    const r = await projectResources(PROJECT);
    expect(r.containers).toEqual([]);
    expect(r.networks).toEqual([]);
    expect(r.volumes).toEqual([`${PROJECT}_registry-data`]);
    const status = JSON.parse((await regctl(['status', '--dir', stack.dir, '--json'])).stdout) as StatusJson;
    expect(status.healthy).toBe(false);
    expect(status.services.every((s) => s.state === 'missing')).toBe(true);
  });
});
