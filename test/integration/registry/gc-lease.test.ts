/**
 * One garbage collection in the whole cluster: two `regctl serve` processes on one data directory and one
 * PostgreSQL metadata store (a throwaway cluster) share the store's `gc` lease. A GC asked for on either while one
 * runs anywhere is refused with 409 naming the running one; a holder killed with SIGKILL frees the lease. The job
 * is published in the store: GET /admin/v1/gc on the other process shows it, and shows it failed once its runner
 * was killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { pathFor, type PathSpec } from '../../../src/registry/storage/paths.js';
import { basicAuth } from '../../helpers/auth.js';
import { postgresAvailable, startPostgres, writePasswordFile, type PostgresCluster } from '../../helpers/postgres.js';
import { builtCliPresent, REPO_ROOT, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';

const ready = postgresAvailable() && builtCliPresent();
/** Enough repositories that a GC's mark takes a good part of a second, so a second request lands while it runs. */
const REPOSITORIES = 1500;

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes REPOSITORIES repositories of one tagged manifest each straight into distribution's layout. */
async function seed(dataDir: string): Promise<void> {
  const put = async (spec: PathSpec, body: string | Buffer) => {
    const path = join(dataDir, pathFor(spec));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, body);
  };
  for (let i = 0; i < REPOSITORIES; i++) {
    const name = `lease/r${i}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: i }));
    const cfg = parseDigest(sha256(config));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.value, size: config.length },
        layers: [],
      }),
    );
    const m = parseDigest(sha256(manifest));
    await put({ kind: 'blobData', digest: cfg }, config);
    await put({ kind: 'blobData', digest: m }, manifest);
    await put({ kind: 'layerLink', name, digest: cfg }, cfg.value);
    await put({ kind: 'revisionLink', name, digest: m }, m.value);
    await put({ kind: 'tagIndexLink', name, tag: 'v1', digest: m }, m.value);
    await put({ kind: 'tagCurrentLink', name, tag: 'v1' }, m.value);
  }
}

/** A process of its own holding the `gc` lease on the store, as a replica running a GC would; resolves once held. */
async function leaseHolder(
  url: string,
  password: string,
  holder = 'test holder pid ',
  lease = 'gc',
): Promise<ChildProcess> {
  const script = `
    const { openPostgresStore } = await import(${JSON.stringify(`${REPO_ROOT}dist/registry/metadata/postgres-store.js`)});
    const store = await openPostgresStore({ url: process.env.PG_URL, password: process.env.PG_PASSWORD });
    const got = await store.tryLease(process.env.LEASE, process.env.HOLDER + process.pid);
    console.log('lease' in got ? 'held' : 'refused ' + got.heldBy);
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH, PG_URL: url, PG_PASSWORD: password, HOLDER: holder, LEASE: lease },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString('utf8');
      if (out.includes('held')) resolve();
      else if (out.includes('refused')) reject(new Error(out));
    });
    child.once('exit', () => reject(new Error(`lease holder exited: ${out}`)));
  });
  return child;
}

describe.skipIf(!ready)('the GC lease across two registry processes on one PostgreSQL', () => {
  let pg: PostgresCluster;
  let dir: string;
  let a: RegistryProcess;
  let b: RegistryProcess;
  let db: { url: string; password: string };

  beforeAll(async () => {
    pg = await startPostgres();
    db = await pg.createDatabase();
    dir = await mkdtemp(join(tmpdir(), 'regctl-gc-lease-'));
    const passwordFile = await writePasswordFile(dir, db.password);
    const dataDir = join(dir, 'data');
    await seed(dataDir);
    const args = ['--metadata', db.url, '--metadata-password-file', passwordFile];
    a = await startRegistryProcess({ dataDir, args });
    b = await startRegistryProcess({ dataDir, args });
  }, 120_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await pg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const gc = (reg: RegistryProcess, body: Record<string, unknown> = {}) =>
    fetch(`${reg.url}/admin/v1/gc`, {
      method: 'POST',
      headers: { authorization: basicAuth(reg.username, reg.password), 'content-type': 'application/json' },
      body: JSON.stringify({ graceSeconds: 3600, ...body }),
    });
  const job = async (reg: RegistryProcess) =>
    (await (
      await fetch(`${reg.url}/admin/v1/gc`, { headers: { authorization: basicAuth(reg.username, reg.password) } })
    ).json()) as { state: string; id?: number; report?: { kept: unknown[] } };
  const refusal = async (res: Response) => {
    expect(res.status).toBe(409);
    const body = (await res.json()) as { errors: { code: string; detail: { runningGc?: string } }[] };
    expect(body.errors[0]?.code).toBe('GC_RUNNING');
    return body.errors[0]?.detail.runningGc;
  };

  it('a GC running on one replica refuses a GC on the other with 409 naming it, which shows its job; after it, the other runs', async () => {
    const started = await gc(a, { wait: false });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: number };
    const refused = await gc(b, { wait: false });
    const running = await refusal(refused);
    // The 409 came from b and names a's job (the GC it refused really was running elsewhere).
    expect(running).toMatch(/^job \d+ on .+ \(pid \d+\), started /);
    expect((await job(a)).state).toBe('running');
    // The other process shows the same job, as a poll through a load balancer would find it.
    expect(await job(b)).toMatchObject({ id, state: 'running' });
    let state = await job(b);
    for (let i = 0; i < 600 && state.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await job(b);
    }
    expect(state).toMatchObject({ id, state: 'done' });
    expect(state.report?.kept.length).toBe(2 * REPOSITORIES);
    const after = await gc(b, { dryRun: true });
    expect(after.status).toBe(200);
  }, 120_000);

  it('a holder that is killed frees the lease; while it lives both replicas refuse and name it', async () => {
    const holder = await leaseHolder(db.url, db.password);
    try {
      expect(await refusal(await gc(a, { dryRun: true }))).toBe(`test holder pid ${holder.pid}`);
      expect(await refusal(await gc(b))).toBe(`test holder pid ${holder.pid}`);
    } finally {
      const exited = new Promise((r) => holder.once('exit', r));
      holder.kill('SIGKILL');
      await exited;
    }
    // PostgreSQL ends the dead holder's session (and its lock) once it sees the connection closed.
    let res = await gc(b, { dryRun: true });
    for (let i = 0; i < 50 && res.status === 409; i++) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 100));
      res = await gc(b, { dryRun: true });
    }
    expect(res.status).toBe(200);
  }, 60_000);

  it('a backup is refused while a GC sweeps on the other replica, and a sweep while a backup anywhere runs', async () => {
    // A GC that may sweep (nothing is old enough to go: the grace is an hour).
    let started = await gc(a, { wait: false });
    for (let i = 0; i < 50 && started.status === 409; i++) {
      await started.arrayBuffer();
      await new Promise((r) => setTimeout(r, 100));
      started = await gc(a, { wait: false });
    }
    expect(started.status).toBe(202);
    const backup = await fetch(`${b.url}/admin/v1/backup`, {
      headers: { authorization: basicAuth(b.username, b.password) },
    });
    expect(backup.status).toBe(429);
    const refused = (await backup.json()) as { errors: { detail: { reason: string; runningGc?: string } }[] };
    expect(refused.errors[0]?.detail.reason).toBe('a garbage collection is running; back up after it');
    expect(refused.errors[0]?.detail.runningGc).toMatch(/^gc sweep: job \d+ on /);
    let state = await job(b);
    for (let i = 0; i < 600 && state.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await job(b);
    }
    // A backup holds the same lease (a process standing in for one on another replica): a sweep is refused with
    // 429, a dry run is not.
    const holder = await leaseHolder(db.url, db.password, 'backup on test-host (pid ', 'maintenance');
    try {
      expect((await gc(b, { dryRun: true })).status).toBe(200);
      // The dry run's `gc` lease is let go just after its answer.
      let res = await gc(b);
      for (let i = 0; i < 50 && res.status === 409; i++) {
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, 100));
        res = await gc(b);
      }
      expect(res.status).toBe(429);
      const body = (await res.json()) as { errors: { code: string; detail: { reason: string } }[] };
      expect(body.errors[0]).toMatchObject({
        code: 'TOOMANYREQUESTS',
        detail: { reason: 'a backup is running; run the garbage collection after it' },
      });
    } finally {
      const exited = new Promise((r) => holder.once('exit', r));
      holder.kill('SIGKILL');
      await exited;
    }
  }, 120_000);

  // Last: `a` does not come back.
  it('a job whose process was killed shows as failed on the other, saying so', async () => {
    // The lease of the GC before is let go just after its answer.
    let started = await gc(a, { wait: false, dryRun: true });
    for (let i = 0; i < 50 && started.status === 409; i++) {
      await started.arrayBuffer();
      await new Promise((r) => setTimeout(r, 100));
      started = await gc(a, { wait: false, dryRun: true });
    }
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: number };
    await a.kill();
    // PostgreSQL ends the dead process's session, and with it the lease, once it sees the connection closed.
    let state = await job(b);
    for (let i = 0; i < 100 && state.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await job(b);
    }
    expect(state).toMatchObject({ id, state: 'failed', error: 'the replica running it stopped before it finished' });
  }, 60_000);
});
