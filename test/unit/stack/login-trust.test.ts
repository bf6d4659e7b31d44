/**
 * `regctl login --trust` in-process on a stack `regctl init` made: the CA copied into a certs.d directory (a temp
 * directory standing in for /etc/docker/certs.d, through REGCTL_DOCKER_CERTS_DIR), what it prints, and the docker
 * login that follows to the HTTPS address. The docker CLI is a recording shim here (no stack runs in this
 * project); the e2e test dev-https.test.ts does the same with the real engine and a real push.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parseStackConfig } from '../../../src/config/schema.js';
import { makeCa } from '../../../src/ops/dev-ca.js';
import { trustAddresses } from '../../../src/ops/trust.js';
import { freePort, runCli } from './cli-harness.js';

let root: string;
let dir: string;
let certsDir: string;
let shimDir: string;
let ports: { http: number; https: number; registry: number };

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'regctl-trust-'));
  dir = join(root, 'stack');
  certsDir = join(root, 'certs.d');
  shimDir = join(root, 'bin');
  ports = { http: await freePort(), https: await freePort(), registry: await freePort() };
  await mkdir(shimDir);
  await writeFile(join(shimDir, 'docker'), `#!/bin/sh\necho "$*" >> '${join(root, 'docker.log')}'\ncat > /dev/null\n`, {
    mode: 0o755,
  });
  const init = await runCli(
    [
      'init',
      '--yes',
      '--dir',
      dir,
      '--host',
      'example.test',
      '--http-port',
      String(ports.http),
      '--https-port',
      String(ports.https),
      '--registry-port',
      String(ports.registry),
    ],
    { cwd: root },
  );
  expect(init.code, init.stderr).toBe(0);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const env = () => ({ PATH: `${shimDir}:${process.env.PATH ?? ''}`, REGCTL_DOCKER_CERTS_DIR: certsDir });
const trust = (extra: string[] = []) => runCli(['login', '--trust', '--dir', dir, ...extra], { cwd: root, env: env() });

describe('trustAddresses', () => {
  const config = (ports: Record<string, number>) => parseStackConfig({ version: 1, ports }).config!;
  test('the name alone on the default ports; with the port on others, the HTTP one too', () => {
    expect(trustAddresses(config({}), 'registry.localhost')).toEqual(['registry.localhost']);
    expect(trustAddresses(config({ http: 8080, https: 8443 }), 'r.test')).toEqual(['r.test:8443', 'r.test:8080']);
    expect(trustAddresses(config({ http: 8080 }), 'r.test')).toEqual(['r.test', 'r.test:8080']);
  });
});

describe('regctl login --trust', () => {
  test('copies ca.crt into certs.d for each address, prints the browser steps, logs in over HTTPS', async () => {
    const run = await trust();
    expect(run.code, run.stderr).toBe(0);
    const ca = await readFile(join(dir, 'certs/ca.crt'), 'utf8');
    for (const address of [`registry.example.test:${ports.https}`, `registry.example.test:${ports.http}`]) {
      const path = join(certsDir, address, 'ca.crt');
      expect(run.stdout).toContain(`created    ${path}`);
      expect(await readFile(path, 'utf8')).toBe(ca);
    }
    expect(run.stdout).toContain('read per connection: no restart');
    expect(run.stdout).toContain(
      `sudo cp ${join(dir, 'certs/ca.crt')} /usr/local/share/ca-certificates/regctl-regctl.crt && sudo update-ca-certificates`,
    );
    expect(run.stdout).toContain(`certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "regctl local CA (regctl)"`);
    expect(run.stdout).toContain(`Firefox: Settings`);
    expect(run.stdout).toContain(`docker is logged in to registry.example.test:${ports.https} as admin`);
    expect(await readFile(join(root, 'docker.log'), 'utf8')).toBe(
      `login registry.example.test:${ports.https} --username admin --password-stdin\n`,
    );
    expect(run.stdout + run.stderr).not.toContain(
      (await readFile(join(dir, '.env'), 'utf8')).match(/PASSWORD=(.*)/)![1],
    );

    const again = await trust();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`unchanged  ${join(certsDir, `registry.example.test:${ports.https}`, 'ca.crt')}`);
  });

  test('a certs.d file holding another CA is replaced', async () => {
    const path = join(certsDir, `registry.example.test:${ports.https}`, 'ca.crt');
    await mkdir(join(certsDir, `registry.example.test:${ports.https}`), { recursive: true });
    await writeFile(path, (await makeCa('example.test')).cert);
    const run = await trust();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`replaced   ${path}`);
    expect(await readFile(path, 'utf8')).toBe(await readFile(join(dir, 'certs/ca.crt'), 'utf8'));
  });

  test('without a CA: one line saying so and how to fix it, nothing written, no login', async () => {
    await rm(join(dir, 'certs/ca.crt'));
    const run = await trust();
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`no local CA in ${join(dir, 'certs')}`);
    expect(run.stderr).toContain('run `regctl init` (or `regctl up`) in this directory first');
    await expect(readFile(join(root, 'docker.log'), 'utf8')).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(certsDir, `registry.example.test:${ports.https}`, 'ca.crt'))).rejects.toThrow(/ENOENT/);
  });

  test('--trust with --insecure is a usage error', async () => {
    const run = await trust(['--insecure']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--trust goes with neither --insecure, --direct nor --prod');
  });
});
