/**
 * The dev stack's local CA and leaf: what is made (read back with node:crypto's X509Certificate and the X.509
 * library's extension parsers), that a real TLS client accepts the leaf against ca.crt alone and refuses what the
 * CA may not vouch for, and what `ensureDevCertificates` keeps, renews and replaces.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { AddressInfo } from 'node:net';
import * as x509 from '../../../src/ops/x509.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CA_DAYS,
  caProblem,
  ensureDevCertificates,
  issueLeaf,
  LEAF_DAYS,
  leafProblem,
  makeCa,
  permittedDomains,
} from '../../../src/ops/dev-ca.js';

const DAY = 86_400_000;
const NAMES = ['registry.example.test', 'registry-ui.example.test'];
let dir: string;
let server: Server | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regctl-ca-'));
});
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** A TLS handshake with `servername` to a server presenting `leaf`, trusting `ca` only: 'ok' or `CODE: message`. */
async function handshake(leaf: { cert: string; key: string }, ca: string, servername: string): Promise<string> {
  server = createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const result = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, rejectUnauthorized: true });
    socket.once('secureConnect', () => {
      socket.end();
      resolve('ok');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.code}: ${err.message}`));
  });
  await new Promise((r) => server!.close(r));
  server = undefined;
  return result;
}

describe('makeCa and issueLeaf', () => {
  it('the CA: a CA certificate for keyCertSign only, path length 0, constrained to the domain, CA_DAYS long', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const ca = await makeCa('example.test', now);
    const cert = new X509Certificate(ca.cert);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('CN=regctl local CA for example.test');
    expect(cert.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(ca.key)))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(new Date(cert.validTo).getTime() - now.getTime()).toBe(CA_DAYS * DAY);
    expect(ca.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const parsed = new x509.X509Certificate(ca.cert);
    const basic = parsed.getExtension(x509.BasicConstraintsExtension)!;
    expect([basic.ca, basic.pathLength, basic.critical]).toEqual([true, 0, true]);
    const usage = parsed.getExtension(x509.KeyUsagesExtension)!;
    expect(usage.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(usage.critical).toBe(true);
    expect(permittedDomains(ca.cert)).toEqual(['example.test']);
    expect(parsed.getExtension('2.5.29.30')!.critical).toBe(true);
  });

  it('the leaf: every name as a DNS SAN, not a CA, serverAuth, signed by the CA, LEAF_DAYS long', async () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const ca = await makeCa('example.test', now);
    const leaf = await issueLeaf(ca, NAMES, now);
    const cert = new X509Certificate(leaf.cert);
    const caCert = new X509Certificate(ca.cert);
    expect(cert.subjectAltName).toBe('DNS:registry.example.test, DNS:registry-ui.example.test');
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(new Date(cert.validTo).getTime() - now.getTime()).toBe(LEAF_DAYS * DAY);
    const usage = new x509.X509Certificate(leaf.cert).getExtension(x509.KeyUsagesExtension)!;
    expect(usage.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(leafProblem(leaf, ca.cert, NAMES, now)).toBeUndefined();
  });

  it('a TLS client trusting ca.crt alone accepts the leaf for its names and refuses any other name', async () => {
    const ca = await makeCa('example.test');
    const leaf = await issueLeaf(ca, NAMES);
    expect(await handshake(leaf, ca.cert, 'registry.example.test')).toBe('ok');
    expect(await handshake(leaf, ca.cert, 'registry-ui.example.test')).toBe('ok');
    expect(await handshake(leaf, ca.cert, 'registry.other.test')).toMatch(/^ERR_TLS_CERT_ALTNAME_INVALID: /);
    const stranger = await makeCa('example.test');
    expect(await handshake(leaf, stranger.cert, 'registry.example.test')).toMatch(/^UNABLE_TO_VERIFY_LEAF_SIGNATURE: /);
  });

  it('the name constraint holds: a leaf the CA signs for a name outside its domain is refused', async () => {
    const ca = await makeCa('example.test');
    const outside = await issueLeaf(ca, ['bank.example.com']);
    // OpenSSL's X509_V_ERR_PERMITTED_VIOLATION, which node reports without a code of its own.
    expect(await handshake(outside, ca.cert, 'bank.example.com')).toBe('UNSPECIFIED: permitted subtree violation');
  });
});

describe('caProblem and leafProblem', () => {
  it('name the problem of a CA: not a CA, another key, expiring, names outside its domain', async () => {
    const ca = await makeCa('example.test');
    const other = await makeCa('example.test');
    const leaf = await issueLeaf(ca, NAMES);
    expect(caProblem(ca, NAMES)).toBeUndefined();
    expect(caProblem({ cert: leaf.cert, key: leaf.key }, NAMES)).toBe('ca.crt is not a CA certificate');
    expect(caProblem({ cert: ca.cert, key: other.key }, NAMES)).toBe('ca.key is not the key of ca.crt');
    expect(caProblem(ca, NAMES, new Date(Date.now() + (CA_DAYS - 10) * DAY))).toMatch(/^ca\.crt expires /);
    expect(caProblem(ca, ['registry.other.test'])).toBe(
      'ca.crt may only sign names under example.test, not registry.other.test',
    );
    expect(caProblem({ cert: 'junk', key: ca.key }, NAMES)).toBe('ca.crt is not a PEM certificate');
  });

  it('name the problem of a leaf: another CA, a missing name, expired, expiring, a foreign key', async () => {
    const ca = await makeCa('example.test');
    const other = await makeCa('example.test');
    const leaf = await issueLeaf(ca, NAMES);
    expect(leafProblem(leaf, other.cert, NAMES)).toBe('the leaf is not signed by ca.crt');
    expect(leafProblem(await issueLeaf(ca, [NAMES[0]!]), ca.cert, NAMES)).toBe(
      'the leaf does not name registry-ui.example.test (it names registry.example.test)',
    );
    const old = await issueLeaf(ca, NAMES, new Date(Date.now() - (LEAF_DAYS + 1) * DAY));
    expect(leafProblem(old, ca.cert, NAMES)).toMatch(/^the leaf expired /);
    expect(leafProblem(leaf, ca.cert, NAMES, new Date(Date.now() + (LEAF_DAYS - 5) * DAY))).toMatch(
      /^the leaf expires .* \(4 days left\)$/,
    );
    expect(leafProblem({ cert: leaf.cert, key: other.key }, ca.cert, NAMES)).toBe(
      'the leaf key does not match its certificate',
    );
  });
});

describe('ensureDevCertificates', () => {
  const files = ['certs/ca.crt', 'certs/ca.key', 'certs/traefik/example.test.crt', 'certs/traefik/example.test.key'];
  const contents = () => Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));

  it('makes the CA and the leaf, keys 0600; a second run keeps all four as they are', async () => {
    const first = await ensureDevCertificates(dir, 'example.test', NAMES);
    expect(first.files.map((f) => [f.path, f.status, f.secret])).toEqual([
      [files[0], 'created', false],
      [files[1], 'created', true],
      [files[2], 'created', false],
      [files[3], 'created', true],
    ]);
    expect(first.caReplaced).toBeUndefined();
    expect(await mode(join(dir, 'certs/ca.key'))).toBe(0o600);
    expect(await mode(join(dir, 'certs/traefik/example.test.key'))).toBe(0o600);
    expect(await mode(join(dir, 'certs/ca.crt'))).toBe(0o644);
    const before = await contents();
    await writeFile(join(dir, 'certs/ca.key'), before[1]!, { mode: 0o644 });
    const second = await ensureDevCertificates(dir, 'example.test', NAMES);
    expect(second.files.map((f) => f.status)).toEqual(['kept', 'kept', 'kept', 'kept']);
    expect(await contents()).toEqual(before);
    expect(await mode(join(dir, 'certs/ca.key'))).toBe(0o600);
  });

  it('renews the leaf (and keeps the CA) for a new name or near its end', async () => {
    await ensureDevCertificates(dir, 'example.test', [NAMES[0]!]);
    const [ca, , leaf] = await contents();
    const more = await ensureDevCertificates(dir, 'example.test', NAMES);
    expect(more.files.map((f) => f.status)).toEqual(['kept', 'kept', 'renewed', 'renewed']);
    const [ca2, , leaf2] = await contents();
    expect(ca2).toBe(ca);
    expect(leaf2).not.toBe(leaf);
    expect(new X509Certificate(leaf2!).subjectAltName).toContain('DNS:registry-ui.example.test');
    const late = await ensureDevCertificates(dir, 'example.test', NAMES, new Date(Date.now() + (LEAF_DAYS - 20) * DAY));
    expect(late.files.map((f) => f.status)).toEqual(['kept', 'kept', 'renewed', 'renewed']);
  });

  it('replaces a CA that cannot sign the names, and says why', async () => {
    await ensureDevCertificates(dir, 'example.test', NAMES);
    const [ca] = await contents();
    const moved = await ensureDevCertificates(dir, 'other.test', ['registry.other.test']);
    expect(moved.caReplaced).toBe('ca.crt may only sign names under example.test, not registry.other.test');
    expect(moved.files.map((f) => [f.path, f.status])).toEqual([
      ['certs/ca.crt', 'renewed'],
      ['certs/ca.key', 'renewed'],
      ['certs/traefik/other.test.crt', 'created'],
      ['certs/traefik/other.test.key', 'created'],
    ]);
    expect(await readFile(join(dir, 'certs/ca.crt'), 'utf8')).not.toBe(ca);
  });
});
