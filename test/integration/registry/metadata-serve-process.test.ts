import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, startPostgres, writePasswordFile, type PostgresCluster } from '../../helpers/postgres.js';
import { builtCliPresent, REGCTL_BIN, REPO_ROOT, startServe, type ServeProcess } from '../../helpers/serve-process.js';
import { pushImage, type TestRegistry } from '../../unit/registry/helpers.js';

/** A TestRegistry over a child process's URL, enough for pushImage (no auth). */
function over(url: string): TestRegistry {
  return {
    url,
    fetch: (path, init = {}) => {
      const { body, auth: _auth, ...rest } = init;
      const payload = Buffer.isBuffer(body) ? new Uint8Array(body) : body;
      return fetch(url + path, { ...rest, body: payload, redirect: 'manual' });
    },
  } as TestRegistry;
}

/**
 * `regctl serve --metadata postgres://…` as the registry container runs it, two processes on one data directory
 * and one PostgreSQL: the password comes from the environment or a file and is seen neither on the command line
 * nor in the output; a replica killed with SIGKILL leaves the other serving what it wrote.
 */
describe.skipIf(!postgresAvailable() || !builtCliPresent())('regctl serve on PostgreSQL, as processes', () => {
  let pg: PostgresCluster;
  let dir: string;
  let db: Awaited<ReturnType<PostgresCluster['createDatabase']>>;
  const procs: ServeProcess[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
    db = await pg.createDatabase();
    dir = await mkdtemp(join(tmpdir(), 'regctl-meta-proc-'));
  });
  afterAll(async () => {
    for (const p of procs) await p.kill().catch(() => undefined);
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('two processes share what they write; the password is in neither command line nor output', async () => {
    const data = join(dir, 'data');
    const a = await startServe(['--no-auth', '--data', data, '--metadata', db.url, '--log-level', 'debug'], {
      env: { REGCTL_METADATA_PASSWORD: db.password },
    });
    procs.push(a);
    const file = await writePasswordFile(dir, db.password);
    const b = await startServe(['--no-auth', '--data', data, '--metadata', db.url, '--metadata-password-file', file], {
      env: { REGCTL_METADATA_PASSWORD: '' },
    });
    procs.push(b);
    const img = await pushImage(over(a.url), 'team/app', 'v1');
    const got = await fetch(`${b.url}/v2/team/app/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(got.headers.get('docker-content-digest')).toBe(img.digest);
    for (const p of [a, b]) {
      expect((await readFile(`/proc/${p.pid}/cmdline`, 'utf8')).split('\0').join(' ')).not.toContain(db.password);
      expect(p.output()).not.toContain(db.password);
    }
    await a.kill();
    await pushImage(over(b.url), 'team/app', 'v2');
    expect(await (await fetch(`${b.url}/v2/team/app/tags/list`)).json()).toEqual({
      name: 'team/app',
      tags: ['v1', 'v2'],
    });
    expect(await b.stop()).toBe(0);
  });

  it('a wrong password stops start-up with one line naming the cause, exit non-zero, password not shown', async () => {
    const child = spawn(
      process.execPath,
      [REGCTL_BIN, 'serve', '--no-auth', '--data', join(dir, 'data2'), '--listen', '127.0.0.1:0', '--metadata', db.url],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH, REGCTL_METADATA_PASSWORD: 'wrong-secret-value' } },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).not.toBe(0);
    expect(out.split('\n')[0]).toMatch(/metadata: cannot use postgres:\/\/.*: password authentication failed/);
    expect(out).not.toContain('wrong-secret-value');
  });
});
