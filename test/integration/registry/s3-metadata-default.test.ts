/**
 * `regctl serve --storage s3://…` with no `--metadata`: the embedded SQLite store in the state directory, imported
 * from the bucket at the first start and reused after, on versitygw. S3 listings are counted by a proxy between the
 * registry and the gateway: the first start walks the seeded bucket, a second start lists nothing (or next to
 * nothing) before it listens. A store file pointed at another bucket is imported again, not trusted.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3_PREFIX, seedBucket } from '../../../bench/s3-pass.js';
import { builtCliPresent, startServe, type ServeProcess } from '../../helpers/serve-process.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';

const ready = versitygwAvailable() && builtCliPresent();
const REPOSITORIES = 300;

/** Forwards every request to the gateway as is (signatures cover the Host header, which is kept) and counts the
 *  bucket listings (GET on a bucket with no key: ListObjects and ListObjectsV2). */
async function countingProxy(target: string): Promise<{ url: string; listings: () => number; close(): Promise<void> }> {
  const to = new URL(target);
  let listings = 0;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (req.method === 'GET' && /^\/[^/]+\/?$/.test(path)) listings++;
    const up = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    listings: () => listings,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.skipIf(!ready)('the default metadata store on S3: SQLite in the state directory', () => {
  let s3: S3Server;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let dir: string;
  let bucket: string;

  beforeAll(async () => {
    s3 = await startVersitygw();
    proxy = await countingProxy(s3.endpoint);
    dir = await mkdtemp(join(tmpdir(), 'regctl-s3-state-'));
    bucket = await s3.createBucket();
    await seedBucket(s3, bucket, REPOSITORIES, 2);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A start with the S3 flags and `extra`; resolves with the process, the listings it made before listening and
   *  how long it took to listen. */
  const start = async (b: string, extra: string[]) => {
    const before = proxy.listings();
    const started = Date.now();
    const srv = await startServe(
      ['--storage', `s3://${b}/${S3_PREFIX}`, '--s3-endpoint', proxy.url, '--s3-path-style', '--no-auth', ...extra],
      { inheritEnv: false, env: s3.env(), timeoutMs: 120_000 },
    );
    return { srv, listings: proxy.listings() - before, ms: Date.now() - started };
  };
  const catalogSize = async (srv: ServeProcess) => {
    let n = 0;
    let next: string | null = '/v2/_catalog?n=1000';
    while (next) {
      const res: Response = await fetch(`${srv.url}${next}`);
      n += ((await res.json()) as { repositories: string[] }).repositories.length;
      next = /<([^>]+)>/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
    }
    return n;
  };

  it('imports the bucket at the first start, and a second start lists next to nothing before it listens', async () => {
    const stateDir = join(dir, 'state');
    const first = await start(bucket, ['--state-dir', stateDir]);
    try {
      expect(first.srv.output()).toContain('importing storage into the metadata store');
      expect(first.listings).toBeGreaterThan(REPOSITORIES);
      expect(await catalogSize(first.srv)).toBe(REPOSITORIES);
    } finally {
      await first.srv.stop();
    }
    expect((await readdir(join(stateDir, 'regctl'))).filter((f) => f.endsWith('.sqlite'))).toEqual([
      expect.stringMatching(new RegExp(`^metadata-s3-${bucket}-[0-9a-f]{12}\\.sqlite$`)),
    ]);
    const second = await start(bucket, ['--state-dir', stateDir]);
    try {
      expect(second.srv.output()).not.toContain('importing storage');
      expect(second.listings).toBeLessThanOrEqual(2);
      expect(await catalogSize(second.srv)).toBe(REPOSITORIES);
    } finally {
      await second.srv.stop();
    }
    console.log(
      `s3 default metadata, ${REPOSITORIES} repositories: first start ${first.ms} ms with ${first.listings} listings, ` +
        `second ${second.ms} ms with ${second.listings}`,
    );
  }, 240_000);

  it('with no --state-dir the store file lives in --data; --metadata memory walks the bucket at every start', async () => {
    const data = join(dir, 'data');
    const first = await start(bucket, ['--data', data]);
    await first.srv.stop();
    expect((await readdir(join(data, 'regctl'))).some((f) => f.startsWith(`metadata-s3-${bucket}-`))).toBe(true);
    const memory = await start(bucket, ['--data', data, '--metadata', 'memory']);
    try {
      expect(memory.listings).toBeGreaterThan(REPOSITORIES);
      expect(await catalogSize(memory.srv)).toBe(REPOSITORIES);
    } finally {
      await memory.srv.stop();
    }
  }, 240_000);

  it('a store file pointed at another bucket is imported again, not trusted', async () => {
    const other = await s3.createBucket();
    await seedBucket(s3, other, 40, 1);
    const file = join(dir, 'shared.sqlite');
    const onFirst = await start(bucket, ['--metadata', `sqlite:${file}`]);
    await onFirst.srv.stop();
    const onOther = await start(other, ['--metadata', `sqlite:${file}`]);
    try {
      expect(onOther.srv.output()).toContain('the metadata store describes other storage');
      expect(await catalogSize(onOther.srv)).toBe(40);
    } finally {
      await onOther.srv.stop();
    }
  }, 240_000);
});
