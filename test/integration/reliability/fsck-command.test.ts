import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { RegistryClient, imageManifest, sha256 } from './helpers/client.js';
import { REGCTL_BIN, REPO_ROOT, builtCliPresent } from '../../helpers/serve-process.js';

const run = promisify(execFile);
const V2 = 'docker/registry/v2';

async function fsck(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [REGCTL_BIN, 'fsck', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const blobPath = (digest: string) => `${V2}/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;

describe.skipIf(!builtCliPresent())('regctl fsck (needs npm run build)', () => {
  let dir: string;
  let data: string;
  let server: RegistryServer;
  const layer = Buffer.from('layer content for fsck');
  const config = Buffer.from('{"os":"linux"}');
  const kept = Buffer.from('a second image that stays intact');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-fsck-'));
    data = join(dir, 'data');
    server = createRegistryServer({ port: 0, dataDir: data, noAuth: true, logLevel: 'silent' });
    const { url } = await server.listen();
    const c = new RegistryClient(url);
    await c.pushBlobMonolithic('fsck/app', layer);
    await c.pushBlobMonolithic('fsck/app', config);
    await c.putManifest('fsck/app', 'v1', imageManifest(config, [layer]));
    await c.pushBlobMonolithic('fsck/other', kept);
    await c.pushBlobMonolithic('fsck/other', config);
    await c.putManifest('fsck/other', 'v1', imageManifest(config, [kept]));
    await server.close();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a clean directory and exits 0', async () => {
    const r = await fsck(['--data', data]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\d+ blobs checked, no problems/);
  });

  it('finds a corrupt blob, a dangling tag and a temp file, exits 10, and --repair fixes them', async () => {
    const path = join(data, blobPath(sha256(layer)));
    await appendFile(path, 'bit rot');
    const danglingTag = join(data, `${V2}/repositories/fsck/app/_manifests/tags/ghost/current/link`);
    await mkdir(join(danglingTag, '..'), { recursive: true });
    await writeFile(danglingTag, `sha256:${'ab'.repeat(32)}`);
    await writeFile(join(data, `${V2}/repositories/fsck/app/_manifests/.link.tmp-deadbeef0000`), 'partial');
    // fsck leaves young temp files alone (they may belong to a write in flight): make this one an hour old.
    const old = new Date(Date.now() - 3600_000);
    await utimes(join(data, `${V2}/repositories/fsck/app/_manifests/.link.tmp-deadbeef0000`), old, old);

    const check = await fsck(['--data', data, '--json']);
    expect(check.code).toBe(10);
    const report = JSON.parse(check.stdout) as { problems: { kind: string; path: string }[]; remaining: number };
    expect(report.problems.map((p) => p.kind).sort()).toEqual([
      'blob-corrupt',
      'link-dangling',
      'tag-dangling',
      'temp-file',
    ]);
    expect(report.remaining).toBe(4);
    expect(check.stderr).toContain('4 problem(s) found');
    expect(check.stderr).toContain('--repair');

    const human = await fsck(['--data', data]);
    expect(human.code).toBe(10);
    expect(human.stderr).toContain('blob-corrupt');

    const repair = await fsck(['--data', data, '--repair']);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toContain('repaired blob-corrupt');
    const again = await fsck(['--data', data]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no problems');
    // The intact image was not touched.
    expect(sha256(await readFile(join(data, blobPath(sha256(kept)))))).toBe(sha256(kept));
  });

  it('a missing data directory is a one-line error with a hint and exit 12', async () => {
    const r = await fsck(['--data', join(dir, 'nope')]);
    expect(r.code).toBe(12);
    expect(r.stderr).toContain('does not exist');
    expect(r.stderr).toContain('hint:');
  });
});
