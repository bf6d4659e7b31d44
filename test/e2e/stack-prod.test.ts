/**
 * The prod stack against Debian's pebble as the ACME server: Traefik obtains a certificate for
 * registry.<host> from pebble, HTTP redirects to HTTPS, and skopeo, trusting only pebble's root, pushes and
 * pulls a multi-layer image over HTTPS through Traefik.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockerAvailable, imageAvailable, peerAvailable } from '../helpers/peers.js';
import { startPebble, type Pebble } from '../helpers/pebble.js';
import { probe, servedCertificate } from '../../src/ops/http-probe.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  REGISTRY_HOST,
  UI_HOST,
  addHostsLine,
  buildMultiLayerImage,
  builtCliPresent,
  dockerCli,
  forceRemoveProject,
  initStack,
  regctl,
  removePackageSnapshot,
  type E2eStack,
} from './helpers.js';

/** This file's own compose project, so that it never touches another test's stack. */
const PROJECT = 'e2eprod';
const IMAGE = `regctl-e2e/${PROJECT}:test`;
const ready =
  builtCliPresent() &&
  dockerAvailable() &&
  imageAvailable(E2E_TRAEFIK_IMAGE) &&
  imageAvailable(E2E_BASE_IMAGE) &&
  peerAvailable('pebble') &&
  peerAvailable('skopeo');

describe.skipIf(!ready)('prod stack with an ACME certificate from pebble', () => {
  let pebble: Pebble;
  let stack: E2eStack;
  let removeHosts: () => Promise<void> = async () => undefined;
  let work: string;
  let certDir: string;
  let docker: ReturnType<typeof dockerCli>;

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    pebble = await startPebble();
    stack = await initStack(
      [
        '--name',
        PROJECT,
        '--email',
        'e2e@example.test',
        '--acme-ca-server',
        pebble.directoryUrl,
        '--acme-ca-certificates',
        pebble.caCertPath,
      ],
      { registryImage: IMAGE },
    );
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e stack-prod');
    work = await mkdtemp(join(tmpdir(), 'regctl-e2e-prod-'));
    certDir = join(work, 'certs');
    await execa('mkdir', ['-p', certDir]);
    await writeFile(join(certDir, 'ca.crt'), pebble.rootCaPem);
    docker = dockerCli(join(work, 'docker-config'));
  });

  afterAll(async () => {
    await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    await forceRemoveProject(PROJECT, { image: IMAGE });
    await removeHosts();
    await docker(['rmi', '-f', 'regctl-e2e/multi:prod']);
    await pebble.stop();
    await rm(work, { recursive: true, force: true });
    await stack.cleanup();
    await removePackageSnapshot();
  });

  it('regctl up --prod gets a certificate for registry.<host> from pebble', async () => {
    const res = await regctl(['up', '--prod', '--dir', stack.dir]);
    expect(res.exitCode, res.all).toBe(0);
    expect(res.stdout).toContain('HTTP redirects to HTTPS');
    expect(res.stdout).toMatch(new RegExp(`Certificate for ${REGISTRY_HOST.replace(/\./g, '\\.')} issued by Pebble`));

    const cert = await servedCertificate({ port: stack.ports.https, servername: REGISTRY_HOST });
    expect(cert.altNames).toContain(REGISTRY_HOST);
    expect(cert.issuer).toMatch(/^Pebble/);
    // Verified against pebble's root only: the chain Traefik serves is complete and names the host.
    const verified = await probe({
      port: stack.ports.https,
      host: REGISTRY_HOST,
      path: '/v2/',
      tls: true,
      ca: pebble.rootCaPem,
    });
    expect(verified.status).toBe(401);
    expect(verified.headers['strict-transport-security']).toContain('max-age=31536000');
  });

  it('plain HTTP redirects to HTTPS', async () => {
    const res = await probe({ port: stack.ports.http, host: REGISTRY_HOST, path: '/v2/' });
    expect([301, 308]).toContain(res.status);
    expect(res.headers.location).toBe(`https://${REGISTRY_HOST}:${stack.ports.https}/v2/`);
  });

  it("a client trusting pebble's root pushes and pulls a multi-layer image over HTTPS", async () => {
    await buildMultiLayerImage('regctl-e2e/multi:prod', 5, docker);
    const archive = join(work, 'image.tar');
    expect((await docker(['save', '-o', archive, 'regctl-e2e/multi:prod'])).exitCode).toBe(0);
    const ref = `docker://${REGISTRY_HOST}:${stack.ports.https}/e2e/prod:1`;
    const creds = `admin:${stack.password}`;
    const push = await execa(
      'skopeo',
      ['copy', '--dest-creds', creds, '--dest-cert-dir', certDir, `docker-archive:${archive}`, ref],
      { reject: false, all: true },
    );
    expect(push.exitCode, push.all).toBe(0);

    const inspect = await execa('skopeo', ['inspect', '--creds', creds, '--cert-dir', certDir, ref], {
      reject: false,
      all: true,
    });
    expect(inspect.exitCode, inspect.all).toBe(0);
    const info = JSON.parse(inspect.stdout) as { Digest: string; Layers: string[] };
    expect(info.Layers).toHaveLength(5);

    const pulled = join(work, 'pulled');
    const pull = await execa(
      'skopeo',
      ['copy', '--src-creds', creds, '--src-cert-dir', certDir, ref, `dir:${pulled}`],
      { reject: false, all: true },
    );
    expect(pull.exitCode, pull.all).toBe(0);
    const manifestDigest = await execa('skopeo', ['manifest-digest', join(pulled, 'manifest.json')]);
    expect(manifestDigest.stdout.trim()).toBe(info.Digest);

    // Without pebble's root the same client refuses the certificate.
    const untrusted = await execa('skopeo', ['inspect', '--creds', creds, ref], { reject: false, all: true });
    expect(untrusted.exitCode).not.toBe(0);
    expect(untrusted.all).toMatch(/certificate|x509/i);
  });

  it("regctl status --json shows the stack healthy and the certificate's expiry", async () => {
    const res = await regctl(['status', '--dir', stack.dir, '--json']);
    expect(res.exitCode, res.all).toBe(0);
    const s = JSON.parse(res.stdout) as {
      healthy: boolean;
      mode: string;
      certificate?: { acme: boolean; issuer: string; daysLeft: number; validTo: string };
    };
    expect(s.mode).toBe('prod');
    expect(s.healthy).toBe(true);
    expect(s.certificate?.acme).toBe(true);
    expect(s.certificate?.issuer).toMatch(/^Pebble/);
    expect(s.certificate?.daysLeft).toBeGreaterThan(0);
  });
});
