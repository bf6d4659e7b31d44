/**
 * HTTPS in dev on the real engine behind the real Traefik: `regctl init` makes the local CA, `regctl up` serves
 * its leaf, and right after `regctl login --trust` (the CA into /etc/docker/certs.d) a real `docker push` and
 * `docker pull` go over verified HTTPS, with the same dockerd process before and after (no restart).
 *
 * The registry's name resolves, through an /etc/hosts line, to this machine's first non-loopback IPv4 address:
 * dockerd resolves names with /etc/hosts (here `*.localhost` resolves to nothing for it), and it treats a registry
 * on 127.0.0.0/8 as insecure and skips certificate checks there, which would prove nothing about the CA. On a
 * non-loopback address it verifies, so the push fails before `--trust` (unknown authority) and works after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe } from '../../src/ops/http-probe.js';
import {
  addHostsLine,
  buildMultiLayerImage,
  dockerCli,
  forceRemoveProject,
  initStack,
  regctl,
  stackTestsReady,
  type E2eStack,
} from './helpers.js';

const ready = stackTestsReady();
const PROJECT = 'regctl-https';
const DOMAIN = 'https.test';
const REGISTRY_HOST = `registry.${DOMAIN}`;
const UI_HOST = `registry-ui.${DOMAIN}`;
const CERTS_D = '/etc/docker/certs.d';

/** This machine's first IPv4 address outside loopback and Docker's own bridges. */
function outsideAddress(): string {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (/^(docker|br-|veth)/.test(name)) continue;
    const v4 = (addrs ?? []).find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('no non-loopback IPv4 address: dockerd would treat the registry as insecure');
}

const dockerdPid = async (): Promise<string> => (await execa('pgrep', ['-o', '-x', 'dockerd'])).stdout.trim();

describe.skipIf(!ready)('dev stack over HTTPS with the local CA', () => {
  let stack: E2eStack;
  let work: string;
  let docker: ReturnType<typeof dockerCli>;
  let dockerConfig: string;
  let registry: string;
  let removeHosts: () => Promise<void> = async () => undefined;
  const image = () => `${registry}/e2e/https:1`;

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    stack = await initStack(['--name', PROJECT, '--host', DOMAIN]);
    work = await mkdtemp(join(tmpdir(), 'regctl-e2e-https-'));
    dockerConfig = join(work, 'docker-config');
    docker = dockerCli(dockerConfig);
    registry = `${REGISTRY_HOST}:${stack.ports.https}`;
    for (const address of [registry, `${REGISTRY_HOST}:${stack.ports.http}`])
      await rm(join(CERTS_D, address), { recursive: true, force: true });
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e dev-https', outsideAddress());
    const up = await regctl(['up', '--dir', stack.dir]);
    if (up.exitCode !== 0) throw new Error(`regctl up failed:\n${up.all}`);
  }, 900_000);

  afterAll(async () => {
    await removeHosts();
    if (!stack) return;
    await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    await forceRemoveProject(PROJECT);
    for (const address of [registry, `${REGISTRY_HOST}:${stack.ports.http}`])
      await rm(join(CERTS_D, address), { recursive: true, force: true });
    await execa('docker', ['rmi', '-f', image()], { reject: false });
    await rm(work, { recursive: true, force: true });
    await stack.cleanup();
  }, 300_000);

  it('Traefik serves the leaf on the HTTPS port, verified against ca.crt alone', async () => {
    const ca = await readFile(join(stack.dir, 'certs/ca.crt'), 'utf8');
    const r = await probe({ port: stack.ports.https, host: REGISTRY_HOST, path: '/v2/', tls: true, ca });
    expect(r.status).toBe(401);
    // Plain HTTP keeps working for clients set up for it.
    expect((await probe({ port: stack.ports.http, host: REGISTRY_HOST, path: '/v2/' })).status).toBe(401);
  });

  it('before --trust, the engine refuses the unknown authority', async () => {
    const res = await docker(['login', registry, '--username', 'admin', '--password-stdin'], {
      input: stack.password,
    });
    expect(res.exitCode).not.toBe(0);
    expect(res.all).toMatch(/certificate signed by unknown authority/);
  });

  it('right after `regctl login --trust`, docker pushes and pulls over HTTPS with no daemon restart', async () => {
    const pidBefore = await dockerdPid();
    const trust = await regctl(['login', '--trust', '--dir', stack.dir], { env: { DOCKER_CONFIG: dockerConfig } });
    expect(trust.exitCode, trust.all).toBe(0);
    expect(trust.stdout).toContain(`created    ${join(CERTS_D, registry, 'ca.crt')}`);
    expect(trust.stdout).toContain('update-ca-certificates');
    expect(trust.all).toContain(`docker is logged in to ${registry} as admin`);
    expect(await readFile(join(CERTS_D, registry, 'ca.crt'), 'utf8')).toBe(
      await readFile(join(stack.dir, 'certs/ca.crt'), 'utf8'),
    );

    await buildMultiLayerImage(image(), 3, docker);
    const push = await docker(['push', image()]);
    expect(push.exitCode, push.all).toBe(0);
    expect(push.all).toMatch(/digest: sha256:[0-9a-f]{64}/);
    expect((await docker(['rmi', image()])).exitCode).toBe(0);
    const pull = await docker(['pull', image()]);
    expect(pull.exitCode, pull.all).toBe(0);
    expect(pull.all).toContain(`Downloaded newer image for ${image()}`);
    expect(await dockerdPid()).toBe(pidBefore);
  });

  it('doctor passes the four dev HTTPS checks', async () => {
    const res = await regctl(['doctor', '--dir', stack.dir, '--json']);
    const report = JSON.parse(res.stdout.slice(res.stdout.indexOf('{'))) as {
      checks: { id: string; status: string; detail: string }[];
    };
    for (const id of ['dev-ca', 'dev-cert', 'dev-ca-trust', 'dev-https', 'trust']) {
      const c = report.checks.find((x) => x.id === id);
      expect(c?.status, `${id}: ${c?.detail}`).toBe('pass');
    }
  });
});
