/**
 * Disk full, on small filesystems made for the test (tmpfs, so root is needed): below the `--min-free` floor
 * new uploads are refused with a clear 503 and existing data stays intact; without a floor, a real ENOSPC in
 * the middle of an upload is a clear error, leaves no partial file, and the registry recovers.
 */
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';
import { diffSnapshots, snapshotFiles } from './helpers/data-dir.js';
import { preconditionMet } from '../../helpers/peers.js';
import { builtCliPresent, startServe, type ServeProcess } from '../../helpers/serve-process.js';

const MiB = 1024 * 1024;

function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function tmpfs(dir: string, size: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

/** Sends a body with node:http and returns the response even when the server answers before reading it all. */
function send(
  url: string,
  method: string,
  body: Buffer,
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, headers: { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' } },
      (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const free = async (dir: string) => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

const mountable = preconditionMet(
  'root with mount(8) for tmpfs filesystems',
  canMount(),
  'run the disk-full tests as root',
);

describe.skipIf(!mountable || !builtCliPresent())('disk full on a small filesystem (root, npm run build)', () => {
  let base: string;
  const mounts: string[] = [];
  const servers: ServeProcess[] = [];

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'regctl-diskfull-'));
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    for (const m of mounts) execFileSync('umount', ['-l', m]);
    await rm(base, { recursive: true, force: true });
  });

  it(
    'under the --min-free floor new uploads are refused with a clear 503 and existing data is untouched',
    { timeout: 120_000 },
    async () => {
      const mnt = join(base, 'floor');
      await tmpfs(mnt, '64m');
      mounts.push(mnt);
      const srv = await startServe([
        '--data',
        join(mnt, 'data'),
        '--no-auth',
        '--min-free',
        '24MiB',
        '--log-level',
        'warn',
      ]);
      servers.push(srv);
      const c = new RegistryClient(srv.url);
      const config = Buffer.from('{"os":"linux"}');
      const small = Buffer.alloc(64 * 1024, 7);
      await c.pushBlobMonolithic('full/app', config);
      await c.pushBlobMonolithic('full/app', small);
      const manifestDigest = await c.putManifest('full/app', 'v1', imageManifest(config, [small]));
      const big = Buffer.alloc(30 * MiB, 1);
      const bigDigest = await c.pushBlobChunked('full/big', big, 8 * MiB);
      const more = Buffer.alloc(12 * MiB, 2);
      await c.pushBlobMonolithic('full/big', more);
      expect(await free(mnt)).toBeLessThan(24 * MiB);
      // The free-space figure is cached for a few seconds.
      await new Promise((r) => setTimeout(r, 5500));

      const before = await snapshotFiles(join(mnt, 'data'));
      for (const [method, path, body] of [
        ['POST', '/v2/full/app/blobs/uploads/', undefined],
        ['POST', `/v2/full/app/blobs/uploads/?digest=${sha256('tiny')}`, 'tiny'],
        ['PUT', '/v2/full/app/manifests/v2', imageManifest(config, [small]).toString()],
      ] as const) {
        const res = await c.request(
          method,
          path,
          body === undefined ? {} : { body, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } },
        );
        const text = await res.text();
        expect(res.status, `${method} ${path}`).toBe(503);
        expect(res.headers.get('retry-after')).toBeTruthy();
        const err = (
          JSON.parse(text) as { errors: { code: string; detail: { reason: string; minFreeBytes: number } }[] }
        ).errors[0];
        expect(err?.code).toBe('UNAVAILABLE');
        expect(err?.detail.reason).toContain('storage almost full');
        expect(err?.detail.minFreeBytes).toBe(24 * MiB);
      }
      expect(diffSnapshots(before, await snapshotFiles(join(mnt, 'data')))).toEqual([]);
      // Reads still work and return intact data.
      const m = await c.getManifest('full/app', 'v1');
      expect(m.status).toBe(200);
      expect(m.digest).toBe(manifestDigest);
      expect(sha256((await c.getBlob('full/app', sha256(small))).body)).toBe(sha256(small));
      expect(sha256((await c.getBlob('full/big', bigDigest)).body)).toBe(bigDigest);
      expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);

      // Freeing space (delete + GC) lifts the refusal once the cached figure expires.
      expect(await c.deleteBlob('full/big', bigDigest)).toBe(202);
      await c.json('POST', '/admin/v1/gc', { graceSeconds: 0 });
      expect(await free(mnt)).toBeGreaterThan(24 * MiB);
      await new Promise((r) => setTimeout(r, 5500));
      await c.pushBlobMonolithic('full/app', Buffer.from('accepted again'));
    },
  );

  it(
    'a real ENOSPC mid-upload is a clear error, leaves no partial file, and the registry recovers',
    { timeout: 120_000 },
    async () => {
      const mnt = join(base, 'enospc');
      await tmpfs(mnt, '16m');
      mounts.push(mnt);
      const srv = await startServe(['--data', join(mnt, 'data'), '--no-auth', '--log-level', 'warn']);
      servers.push(srv);
      const c = new RegistryClient(srv.url);
      const config = Buffer.from('{"os":"linux"}');
      const layer = Buffer.alloc(2 * MiB, 3);
      await c.pushBlobMonolithic('enospc/app', config);
      await c.pushBlobMonolithic('enospc/app', layer);
      const manifestDigest = await c.putManifest('enospc/app', 'v1', imageManifest(config, [layer]));
      const before = await snapshotFiles(join(mnt, 'data'));

      const huge = Buffer.alloc(24 * MiB, 4);
      const res = await send(`${srv.url}/v2/enospc/app/blobs/uploads/?digest=${sha256(huge)}`, 'POST', huge);
      expect(res.status, res.text).toBe(503);
      const err = (JSON.parse(res.text) as { errors: { code: string; message: string }[] }).errors[0];
      expect(err?.code).toBe('UNAVAILABLE');
      expect(err?.message).toContain('no space left');

      // The half-written upload is gone and nothing else changed.
      await new Promise((r) => setTimeout(r, 500));
      expect(diffSnapshots(before, await snapshotFiles(join(mnt, 'data')))).toEqual([]);
      expect([...(await snapshotFiles(join(mnt, 'data'))).keys()].filter((p) => p.includes('/_uploads/'))).toEqual([]);
      const m = await c.getManifest('enospc/app', 'v1');
      expect(m.digest).toBe(manifestDigest);
      expect(sha256((await c.getBlob('enospc/app', sha256(layer))).body)).toBe(sha256(layer));
      expect((await fetch(`${srv.url}/healthz`)).status).toBe(200);
      await c.pushBlobMonolithic('enospc/app', Buffer.from('small push after the failure'));
      expect(srv.output()).not.toContain('"level":"error"');
    },
  );
});
