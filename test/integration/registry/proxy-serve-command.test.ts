/** `regctl serve` with proxies: one line per configuration mistake, and a pull through with env credentials. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../../helpers/auth.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, REGCTL_BIN, startServe } from '../../helpers/serve-process.js';

let work: string;
let upstream: ReferenceRegistry;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'regctl-proxy-serve-it-'));
  upstream = await startReferenceRegistry();
}, 60_000);
afterAll(async () => {
  await upstream?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!builtCliPresent())('regctl serve with proxies', () => {
  it('names every mistake in the proxies setting on its own line and exits non-zero', async () => {
    const config = join(work, 'bad.yml');
    await writeFile(
      config,
      'proxies:\n  - prefix: hub\n    upstream: https://registry-1.docker.io\n    ttl: 10\n  - prefix: Hub2\n    upstream: ftp://x\n',
    );
    const failure = await run(
      process.execPath,
      [REGCTL_BIN, 'serve', '--no-auth', '--data', join(work, 'd0'), '--config', config],
      {
        env: { NO_COLOR: '1' },
      },
    ).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(failure).toContain(
      [
        '✗ proxies[0].ttl: "10" is not a duration (examples: 30s, 10m, 1h30m, 7d; a bare number needs a unit)',
        'proxies[1].prefix: "Hub2" must be one lower-case name component (example: hub)',
        'proxies[1].upstream: "ftp://x" must start with https:// or http://',
        '  hint: see regctl serve --help',
      ].join('\n'),
    );
  });

  it('--proxy with credentials from REGCTL_PROXY_<PREFIX>_CREDENTIALS pulls a blob through', async () => {
    const blob = randomBytes(4096);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const auth = { authorization: basicAuth(upstream.username, upstream.password) };
    const post = await fetch(`${upstream.url}/v2/lib/b/blobs/uploads/`, { method: 'POST', headers: auth });
    const loc = new URL(post.headers.get('location') as string, upstream.url);
    loc.searchParams.set('digest', digest);
    expect((await fetch(loc, { method: 'PUT', headers: auth, body: new Uint8Array(blob) })).status).toBe(201);
    const serve = await startServe(['--no-auth', '--data', join(work, 'd1'), '--proxy', `my-up=${upstream.url}`], {
      inheritEnv: false,
      env: { REGCTL_PROXY_MY_UP_CREDENTIALS: `${upstream.username}:${upstream.password}` },
    });
    try {
      const res = await fetch(`${serve.url}/v2/my-up/lib/b/blobs/${digest}`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer())).toEqual(blob);
      expect(serve.output()).not.toContain(upstream.password);
    } finally {
      await serve.stop();
    }
  });
});
