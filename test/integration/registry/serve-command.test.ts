/** `regctl serve` as a program: one line with its URL, --ui, clean stop on SIGTERM with in-flight requests finished. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../../bin/regctl.js', import.meta.url));

function startOpen(dataDir: string, extra: string[] = [], nodeArgs: string[] = []) {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      BIN,
      'serve',
      '--no-auth',
      '--listen',
      '127.0.0.1:0',
      '--data',
      dataDir,
      '--log-level',
      'warn',
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' },
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /registry listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, exit, output: () => out };
}

describe('regctl serve process', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-serve-cmd-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints one line with its URL and finishes an in-flight upload on SIGTERM, then exits 0', async () => {
    const p = startOpen(join(dir, 'data'));
    const url = await p.url;
    expect(p.output().trim().split('\n')).toEqual([`✓ registry listening on ${url} (no authentication)`]);
    const start = await fetch(`${url}/v2/sig/term/blobs/uploads/`, { method: 'POST' });
    const loc = start.headers.get('location') as string;
    const u = new URL(url);
    const part1 = Buffer.alloc(512 * 1024, 1);
    const part2 = Buffer.alloc(512 * 1024, 2);
    const done = new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          method: 'PATCH',
          path: loc,
          headers: { 'content-length': part1.length + part2.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(part1);
      setTimeout(() => {
        p.child.kill('SIGTERM');
        setTimeout(() => req.end(part2), 300);
      }, 200);
    });
    expect(await done).toBe(202);
    expect(await p.exit).toBe(0);

    const again = startOpen(join(dir, 'data'));
    const url2 = await again.url;
    const status = await fetch(`${url2}${loc}`);
    expect(status.headers.get('range')).toBe(`0-${part1.length + part2.length - 1}`);
    const digest = `sha256:${createHash('sha256')
      .update(Buffer.concat([part1, part2]))
      .digest('hex')}`;
    expect((await fetch(`${url2}${loc}?digest=${digest}`, { method: 'PUT' })).status).toBe(201);
    again.child.kill('SIGINT');
    expect(await again.exit).toBe(0);
  });

  it('--ui mounts the web UI under /ui/', async () => {
    const p = startOpen(join(dir, 'ui-data'), ['--ui']);
    const url = await p.url;
    try {
      const res = await fetch(`${url}/ui/`, { redirect: 'manual' });
      expect([200, 302, 303]).toContain(res.status);
      expect(res.headers.get('content-type') ?? res.headers.get('location') ?? '').toMatch(/text\/html|\/ui\//);
      expect((await fetch(`${url}/v2/`)).status).toBe(200);
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  });

  it('on the filesystem, never loads the S3 client (the AWS SDK) nor the backup archive writer', async () => {
    // A preloaded hook lists, at exit, the packages of every CommonJS module the process loaded (the SDK and
    // tar-stream are CommonJS), after a push, a pull and a catalog page.
    const hook = join(dir, 'report-loads.cjs');
    await writeFile(
      hook,
      `process.on('exit', () => {
  const names = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\\/(@[^/]+\\/[^/]+|[^/]+)/.exec(file);
    if (m) names.add(m[1]);
  }
  process.stderr.write('loaded packages: ' + [...names].join(' ') + '\\n');
});`,
    );
    const p = startOpen(join(dir, 'lazy-data'), [], ['--require', hook]);
    const url = await p.url;
    try {
      const config = Buffer.from('{"os":"linux","architecture":"amd64"}');
      const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      const blob = await fetch(`${url}/v2/lazy/app/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        body: new Uint8Array(config),
      });
      expect(blob.status).toBe(201);
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length },
        layers: [],
      });
      const put = await fetch(`${url}/v2/lazy/app/manifests/v1`, {
        method: 'PUT',
        body: manifest,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(put.status).toBe(201);
      expect((await fetch(`${url}/v2/lazy/app/manifests/v1`)).status).toBe(200);
      expect(await (await fetch(`${url}/v2/_catalog`)).json()).toEqual({ repositories: ['lazy/app'] });
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
    const loaded = /loaded packages: (.*)/.exec(p.output())?.[1]?.split(' ') ?? [];
    // The hook works: the SQLite module is loaded on this path.
    expect(loaded).toContain('better-sqlite3');
    expect(loaded.filter((name) => /^@aws-sdk\/|^@smithy\/|^tar-stream$/.test(name))).toEqual([]);
  });
});
