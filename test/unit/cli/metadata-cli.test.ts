import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { createOutput } from '../../../src/cli/output.js';
import { openSqliteStore } from '../../../src/registry/metadata/sqlite-store.js';
import { freePort } from '../../helpers/peers.js';

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
  const code = await main(['node', 'regctl', ...argv], { out: createOutput({ stdout: sink, stderr: sink }), env });
  return { code, out: chunks.join('') };
}

describe('regctl serve --metadata: what users type', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-meta-cli-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const serve = (...extra: string[]) => [
    'serve',
    '--no-auth',
    '--data',
    join(dir, 'data'),
    '--listen',
    '127.0.0.1:0',
    ...extra,
  ];

  it('refuses a URL carrying a password in one line, without repeating it, before touching the data directory', async () => {
    const { code, out } = await run(serve('--metadata', 'postgres://regctl:hunter2@db.internal/reg'));
    expect(code).not.toBe(0);
    expect(out).toMatch(/carries a password; give it in REGCTL_METADATA_PASSWORD or --metadata-password-file/);
    expect(out).not.toContain('hunter2');
    expect(out.trim().split('\n')[0]).toMatch(/metadata: postgres:\/\/regctl:\*\*\*@db\.internal\/reg/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('says in one line that the database cannot be reached, and exits non-zero', async () => {
    const port = await freePort();
    const { code, out } = await run(serve('--metadata', `postgres://regctl@127.0.0.1:${port}/reg`), {
      REGCTL_METADATA_PASSWORD: 'pw-from-env',
    });
    expect(code).not.toBe(0);
    const first = out.trim().split('\n')[0] ?? '';
    expect(first).toMatch(
      new RegExp(`metadata: cannot use postgres://regctl@127\\.0\\.0\\.1:${port}/reg: .*ECONNREFUSED`),
    );
    expect(out).not.toContain('pw-from-env');
  });

  it('names an unreadable password file', async () => {
    const { code, out } = await run(
      serve('--metadata', 'postgres://regctl@127.0.0.1/reg', '--metadata-password-file', join(dir, 'missing')),
    );
    expect(code).not.toBe(0);
    expect(out).toMatch(/metadata-password-file: cannot read .*missing \(ENOENT\)/);
  });
});

describe('regctl fsck --rebuild-metadata', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-meta-fsck-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('rebuilds the SQLite store under the data directory from storage', async () => {
    const data = join(dir, 'data');
    const digest = `sha256:${'e'.repeat(64)}`;
    const repo = join(data, 'docker/registry/v2/repositories/team/app/_manifests');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(repo, 'tags/v1/current'), { recursive: true });
    await writeFile(join(repo, 'tags/v1/current/link'), digest);
    await mkdir(join(repo, `revisions/sha256/${'e'.repeat(64)}`), { recursive: true });
    await writeFile(join(repo, `revisions/sha256/${'e'.repeat(64)}/link`), digest);
    // A stale store: it names a repository storage does not hold.
    const stale = await openSqliteStore(join(data, 'regctl/metadata.sqlite'));
    await stale.setTag('gone/repo', 'v1', digest);
    await stale.close();

    const { code, out } = await run(['fsck', '--data', data, '--rebuild-metadata']);
    expect(code).toBe(0);
    expect(out).toMatch(/metadata \(sqlite\) rebuilt from storage, 1 repositories/);
    const store = await openSqliteStore(join(data, 'regctl/metadata.sqlite'));
    expect(await store.catalog()).toEqual(['team/app']);
    expect(await store.tagTarget('team/app', 'v1')).toBe(digest);
    expect(await store.getMeta('import_state')).toBe('done');
    await store.close();
  });

  it('refuses memory, which has nothing to rebuild', async () => {
    await (await import('node:fs/promises')).mkdir(join(dir, 'data'));
    const { code, out } = await run([
      'fsck',
      '--data',
      join(dir, 'data'),
      '--rebuild-metadata',
      '--metadata',
      'memory',
    ]);
    expect(code).not.toBe(0);
    expect(out).toMatch(/memory is rebuilt at every start/);
  });
});
