import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './servers.js';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL cluster for tests, from Debian's `postgresql` package (installed by
 * `test/setup/provision.sh`): `initdb` into a temporary directory as the `postgres` user, `pg_ctl` on a free
 * loopback port with its socket in that directory, local socket connections trusted (for setup) and TCP ones
 * requiring a password (what the registry uses). `createDatabase` makes a database and a role with a generated
 * password; `stop` ends the server and removes everything. The bench's S3 phase uses it for the metadata its
 * replicas share; the tests reach it through test/helpers/postgres.ts.
 */
export interface PostgresCluster {
  host: string;
  port: number;
  /** A fresh database owned by a fresh role; the URL carries no password. */
  createDatabase(opts?: {
    icuLocale?: string;
  }): Promise<{ url: string; user: string; database: string; password: string }>;
  /** The server's main process (its backends are its children), for CPU figures. */
  pid(): Promise<number>;
  /** The server's log so far (what `log_statement` and errors write). */
  serverLog(): Promise<string>;
  /** Runs SQL as the superuser (over the socket). */
  psql(sql: string, database?: string): Promise<string>;
  stop(): Promise<void>;
  /** Stops and starts the server again (same data, same port). */
  restart(): Promise<void>;
  /** Stops the server, keeping its data, until `start`. */
  halt(): Promise<void>;
  start(): Promise<void>;
}

/** Where Debian puts PostgreSQL's server programs (the highest installed major version). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed (Debian's postgresql); run: bash test/setup/provision.sh");
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'regctl-pg-'));
  const data = join(dir, 'data');
  const as = async (cmd: string, args: string[]): Promise<string> => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    return (await run(file, argv, { cwd: dir, timeout: 120_000 })).stdout.trim();
  };
  if (asRoot) {
    const { uid, gid } = await postgresIds();
    await chown(dir, uid, gid);
  }
  await chmod(dir, 0o700);
  const port = await freePort();
  const host = '127.0.0.1';
  try {
    await as('initdb', ['-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8']);
    const start = (): Promise<string> =>
      as('pg_ctl', [
        '-D',
        data,
        '-l',
        join(dir, 'log'),
        '-w',
        '-t',
        '60',
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=${host}`,
        'start',
      ]);
    await start();
    const psql = (sql: string, database = 'postgres'): Promise<string> =>
      as('psql', [
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        database,
        '-v',
        'ON_ERROR_STOP=1',
        '-Atc',
        sql,
      ]);
    let n = 0;
    return {
      host,
      port,
      psql,
      async serverLog() {
        return readFile(join(dir, 'log'), 'utf8');
      },
      async pid() {
        return Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
      },
      async createDatabase(opts: { icuLocale?: string } = {}) {
        const suffix = `${process.pid}_${++n}_${randomBytes(3).toString('hex')}`;
        const user = `regctl_${suffix}`;
        const database = `regctl_${suffix}`;
        const password = randomBytes(18).toString('base64url');
        await psql(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
        const icu = opts.icuLocale
          ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${opts.icuLocale}' LOCALE 'C.UTF-8'`
          : '';
        await psql(`CREATE DATABASE ${database} OWNER ${user}${icu}`);
        return { url: `postgres://${user}@${host}:${port}/${database}`, user, database, password };
      },
      async restart() {
        await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
        await start();
      },
      async halt() {
        await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      },
      async start() {
        await start();
      },
      async stop() {
        await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

/** Writes a password file (0600) for the registry's --metadata-password-file. */
export async function writePasswordFile(dir: string, password: string): Promise<string> {
  const path = join(dir, 'metadata-password');
  await writeFile(path, `${password}\n`, { mode: 0o600 });
  return path;
}
