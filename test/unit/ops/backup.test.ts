import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, progressLine } from '../../../src/ops/backup.js';
import { restoreDirectory } from '../../../src/ops/restore.js';
import { readArchiveManifest } from '../../../src/registry/backup/restore.js';
import { createRegistryServer } from '../../../src/registry/server.js';
import {
  captureOutput,
  getBlob,
  getManifestDigest,
  pushImage,
  startFixture,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

/** Serves a data directory without auth and checks every tag of every repository and every blob they name. */
async function servedState(dataDir: string): Promise<Record<string, string>> {
  const server = createRegistryServer({ dataDir, noAuth: true, port: 0, log: () => undefined });
  const { url } = await server.listen();
  try {
    const state: Record<string, string> = {};
    const catalog = (await (await fetch(`${url}/v2/_catalog`)).json()) as { repositories: string[] };
    for (const repo of catalog.repositories) {
      const tags = (await (await fetch(`${url}/v2/${repo}/tags/list`)).json()) as { tags: string[] | null };
      for (const tag of tags.tags ?? []) {
        const m = await getManifestDigest(url, repo, tag, undefined);
        if (m.status !== 200) throw new Error(`${repo}:${tag} → ${m.status}`);
        const body = (await (
          await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
            headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
          })
        ).json()) as { layers?: { digest: string }[]; config?: { digest: string } };
        for (const d of [body.config?.digest, ...(body.layers ?? []).map((l) => l.digest)].filter((x): x is string =>
          Boolean(x),
        )) {
          const b = await getBlob(url, repo, d, undefined);
          if (b.digest !== d) throw new Error(`${repo}:${tag} blob ${d} → ${b.status}`);
        }
        state[`${repo}:${tag}`] = m.digest as string;
      }
    }
    return state;
  } finally {
    await server.close();
  }
}

describe('regctl backup / restore --data against a real registry', () => {
  let fx: Fixture;
  let full: string;
  const before: Record<string, string> = {};

  beforeAll(async () => {
    fx = await startFixture();
    for (let i = 0; i < 3; i++) {
      const img = await pushImage(fx.url, `team/app${i}`, 'v1', [randomBytes(200_000), randomBytes(3_000)], fx.admin);
      before[`team/app${i}:v1`] = img.digest;
    }
  });
  afterAll(async () => fx.close());

  it('writes the archive atomically with progress, even while a push runs', async () => {
    const out = captureOutput();
    let pushing = true;
    const pushes = (async () => {
      let n = 0;
      while (pushing) {
        const img = await pushImage(fx.url, 'busy', `t${n}`, [randomBytes(100_000)], fx.admin);
        before[`busy:t${n}`] = img.digest;
        n++;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const r = await backup({ dir: fx.stackDir, outFile: 'full.tar', cwd: fx.root, out, env: fx.env, verify: true });
    pushing = false;
    await pushes;
    full = r.file;
    expect(r.file).toBe(join(fx.root, 'full.tar'));
    expect(r.verified).toBe(true);
    expect(r.bytes).toBe((await stat(full)).size);
    expect(r.contentBytes).toBeGreaterThan(600_000);
    expect(r.fenceMs).toBeLessThan(2000);
    expect((await stat(full)).mode & 0o777).toBe(0o600);
    expect((await readdir(fx.root)).filter((f) => f.includes('.part-'))).toEqual([]);
    const text = out.lines.join('\n');
    expect(text).toMatch(/Backup \S+ written: [\d.]+ (?:KiB|MiB) in \S+ \([\d.]+ (?:B|KiB|MiB|GiB)\/s\)/);
    expect(text).toContain('writes held for');
  });

  it('restores into an empty directory: every tag and blob is served, nothing torn by the concurrent push', async () => {
    const target = join(fx.root, 'restore-full');
    await mkdir(target);
    const r = await restoreDirectory({ archive: full, dataDir: target, force: false, bases: [] });
    expect(r.replaced).toBe(false);
    const state = await servedState(target);
    for (let i = 0; i < 3; i++) expect(state[`team/app${i}:v1`]).toBe(before[`team/app${i}:v1`]);
    for (const [k, v] of Object.entries(state)) expect(before[k]).toBe(v);
    await expect(restoreDirectory({ archive: full, dataDir: target, force: false, bases: [] })).rejects.toMatchObject({
      code: 'FILE_EXISTS',
    });
  });

  it('incremental: only new blobs are copied; restoring needs the base', async () => {
    const extra = await pushImage(fx.url, 'late', 'v1', [randomBytes(150_000)], fx.admin);
    const r = await backup({
      dir: fx.stackDir,
      outFile: 'incr.tar.gz',
      incrementalFrom: full,
      cwd: fx.root,
      out: captureOutput(),
      env: fx.env,
    });
    expect(r.gzip).toBe(true);
    expect((await readFile(r.file)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const m = await readArchiveManifest(r.file);
    const fullManifest = await readArchiveManifest(full);
    expect(m.base).toEqual({ id: fullManifest.id, createdAt: fullManifest.createdAt });
    expect(m.baseBlobs.length).toBeGreaterThan(5);
    const fullBlobs = new Set(fullManifest.files.filter((f) => f.path.includes('/blobs/')).map((f) => f.path));
    expect(m.files.filter((f) => fullBlobs.has(f.path))).toEqual([]);
    expect(m.files.some((f) => f.sha256 === extra.digest.slice(7))).toBe(true);
    const target = join(fx.root, 'restore-incr');
    await mkdir(target);
    await expect(restoreDirectory({ archive: r.file, dataDir: target, force: false, bases: [] })).rejects.toMatchObject(
      { code: 'BACKUP_INVALID' },
    );
    expect(await readdir(target)).toEqual([]);
    await restoreDirectory({ archive: r.file, dataDir: target, force: false, bases: [full] });
    const state = await servedState(target);
    expect(state['late:v1']).toBe(extra.digest);
    expect(state['team/app0:v1']).toBe(before['team/app0:v1']);
  });

  it('an unreachable registry is a clear error and leaves no file', async () => {
    const err = await backup({
      dir: fx.stackDir,
      outFile: 'never.tar',
      cwd: fx.root,
      out: captureOutput(),
      env: { REGCTL_REGISTRY_URL: 'http://127.0.0.1:9' },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STACK_NOT_RUNNING' });
    expect((await readdir(fx.root)).filter((f) => f.startsWith('never') || f.includes('.part-'))).toEqual([]);
  });

  it('progress lines give bytes, share, rate and time', () => {
    expect(progressLine(512 * 1024, 1024 * 1024, 0, 2000)).toBe('512 KiB of 1.00 MiB (50%), 256 KiB/s, 2s');
  });
});
