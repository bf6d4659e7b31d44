/**
 * The bad-request corpus (test/fixtures/bad-requests/*.json) against a real registry socket: every request is
 * refused with a 4xx (the OCI error envelope when the registry itself answers), none gets a 5xx, and the data
 * directory holds no new or grown file afterwards.
 *
 * Entry fields: `method`, `path` (or a whole `requestLine`), `headers`, `rawHeaders` (header lines sent as
 * they are, `repeatHeaders` times), `body` (text or `{repeat, count}`) or `rawBody` (sent without a
 * Content-Length of ours), `auth: "raw"` (no admin credentials added), `expect` (allowed statuses, default
 * any 4xx), `trickle`, `halfClose`. `⟦N×text⟧` repeats text N times. `{session}` is a fresh upload session of
 * corpus/app, `{session4}` one that already holds 4 bytes, `{sessionid:<repo>}` the bare id of a session that
 * belongs to another repository. `{token:<kind>}` is a Bearer token made by `badTokens` (test/integration/reliability/
 * helpers/bad-tokens.ts): expired, wrong audience or issuer, `alg: none`, HS256 keyed with the public key, signed by
 * another key, or valid but for another scope; `{token:oidc-<kind>}` an OIDC ID token for the robot `corpus-ci`,
 * bound to a local issuer (helpers/oidc-tokens.ts), wrong in one way each. The registry runs with token auth (Basic credentials are still
 * accepted there, so every other entry meets the same code as with Basic auth) and an access file that makes the
 * corpus admin an admin and gives `corpus-nobody` nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { RegistryClient, imageManifest } from './helpers/client.js';
import { basicAuth } from '../../helpers/auth.js';
import { diffSnapshots, snapshotFiles } from './helpers/data-dir.js';
import { sendRaw } from './helpers/raw-http.js';
import { badTokens } from './helpers/bad-tokens.js';
import { oidcCorpus } from './helpers/oidc-tokens.js';

interface BadRequest {
  id: string;
  method: string;
  path: string;
  requestLine?: string;
  headers?: Record<string, string>;
  rawHeaders?: string[];
  repeatHeaders?: number;
  body?: string | { repeat: string; count: number };
  rawBody?: string;
  auth?: 'raw';
  expect?: number[];
  trickle?: { bytes: number; delayMs: number };
  halfClose?: boolean;
  /** Closing without any answer is acceptable (nothing was served). */
  closeOk?: boolean;
  /** The request may append to its own upload session's data (a chunk cut short, kept for resuming). */
  mayGrowSession?: boolean;
  note?: string;
}

const FIXTURES = new URL('../../fixtures/bad-requests/', import.meta.url);
const CORPUS: BadRequest[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((f) => JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8')) as BadRequest[]);

const expand = (s: string): string =>
  s.replace(/⟦(\d+)×(.*?)⟧/gs, (_m, n: string, text: string) => text.repeat(Number(n)));
const ADMIN = basicAuth('corpus-admin', 'corpus-pw');

interface CorpusFixture {
  dir: string;
  data: string;
  server: RegistryServer;
  port: number;
  client: RegistryClient;
  logs: string[];
  tokens: Record<string, string>;
  stopIssuer: () => Promise<void>;
}

/** A registry on a real socket with the corpus's admin user and an image in corpus/app and corpus/other. */
async function startFixture(): Promise<CorpusFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-corpus-'));
  const data = join(dir, 'data');
  const logs: string[] = [];
  await writeFile(join(dir, 'htpasswd'), `corpus-admin:${bcrypt.hashSync('corpus-pw', 4)}\n`);
  await writeFile(join(dir, 'access.yaml'), 'users:\n  corpus-admin: { admin: true }\n');
  const oidc = await oidcCorpus(dir);
  const server = createRegistryServer({
    port: 0,
    dataDir: data,
    htpasswd: join(dir, 'htpasswd'),
    access: join(dir, 'access.yaml'),
    authMode: 'token',
    tokenKey: join(dir, 'token-key.pem'),
    // Hundreds of refused credentials in a row: the throttle has its own tests.
    throttle: { maxFailures: 1_000_000 },
    log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })),
  });
  const addr = await server.listen();
  const client = new RegistryClient(addr.url, ADMIN);
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('corpus layer');
  for (const repo of ['corpus/app', 'corpus/other']) {
    await client.pushBlobMonolithic(repo, config);
    await client.pushBlobMonolithic(repo, layer);
    await client.putManifest(repo, 'latest', imageManifest(config, [layer]));
  }
  const tokens = await badTokens(
    join(dir, 'token-key.pem'),
    server.app.opts.tokens?.issuer as string,
    'regctl',
    server.app.opts.auth?.passwordFingerprint('corpus-admin') as string,
  );
  return {
    dir,
    data,
    server,
    port: addr.port,
    client,
    logs,
    tokens: { ...tokens, ...oidc.tokens },
    stopIssuer: oidc.stop,
  };
}

async function stopFixture(fx: CorpusFixture | undefined): Promise<void> {
  if (!fx) return;
  await fx.server.close();
  await fx.stopIssuer();
  await rm(fx.dir, { recursive: true, force: true });
}

/** The raw bytes of a corpus request sent to `path` (placeholders already replaced). */
function build(r: BadRequest, path: string, tokens: Record<string, string>): Buffer {
  const withTokens = (text: string) =>
    expand(text).replace(/\{token:([a-z0-9-]+)\}/g, (_m, kind: string) => {
      const token = tokens[kind];
      if (token === undefined) throw new Error(`no token of kind ${kind}: add it to helpers/bad-tokens.ts`);
      return token;
    });
  const lines = [
    r.requestLine !== undefined ? expand(r.requestLine) : `${r.method} ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
  ];
  if (r.auth !== 'raw') lines.push(`Authorization: ${ADMIN}`);
  for (const [k, v] of Object.entries(r.headers ?? {})) lines.push(`${k}: ${withTokens(v)}`);
  for (let i = 0; i < (r.repeatHeaders ?? 1); i++) for (const h of r.rawHeaders ?? []) lines.push(expand(h));
  let body = Buffer.alloc(0);
  if (r.rawBody !== undefined) body = Buffer.from(expand(r.rawBody));
  else if (r.body !== undefined) {
    body = typeof r.body === 'string' ? Buffer.from(withTokens(r.body)) : Buffer.alloc(r.body.count, r.body.repeat);
    lines.push(`Content-Length: ${body.length}`);
  }
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}

describe('bad-request corpus against a real socket', () => {
  let fx: CorpusFixture | undefined;
  let data: string;
  let port: number;
  let client: RegistryClient;
  let logs: string[];
  let tokens: Record<string, string>;
  beforeAll(async () => {
    fx = await startFixture();
    ({ data, port, client, logs, tokens } = fx);
  });
  afterAll(() => stopFixture(fx));

  it('holds at least 300 distinct requests', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(300);
    expect(new Set(CORPUS.map((r) => r.id)).size).toBe(CORPUS.length);
  });

  async function session(repo: string, content?: string): Promise<string> {
    const res = await client.request('POST', `/v2/${repo}/blobs/uploads/`);
    await res.arrayBuffer();
    const loc = res.headers.get('location') as string;
    if (content) {
      const p = await client.request('PATCH', loc, {
        body: content,
        headers: { 'Content-Range': `0-${content.length - 1}` },
      });
      await p.arrayBuffer();
    }
    return loc;
  }

  it('refuses every request with a 4xx, never a 5xx, and leaves no file behind', { timeout: 600_000 }, async () => {
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (const r of CORPUS) {
      const sessions: string[] = [];
      let path = expand(r.path);
      for (const [token, repo, content, idOnly] of [
        ['{session4}', 'corpus/app', 'abcd', false],
        ['{sessionid:corpus/other}', 'corpus/other', undefined, true],
        ['{session}', 'corpus/app', undefined, false],
      ] as const) {
        if (path.includes(token)) {
          const loc = await session(repo, content);
          sessions.push(loc);
          path = path.replace(token, idOnly ? (loc.split('/').pop() as string) : loc);
        }
      }
      const before = await snapshotFiles(data);
      let res;
      try {
        res = await sendRaw(port, build(r, path, tokens), { trickle: r.trickle, halfClose: r.halfClose });
      } catch (err) {
        failures.push(`${r.id}: ${(err as Error).message}`);
        continue;
      }
      if (r.halfClose) await new Promise((resolve) => setTimeout(resolve, 200));
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const allowed = r.expect ?? [];
      const ok4xx = res.status >= 400 && res.status < 500 && (allowed.length === 0 || allowed.includes(res.status));
      if (!(ok4xx || (res.status === 0 && (r.halfClose || r.closeOk))))
        failures.push(`${r.id}: status ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
      if (res.status >= 400 && res.headers['docker-distribution-api-version'] && r.method !== 'HEAD') {
        try {
          const env = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
          if (typeof env.errors?.[0]?.code !== 'string' || typeof env.errors[0].message !== 'string')
            throw new Error('no errors[0].code/message');
        } catch (err) {
          failures.push(
            `${r.id}: ${res.status} without the OCI error envelope (${(err as Error).message}): ${res.body.toString('utf8').slice(0, 120)}`,
          );
        }
      }
      const own = sessions.map(
        (loc) =>
          `${loc.replace(/^\/v2\//, 'docker/registry/v2/repositories/').replace('/blobs/uploads/', '/_uploads/')}/data`,
      );
      const leftovers = async () =>
        diffSnapshots(before, await snapshotFiles(data)).filter(
          (c) => !(r.mayGrowSession && own.some((o) => c.startsWith(`${o} `))),
        );
      let changed = await leftovers();
      if (changed.length > 0) {
        // The handler may still be cleaning up after the parser already answered and closed: look again.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        changed = await leftovers();
      }
      if (changed.length > 0) failures.push(`${r.id}: left files behind: ${changed.slice(0, 3).join(', ')}`);
      for (const loc of sessions) await (await client.request('DELETE', loc)).arrayBuffer();
    }
    console.log(
      `bad-request corpus: ${CORPUS.length} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
    expect(failures).toEqual([]);
    expect(logs.filter((l) => l.includes('"level":"error"'))).toEqual([]);
  });

  // After the corpus: the read notes a pull, which the store writes a second later, and the corpus must see no
  // file change but its own.
  it('the controls made like the bad tokens pass: access token reads, refresh token refreshes, ID token signs in', async () => {
    const read = await fetch(`${client.base}/v2/corpus/app/manifests/latest`, {
      headers: {
        Authorization: `Bearer ${tokens['valid-access']}`,
        Accept: 'application/vnd.oci.image.manifest.v1+json',
      },
    });
    await read.arrayBuffer();
    expect(read.status).toBe(200);
    const refreshed = await fetch(`${client.base}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens['valid-refresh'] as string,
        service: 'regctl',
        client_id: 'corpus',
        scope: 'repository:corpus/app:pull',
      }),
    });
    const body = (await refreshed.json()) as { access_token?: string; scope?: string };
    expect(refreshed.status).toBe(200);
    expect(body.scope).toBe('repository:corpus/app:pull');
    const oidc = await fetch(`${client.base}/auth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'robot$corpus-ci',
        password: tokens['oidc-valid'] as string,
        service: 'regctl',
        client_id: 'corpus',
        scope: 'repository:corpus/app:pull',
      }),
    });
    expect(oidc.status).toBe(200);
    expect(((await oidc.json()) as { scope?: string }).scope).toBe('repository:corpus/app:pull');
  });
});

describe('slow clients against a real socket', () => {
  let fx: CorpusFixture | undefined;
  let port: number;
  let client: RegistryClient;
  beforeAll(async () => {
    fx = await startFixture();
    ({ port, client } = fx);
  });
  afterAll(() => stopFixture(fx));

  it(
    'slow clients do not hold up others: 40 trickling connections while normal requests are served',
    { timeout: 60_000 },
    async () => {
      const { connect } = await import('node:net');
      const slow = Array.from({ length: 40 }, () => {
        const s = connect({ host: '127.0.0.1', port });
        s.on('error', () => undefined);
        s.write('GET /v2/corpus/app/tags/list HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        return s;
      });
      const timer = setInterval(() => slow.forEach((s) => s.write('X-Slow: 1\r\n')), 200);
      try {
        for (let i = 0; i < 20; i++) {
          const res = await client.request('GET', '/v2/corpus/app/tags/list');
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      } finally {
        clearInterval(timer);
        slow.forEach((s) => s.destroy());
      }
    },
  );
});
