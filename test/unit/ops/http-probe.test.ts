import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isTraefikDefaultCertificate, probe, retryUntil, servedCertificate } from '../../../src/ops/http-probe.js';
import { basicAuth } from '../../helpers/auth.js';

const exec = promisify(execFile);
let http: Server;
let https: TlsServer;
let seen: IncomingHttpHeaders[] = [];
let dir: string;

function portOf(s: Server | TlsServer): number {
  return (s.address() as AddressInfo).port;
}

beforeAll(async () => {
  http = createServer((req, res) => {
    seen.push(req.headers);
    const ok = req.headers.authorization === basicAuth('admin', 'pw');
    res.writeHead(req.headers.host === 'registry.example.test' ? (ok ? 200 : 401) : 404, {
      'content-type': 'application/json',
    });
    res.end(JSON.stringify({ path: req.url, method: req.method }));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  dir = await mkdtemp(join(tmpdir(), 'regctl-probe-'));
  await exec('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '30',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-subj',
    '/CN=registry.example.test',
    '-addext',
    'subjectAltName=DNS:registry.example.test',
  ]);
  https = createTlsServer(
    { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
    (_req, res) => {
      res.writeHead(401);
      res.end();
    },
  );
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  await new Promise((r) => http.close(r));
  await new Promise((r) => https.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('probe', () => {
  it('sends the public host name as Host, and credentials when given', async () => {
    seen = [];
    const anon = await probe({ port: portOf(http), host: 'registry.example.test', path: '/v2/' });
    const authed = await probe({
      port: portOf(http),
      host: 'registry.example.test',
      path: '/v2/',
      auth: { username: 'admin', password: 'pw' },
    });
    const other = await probe({ port: portOf(http), host: 'elsewhere.test', path: '/v2/', method: 'HEAD' });
    expect([anon.status, authed.status, other.status]).toEqual([401, 200, 404]);
    expect(JSON.parse(authed.body)).toEqual({ path: '/v2/', method: 'GET' });
    expect(seen.map((h) => h.host)).toEqual(['registry.example.test', 'registry.example.test', 'elsewhere.test']);
  });

  it('over TLS: refuses an untrusted certificate, accepts it with its CA or when told to', async () => {
    const base = { port: portOf(https), host: 'registry.example.test', path: '/v2/', tls: true };
    await expect(probe(base)).rejects.toThrow(/self.signed|certificate/i);
    expect((await probe({ ...base, ca: await readFile(join(dir, 'cert.pem')) })).status).toBe(401);
    expect((await probe({ ...base, insecure: true })).status).toBe(401);
  });
});

describe('servedCertificate', () => {
  it('reads subject, issuer, names and days left of what the server presents', async () => {
    const cert = await servedCertificate({ port: portOf(https), servername: 'registry.example.test' });
    expect(cert.subject).toBe('registry.example.test');
    expect(cert.issuer).toBe('registry.example.test');
    expect(cert.altNames).toEqual(['registry.example.test']);
    expect(cert.daysLeft).toBeGreaterThanOrEqual(29);
    expect(cert.daysLeft).toBeLessThanOrEqual(30);
    expect(isTraefikDefaultCertificate(cert)).toBe(false);
    expect(isTraefikDefaultCertificate({ ...cert, subject: 'TRAEFIK DEFAULT CERT' })).toBe(true);
  });
});

describe('retryUntil', () => {
  it('returns the first defined value', async () => {
    let calls = 0;
    const v = await retryUntil(async () => (++calls >= 3 ? 'ready' : undefined), {
      timeoutMs: 5000,
      intervalMs: 1,
      describe: () => 'never',
    });
    expect(v).toBe('ready');
    expect(calls).toBe(3);
  });

  it('gives up with the description and the last error', async () => {
    await expect(
      retryUntil(async () => Promise.reject(new Error('connection refused')), {
        timeoutMs: 20,
        intervalMs: 5,
        describe: () => 'registry did not answer',
      }),
    ).rejects.toThrow('registry did not answer: connection refused');
  });
});
