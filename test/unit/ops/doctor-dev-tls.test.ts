/**
 * doctor's dev HTTPS checks against real certificates on disk, a real certs.d directory and a real TLS server
 * standing in for Traefik on the stack's HTTPS port (the engine is the fake one: only Traefik's running state is
 * read from it). Each check is shown passing on good data and failing on planted bad data.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeEngine } from '../../../src/docker/fake-engine.js';
import { doctor, type CheckResult } from '../../../src/ops/doctor.js';
import { ensureDevCertificates, issueLeaf, LEAF_DAYS, makeCa, type PemPair } from '../../../src/ops/dev-ca.js';
import { containerSpec, loadStack } from '../../../src/ops/stack.js';
import { installCa, trustAddresses } from '../../../src/ops/trust.js';
import { stackFixture, type StackFixture } from './fixture.js';

const NAMES = ['registry.example.test', 'registry-ui.example.test'];
const LEAF = 'certs/traefik/example.test';
const DAY = 86_400_000;
let fx: StackFixture;
let certsDir: string;
let server: Server | undefined;
let engine: FakeEngine;

beforeEach(async () => {
  resolvesTo = undefined;
  fx = await stackFixture();
  certsDir = await mkdtemp(join(tmpdir(), 'regctl-certs.d-'));
  engine = new FakeEngine();
  await ensureDevCertificates(fx.dir, 'example.test', NAMES);
});
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  await rm(certsDir, { recursive: true, force: true });
  await fx.cleanup();
});

const read = (path: string) => readFile(join(fx.dir, path), 'utf8');
const stackCa = async (): Promise<PemPair> => ({ cert: await read('certs/ca.crt'), key: await read('certs/ca.key') });

async function trust(): Promise<void> {
  const { config, model } = await loadStack(fx.dir);
  await installCa(await read('certs/ca.crt'), trustAddresses(config, model.hostnames.registry), certsDir);
}

/** Traefik "runs" (its container in the fake engine) and a TLS server on the HTTPS port presents `leaf`. */
async function serveAsTraefik(leaf: PemPair): Promise<void> {
  engine.images.set('regctl-test/traefik:v3.6', { id: 'sha256:traefik', labels: {} });
  engine.images.set('regctl:test', { id: 'sha256:prebuilt', labels: {} });
  const stack = await loadStack(fx.dir);
  for (const service of stack.model.services) {
    const spec = containerSpec(stack, service);
    await engine.createContainer(spec);
    await engine.startContainer(spec.name);
  }
  server = createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => res.end());
  await new Promise<void>((r) => server!.listen(fx.ports.https, '127.0.0.1', () => r()));
}

/** Where the registry's name resolves for doctor: nowhere unless a test says (not this machine's /etc/hosts). */
let resolvesTo: string | undefined;
async function lookup(name: string): Promise<{ address: string }> {
  if (resolvesTo === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return { address: resolvesTo };
}

async function devChecks(): Promise<Record<string, CheckResult>> {
  const report = await doctor({ dir: fx.dir, engine, platform: 'linux', certsDir, lookup });
  return Object.fromEntries(report.checks.filter((c) => c.id.startsWith('dev-')).map((c) => [c.id, c]));
}

describe('doctor: HTTPS in dev', () => {
  it('all four pass on the CA and leaf init made, trusted by certs.d and served by Traefik', async () => {
    await trust();
    await serveAsTraefik({ cert: await read(`${LEAF}.crt`), key: await read(`${LEAF}.key`) });
    const checks = await devChecks();
    expect(Object.values(checks).map((c) => [c.id, c.status])).toEqual([
      ['dev-ca', 'pass'],
      ['dev-cert', 'pass'],
      ['dev-ca-trust', 'pass'],
      ['dev-https', 'pass'],
    ]);
    expect(checks['dev-ca']!.detail).toMatch(/^CN=regctl local CA for example\.test, expires .* \(1094 days\)$/);
    expect(checks['dev-cert']!.detail).toMatch(/^for registry\.example\.test, registry-ui\.example\.test, expires /);
    expect(checks['dev-ca-trust']!.detail).toBe(`${certsDir} holds the stack's CA`);
    expect(checks['dev-https']!.detail).toBe(
      `registry.example.test on port ${fx.ports.https} serves the leaf, verified against ca.crt`,
    );
  });

  it('an expired leaf fails; one near its end warns', async () => {
    const ca = await stackCa();
    const expired = await issueLeaf(ca, NAMES, new Date(Date.now() - (LEAF_DAYS + 2) * DAY));
    await writeFile(join(fx.dir, `${LEAF}.crt`), expired.cert);
    await writeFile(join(fx.dir, `${LEAF}.key`), expired.key, { mode: 0o600 });
    expect((await devChecks())['dev-cert']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^the leaf expired /),
      fix: "run `regctl up`: it issues a new leaf for the stack's host names",
    });
    const late = await issueLeaf(ca, NAMES, new Date(Date.now() - (LEAF_DAYS - 10) * DAY));
    await writeFile(join(fx.dir, `${LEAF}.crt`), late.cert);
    await writeFile(join(fx.dir, `${LEAF}.key`), late.key, { mode: 0o600 });
    expect((await devChecks())['dev-cert']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^the leaf expires .* \(9 days left\)$/),
    });
  });

  it('a leaf for other host names, or from another CA, fails', async () => {
    const wrongHost = await issueLeaf(await stackCa(), ['registry.other.example.test']);
    await writeFile(join(fx.dir, `${LEAF}.crt`), wrongHost.cert);
    await writeFile(join(fx.dir, `${LEAF}.key`), wrongHost.key, { mode: 0o600 });
    expect((await devChecks())['dev-cert']).toMatchObject({
      status: 'fail',
      detail:
        'the leaf does not name registry.example.test, registry-ui.example.test (it names registry.other.example.test)',
    });
    const foreign = await issueLeaf(await makeCa('example.test'), NAMES);
    await writeFile(join(fx.dir, `${LEAF}.crt`), foreign.cert);
    await writeFile(join(fx.dir, `${LEAF}.key`), foreign.key, { mode: 0o600 });
    expect((await devChecks())['dev-cert']).toMatchObject({
      status: 'fail',
      detail: 'the leaf is not signed by ca.crt',
    });
  });

  it('certs.d without the CA, or with another one, fails and says `regctl login --trust`', async () => {
    const missing = (await devChecks())['dev-ca-trust']!;
    expect(missing.status).toBe('fail');
    expect(missing.detail).toBe(
      [fx.ports.https, fx.ports.http]
        .map((p) => `${join(certsDir, `registry.example.test:${p}`, 'ca.crt')} is missing`)
        .join('; '),
    );
    expect(missing.fix).toBe(
      'run `regctl login --trust` (as root): the engine reads certs.d per connection, no restart',
    );
    // A name on loopback is reached as an insecure registry without the CA: a warning, with the same fix.
    resolvesTo = '127.0.0.1';
    expect((await devChecks())['dev-ca-trust']).toMatchObject({ status: 'warn', detail: missing.detail });
    resolvesTo = undefined;
    await trust();
    const other = await makeCa('example.test');
    await writeFile(join(certsDir, `registry.example.test:${fx.ports.http}`, 'ca.crt'), other.cert);
    expect((await devChecks())['dev-ca-trust']).toMatchObject({
      status: 'fail',
      detail: `${join(certsDir, `registry.example.test:${fx.ports.http}`, 'ca.crt')} holds another certificate`,
    });
  });

  it('a missing CA, a CA key readable by others, and a CA for another domain fail', async () => {
    await chmod(join(fx.dir, 'certs/ca.key'), 0o644);
    expect((await devChecks())['dev-ca']).toMatchObject({
      status: 'fail',
      detail: 'certs/ca.key is mode 644, not 600',
      fix: `chmod 600 ${join(fx.dir, 'certs/ca.key')}`,
    });
    const elsewhere = await makeCa('other.test');
    await writeFile(join(fx.dir, 'certs/ca.crt'), elsewhere.cert);
    await writeFile(join(fx.dir, 'certs/ca.key'), elsewhere.key, { mode: 0o600 });
    expect((await devChecks())['dev-ca']).toMatchObject({
      status: 'fail',
      detail: 'ca.crt may only sign names under other.test, not registry.example.test, registry-ui.example.test',
    });
    await rm(join(fx.dir, 'certs/ca.crt'));
    const checks = await devChecks();
    expect(checks['dev-ca']).toMatchObject({ status: 'fail', detail: 'certs/ca.crt is missing' });
    expect(checks['dev-cert']).toMatchObject({ status: 'skip', detail: 'no usable local CA' });
  });

  it('Traefik serving a certificate ca.crt did not sign fails; serving an older leaf warns', async () => {
    await mkdir(certsDir, { recursive: true });
    await serveAsTraefik(await issueLeaf(await makeCa('example.test'), NAMES));
    expect((await devChecks())['dev-https']).toMatchObject({
      status: 'fail',
      detail: `registry.example.test on port ${fx.ports.https}: unable to verify the first certificate`,
    });
    await new Promise((r) => server!.close(r));
    server = undefined;
    const older = await issueLeaf(await stackCa(), NAMES, new Date(Date.now() - 10 * DAY));
    server = createServer({ cert: older.cert, key: older.key });
    await new Promise<void>((r) => server!.listen(fx.ports.https, '127.0.0.1', () => r()));
    expect((await devChecks())['dev-https']).toMatchObject({
      status: 'warn',
      fix: 'restart Traefik to load the new one: docker restart fx-traefik',
    });
  });
});
