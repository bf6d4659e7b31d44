/**
 * Property-based tests of the HTTP layer (fast-check) over a real socket: random names, references, digests,
 * ranges, chunk sequences and manifest bodies never get a 5xx, and every 4xx carries the OCI error envelope.
 * A failing run prints its seed and counterexample: replay with FC_SEED=<seed>, then keep the counterexample as
 * an entry of test/fixtures/bad-requests/regressions.json (the corpus replays it on every run).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';
import { basicAuth } from '../../helpers/auth.js';
import { sendRaw, type RawResponse } from './helpers/raw-http.js';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : undefined;
const RUNS = Number(process.env.FC_RUNS ?? 300);
const params = (): fc.Parameters<unknown> => ({ numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) });
const ADMIN = basicAuth('prop-admin', 'prop-pw');

const LAYER = Buffer.from('property layer: 0123456789abcdefghijklmnopqrstuvwxyz');
const CONFIG = Buffer.from('{"os":"linux","architecture":"arm64"}');

/** Printable ASCII goes as is (except what breaks the request line), the rest percent-encoded. */
const encodePath = (s: string): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      b > 0x20 && b < 0x7f && b !== 0x25 && b !== 0x3f && b !== 0x23
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');

const nameArb = fc.oneof(
  fc.constantFrom('prop/app', 'prop/other', 'prop', 'a/b/c/d/e/f'),
  fc.stringMatching(/^[a-z0-9]([a-z0-9._\-/]{0,40}[a-z0-9])?$/),
  fc.string({
    unit: fc.constantFrom('a', 'Z', '/', '.', '..', '-', '_', '__', '%2e', '%2f', '\u0000', ' ', 'é', ':', '@'),
    maxLength: 30,
  }),
);
const digestArb = fc.oneof(
  fc.constant(sha256(LAYER)),
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
  fc
    .tuple(fc.constantFrom('sha256', 'sha512', 'md5', 'SHA256', '', 'sha256+b64'), fc.string({ maxLength: 140 }))
    .map(([a, h]) => `${a}:${h}`),
  fc.string({ maxLength: 80 }),
);
const referenceArb = fc.oneof(
  fc.constant('latest'),
  digestArb,
  fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,140}$/),
  fc.string({ maxLength: 40 }),
);

function checkResponse(res: RawResponse, what: string): void {
  if (res.status >= 500 || res.status === 0)
    throw new Error(`${what} → ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
  if (res.status >= 400 && res.headers['docker-distribution-api-version'] && res.body.length > 0) {
    const env = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    if (typeof env.errors?.[0]?.code !== 'string' || typeof env.errors[0].message !== 'string')
      throw new Error(`${what} → ${res.status} without the OCI error envelope`);
  }
}

interface PropsFixture {
  dir: string;
  server: RegistryServer;
  port: number;
  client: RegistryClient;
}

/** A registry on a real socket with an image in prop/app and a blob in prop/ranges. */
async function startFixture(): Promise<PropsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-props-'));
  await writeFile(join(dir, 'htpasswd'), `prop-admin:${bcrypt.hashSync('prop-pw', 4)}\n`);
  const server = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    logLevel: 'silent',
  });
  const addr = await server.listen();
  const client = new RegistryClient(addr.url, ADMIN);
  await client.pushBlobMonolithic('prop/app', LAYER);
  await client.pushBlobMonolithic('prop/app', CONFIG);
  await client.putManifest('prop/app', 'latest', imageManifest(CONFIG, [LAYER]));
  // Only the range property reads this repository; the random routes may delete what they find in prop/app.
  await client.pushBlobMonolithic('prop/ranges', LAYER);
  return { dir, server, port: addr.port, client };
}

async function stopFixture(fx: PropsFixture | undefined): Promise<void> {
  if (!fx) return;
  await fx.server.close();
  await rm(fx.dir, { recursive: true, force: true });
}

/** One request as raw bytes, authenticated as the admin, on its own connection. */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<RawResponse> {
  const b = body === undefined ? undefined : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', `Authorization: ${ADMIN}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (b) lines.push(`Content-Length: ${b.length}`);
  return sendRaw(port, Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), b ?? Buffer.alloc(0)]));
}

/** Each group of properties gets a registry of its own. */
function useFixture(): {
  fx: () => PropsFixture;
  request: (
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: Buffer | string,
  ) => Promise<RawResponse>;
} {
  let fx: PropsFixture | undefined;
  beforeAll(async () => {
    fx = await startFixture();
  });
  afterAll(() => stopFixture(fx));
  const get = (): PropsFixture => {
    if (!fx) throw new Error('fixture not started');
    return fx;
  };
  return { fx: get, request: (method, path, headers, body) => rawRequest(get().port, method, path, headers, body) };
}

describe('HTTP layer properties (fast-check, real socket): routes and ranges', () => {
  const { request } = useFixture();

  it(
    'random names, references and digests on every route: never 5xx, 4xx always enveloped',
    { timeout: 300_000 },
    async () => {
      const routeArb = fc.tuple(
        fc.constantFrom(
          ['GET', 'manifests'],
          ['HEAD', 'manifests'],
          ['PUT', 'manifests'],
          ['DELETE', 'manifests'],
          ['GET', 'blobs'],
          ['HEAD', 'blobs'],
          ['DELETE', 'blobs'],
          ['GET', 'tags'],
          ['GET', 'referrers'],
          ['POST', 'uploads'],
          ['PATCH', 'upload'],
          ['PUT', 'upload'],
          ['GET', 'upload'],
          ['DELETE', 'upload'],
        ),
        nameArb,
        referenceArb,
        digestArb,
      );
      await fc.assert(
        fc.asyncProperty(routeArb, async ([[method, kind], name, reference, digest]) => {
          const n = encodePath(name);
          const path = {
            manifests: `/v2/${n}/manifests/${encodePath(reference)}`,
            blobs: `/v2/${n}/blobs/${encodePath(digest)}`,
            tags: `/v2/${n}/tags/list?n=${encodeURIComponent(reference)}&last=${encodeURIComponent(digest)}`,
            referrers: `/v2/${n}/referrers/${encodePath(digest)}?artifactType=${encodeURIComponent(reference)}`,
            uploads: `/v2/${n}/blobs/uploads/?digest=${encodeURIComponent(digest)}&mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(reference)}`,
            upload: `/v2/${n}/blobs/uploads/${encodePath(reference)}?digest=${encodeURIComponent(digest)}`,
          }[kind as 'manifests'];
          const res = await request(
            method,
            path,
            {},
            method === 'PUT' || method === 'PATCH' || method === 'POST' ? 'x' : undefined,
          );
          checkResponse(res, `${method} ${path}`);
          // Whatever was created must be under a valid name: clean up sessions the fallback opened.
          if (res.status === 202 && res.headers.location) await request('DELETE', res.headers.location);
        }),
        params(),
      );
    },
  );

  it('random Range headers on a blob: 200, 206 with exactly the slice, or 416', { timeout: 120_000 }, async () => {
    const rangeArb = fc.oneof(
      fc
        .tuple(fc.option(fc.nat(120), { nil: undefined }), fc.option(fc.nat(120), { nil: undefined }))
        .map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
      fc.string({ maxLength: 30 }).filter((s) => !/[\r\n]/.test(s)),
      fc.tuple(fc.nat(200), fc.nat(200), fc.nat(200)).map(([a, b, c]) => `bytes=${a}-${b},${c}-`),
    );
    await fc.assert(
      fc.asyncProperty(rangeArb, async (range) => {
        const res = await request('GET', `/v2/prop/ranges/blobs/${sha256(LAYER)}`, { Range: range });
        checkResponse(res, `Range ${range}`);
        expect([200, 206, 416, 400]).toContain(res.status);
        if (res.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
          expect(m).not.toBeNull();
          expect(res.body.equals(LAYER.subarray(Number(m?.[1]), Number(m?.[2]) + 1))).toBe(true);
        }
        if (res.status === 200) expect(res.body.equals(LAYER)).toBe(true);
      }),
      params(),
    );
  });
});

describe('HTTP layer properties (fast-check, real socket): uploads and manifests', () => {
  const { fx, request } = useFixture();

  it(
    'random chunk sequences: the blob is stored only when the chunks add up to the digest',
    { timeout: 300_000 },
    async () => {
      const chunkArb = fc.array(
        fc.record({
          len: fc.integer({ min: 0, max: 40 }),
          shift: fc.integer({ min: -3, max: 3 }),
          sendRange: fc.boolean(),
        }),
        { minLength: 1, maxLength: 6 },
      );
      await fc.assert(
        fc.asyncProperty(chunkArb, fc.boolean(), async (chunks, finishWithRightDigest) => {
          const start = await request('POST', '/v2/prop/chunks/blobs/uploads/');
          expect(start.status).toBe(202);
          const loc = start.headers.location as string;
          const content: Buffer[] = [];
          let offset = 0;
          for (const c of chunks) {
            const data = Buffer.from(createHash('sha256').update(`${offset}:${c.len}`).digest('hex').slice(0, c.len));
            const s = Math.max(0, offset + c.shift);
            const headers: Record<string, string> =
              c.sendRange && data.length > 0 ? { 'Content-Range': `${s}-${s + data.length - 1}` } : {};
            const res = await request('PATCH', loc, headers, data);
            checkResponse(res, `PATCH ${JSON.stringify(headers)}`);
            if (res.status === 202) {
              content.push(data);
              offset += data.length;
              expect(res.headers.range).toBe(`0-${Math.max(0, offset - 1)}`);
            } else expect(res.status).toBe(416);
          }
          const whole = Buffer.concat(content);
          const digest = finishWithRightDigest ? sha256(whole) : sha256(Buffer.concat([whole, Buffer.from('!')]));
          const fin = await request('PUT', `${loc}?digest=${digest}`);
          checkResponse(fin, 'PUT finish');
          if (finishWithRightDigest) {
            expect(fin.status).toBe(201);
            const got = await fx().client.getBlob('prop/chunks', digest);
            expect(sha256(got.body)).toBe(digest);
          } else expect(fin.status).toBe(400);
        }),
        params(),
      );
    },
  );

  it(
    'random manifest bodies and media types: 201 or an enveloped 4xx, and what is stored reads back',
    { timeout: 300_000 },
    async () => {
      const good = JSON.parse(imageManifest(CONFIG, [LAYER]).toString()) as Record<string, unknown>;
      const bodyArb = fc.oneof(
        fc.json({ maxDepth: 4 }),
        fc
          .record({
            key: fc.constantFrom(
              'schemaVersion',
              'mediaType',
              'config',
              'layers',
              'subject',
              'annotations',
              'manifests',
              'artifactType',
            ),
            value: fc.jsonValue({ maxDepth: 3 }),
          })
          .map(({ key, value }) => JSON.stringify({ ...good, [key]: value })),
        fc.string({ maxLength: 200 }),
      );
      const typeArb = fc.constantFrom(
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.v1+json',
        'application/json',
        'text/plain; charset=utf-8',
        '',
      );
      await fc.assert(
        fc.asyncProperty(bodyArb, typeArb, fc.stringMatching(/^[a-z0-9]{1,10}$/), async (body, type, tag) => {
          const res = await request(
            'PUT',
            `/v2/prop/app/manifests/t-${tag}`,
            type ? { 'Content-Type': type } : {},
            body,
          );
          checkResponse(res, `PUT manifest ${body.slice(0, 80)}`);
          if (res.status === 201) {
            const got = await fx().client.getManifest('prop/app', `t-${tag}`);
            expect(got.status).toBe(200);
            expect(sha256(got.body)).toBe(sha256(body));
          } else expect(res.status).toBeGreaterThanOrEqual(400);
        }),
        params(),
      );
    },
  );
});
