/** Where the day-two commands send their requests (one place: admin-client.ts), and the HTTP→HTTPS switch. */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStackConfig } from '../../../src/config/schema.js';
import { AdminClient, stackEndpoint, urlEndpoint } from '../../../src/ops/admin-client.js';
import { renderStack, writeStack } from '../../../src/stack/render.js';
import { basicAuth } from '../../helpers/auth.js';

let root: string;
const stackIn = async (name: string, config: Record<string, unknown>): Promise<string> => {
  const parsed = parseStackConfig({ version: 1, ...config });
  if (!parsed.config) throw new Error('invalid');
  const dir = join(root, name);
  await writeStack(
    dir,
    renderStack(parsed.config, {
      secrets: { username: 'admin', password: 'p4ssw0rd-p4ssw0rd', htpasswd: 'admin:x\n' },
    }),
  );
  return dir;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'regctl-endpoint-'));
});
afterAll(async () => rm(root, { recursive: true, force: true }));

describe('stackEndpoint', () => {
  it('dev: Traefik on loopback, HTTP port, Host registry.<host>, the .env admin', async () => {
    const dir = await stackIn('dev', { host: 'example.test', ports: { http: 8081, https: 8443, registry: 0 } });
    expect(await stackEndpoint(dir, {})).toEqual({
      address: '127.0.0.1',
      port: 8081,
      tls: false,
      host: 'registry.example.test',
      publicHost: 'registry.example.test:8081',
      credentials: { username: 'admin', password: 'p4ssw0rd-p4ssw0rd' },
      description: 'http://registry.example.test:8081 (through 127.0.0.1:8081)',
    });
  });

  it('prod: HTTPS port with the registry host as server name; REGCTL_REGISTRY_URL wins over both', async () => {
    const dir = await stackIn('prod', { host: 'example.com', mode: 'prod' });
    expect(await stackEndpoint(dir, {})).toMatchObject({
      address: '127.0.0.1',
      port: 443,
      tls: true,
      host: 'registry.example.com',
      publicHost: 'registry.example.com',
    });
    expect(await stackEndpoint(dir, { REGCTL_REGISTRY_URL: 'http://127.0.0.1:5000' })).toMatchObject({
      address: '127.0.0.1',
      port: 5000,
      tls: false,
      host: '127.0.0.1:5000',
      credentials: { username: 'admin' },
    });
    expect(() => urlEndpoint('not a url', undefined)).toThrow(/not a URL/);
  });
});

describe('AdminClient', () => {
  let http: Server;
  let https: Server;
  let seen: { host: string | undefined; auth: string | undefined }[] = [];

  beforeAll(async () => {
    const key = join(root, 'key.pem');
    const cert = join(root, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=registry.example.test',
      ],
      { stdio: 'ignore' },
    );
    https = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      seen.push({ host: req.headers.host, auth: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ user: 'admin', admin: true, rules: [] }));
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const httpsPort = (https.address() as AddressInfo).port;
    http = createHttpServer((req, res) => {
      res.statusCode = 308;
      res.setHeader('location', `https://registry.example.test:${httpsPort}${req.url}`);
      res.end();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => http.close(r));
    await new Promise((r) => https.close(r));
  });

  it('follows a redirect to HTTPS on the same host once, then stays on HTTPS', async () => {
    seen = [];
    const client = new AdminClient({
      address: '127.0.0.1',
      port: (http.address() as AddressInfo).port,
      tls: false,
      host: 'registry.example.test',
      publicHost: 'registry.example.test',
      credentials: { username: 'admin', password: 'secret-secret' },
      description: 'test',
    });
    expect(await client.whoami()).toEqual({ user: 'admin', admin: true, rules: [] });
    expect(client.endpoint.tls).toBe(true);
    expect(await client.whoami()).toMatchObject({ admin: true });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ host: 'registry.example.test', auth: basicAuth('admin', 'secret-secret') });
  });

  it('a registry that does not answer is STACK_NOT_RUNNING with a hint', async () => {
    const client = new AdminClient(urlEndpoint('http://127.0.0.1:9', undefined));
    await expect(client.whoami()).rejects.toMatchObject({
      code: 'STACK_NOT_RUNNING',
      hint: expect.stringContaining('regctl up'),
    });
  });
});
