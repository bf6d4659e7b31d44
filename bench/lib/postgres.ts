import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './servers.js';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL cluster for the bench, from Debian's `postgresql` package (installed by
 * `test/setup/provision.sh`), set up as the tests set theirs up (test/helpers/postgres.ts): `initdb` into a
 * temporary directory as the `postgres` user (when run as root), `pg_ctl` on a free loopback port with its socket
 * in that directory, local socket connections trusted (setup) and TCP ones requiring a password (what the
 * registry uses). One database and one role with a generated password; `stop` ends the server and removes it all.
 */
export interface BenchPostgres {
  /** `postgres://USER@127.0.0.1:PORT/DB`, without the password. */
  url: string;
  password: string;
  stop(): Promise<void>;
}

/** Where Debian puts PostgreSQL's server programs (the highest installed major version). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed (Debian's postgresql); run: bash test/setup/provision.sh");
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'regctl-bench-pg-'));
  const data = join(dir, 'data');
  const as = async (cmd: string, args: string[]): Promise<string> => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    return (await run(file, argv, { cwd: dir, timeout: 120_000 })).stdout.trim();
  };
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dir, uid, gid);
  }
  await chmod(dir, 0o700);
  const port = await freePort();
  const stop = async (): Promise<void> => {
    await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await as('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8']);
    await as('pg_ctl', [
      ...['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60'],
      ...['-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start'],
    ]);
    const psql = (sql: string): Promise<string> =>
      as('psql', [
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-v',
        'ON_ERROR_STOP=1',
        '-Atc',
        sql,
      ]);
    const password = randomBytes(18).toString('base64url');
    await psql(`CREATE ROLE regctl_bench LOGIN PASSWORD '${password}'`);
    await psql('CREATE DATABASE regctl_bench OWNER regctl_bench');
    return { url: `postgres://regctl_bench@127.0.0.1:${port}/regctl_bench`, password, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
