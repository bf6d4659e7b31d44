/**
 * The pull-through cache's bearer-token dance against a real upstream: Debian's docker-registry (distribution 2.8.2)
 * with token auth, sending clients to a token service of the test's own (distribution has none; this one signs
 * JWTs with an openssl-made key whose certificate the registry trusts, and wants Basic credentials).
 */
import { createSign, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { peerPath, requirePeer } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { writeOciLayout } from './oci-layout.js';

const SERVICE = 'regctl-test-upstream';
const ISSUER = 'regctl-test-token-service';
const USER = 'mirror';
const PASSWORD = randomBytes(8).toString('hex');

let work: string;
let tokenServer: Server;
let upstream: ReferenceRegistry;
let ours: RegistryServer;
let oursHost: string;
let oursUrl: string;
let manifestDigest: string;
/** Token requests by scope. */
const tokenRequests = new Map<string, number>();

const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

/** A JWT distribution accepts: RS256, the signing certificate in `x5c`, the scope's actions granted. */
function jwt(keyPem: string, certDerB64: string, scopes: string[]): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scopes.map((s) => {
    const [type, name, actions] = s.split(':');
    return { type, name, actions: (actions ?? '').split(',') };
  });
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDerB64] }));
  const claims = b64url(
    JSON.stringify({
      iss: ISSUER,
      sub: USER,
      aud: SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: b64url(randomBytes(8)),
      access,
    }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(keyPem).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

beforeAll(async () => {
  requirePeer('crane');
  requirePeer('skopeo');
  requirePeer('openssl');
  work = await mkdtemp(join(tmpdir(), 'regctl-proxy-token-it-'));
  const keyPath = join(work, 'token.key');
  const certPath = join(work, 'token.crt');
  await run(peerPath('openssl'), [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '1',
    '-subj',
    '/CN=regctl-test-token',
  ]);
  const keyPem = await readFile(keyPath, 'utf8');
  const certDerB64 = (await readFile(certPath, 'utf8')).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scopes = url.searchParams.getAll('scope');
    for (const s of scopes) tokenRequests.set(s, (tokenRequests.get(s) ?? 0) + 1);
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== expected || url.searchParams.get('service') !== SERVICE) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    const token = jwt(keyPem, certDerB64, scopes);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
  const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
  upstream = await startReferenceRegistry({
    tokenAuth: { realm, service: SERVICE, issuer: ISSUER, rootCertBundle: certPath },
  });
  // crane refuses a token realm on a loopback address, so skopeo pushes, with a token minted here.
  const image = await writeOciLayout(join(work, 'img'), { tag: 'v1' });
  manifestDigest = image.manifestDigest;
  const pushToken = jwt(keyPem, certDerB64, ['repository:lib/img:pull,push']);
  await run(peerPath('skopeo'), [
    'copy',
    '--dest-tls-verify=false',
    '--dest-registry-token',
    pushToken,
    `oci:${image.dir}:v1`,
    `docker://${upstream.host}/lib/img:v1`,
  ]);

  const good = join(work, 'good');
  const bad = join(work, 'bad');
  await writeFile(good, JSON.stringify({ username: USER, password: PASSWORD }), { mode: 0o600 });
  await writeFile(bad, `${USER}:wrong`, { mode: 0o600 });
  ours = createRegistryServer({
    port: 0,
    dataDir: join(work, 'data'),
    noAuth: true,
    logLevel: 'silent',
    proxies: [
      { prefix: 'tok', upstream: upstream.url, credentialsFile: good, ttlMs: 0 },
      { prefix: 'badtok', upstream: upstream.url, credentialsFile: bad, ttlMs: 0 },
    ],
  });
  oursUrl = (await ours.listen()).url;
  oursHost = new URL(oursUrl).host;
}, 120_000);

afterAll(async () => {
  await ours?.close();
  await upstream?.stop();
  tokenServer?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('pull-through cache with a token-auth upstream', () => {
  it('fetches a token with its credentials, reuses it until it expires, and pulls through', async () => {
    const scope = 'repository:lib/img:pull';
    const env = { DOCKER_CONFIG: join(work, 'crane-ours') };
    await run(peerPath('crane'), ['validate', '--remote', `${oursHost}/tok/lib/img:v1`, '--insecure'], { env });
    expect((await run(peerPath('crane'), ['digest', `${oursHost}/tok/lib/img:v1`, '--insecure'], { env })).trim()).toBe(
      manifestDigest,
    );
    // Manifest HEAD and GET, config and layers, a second revalidation: one token for all of them.
    expect(tokenRequests.get(scope)).toBe(1);
  });

  it('a token service refusing the credentials is a clear 503 for what was never cached', async () => {
    const res = await fetch(`${oursUrl}/v2/badtok/lib/img/manifests/v1`);
    expect(res.status).toBe(503);
    const err = ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0];
    expect(err?.code).toBe('UNAVAILABLE');
    expect(err?.message).toMatch(/^pull-through cache: token service of 127\.0\.0\.1:\d+ answered 401/);
  });
});
