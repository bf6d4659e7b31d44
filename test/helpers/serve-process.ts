/**
 * The built `regctl serve` as a child process, as the registry container runs it: `startServe` with the caller's
 * arguments (crash, soak and security tests drive the data directory and flags themselves), and
 * `startRegistryProcess` for tests that only need a registry with one user on a fresh data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import { preconditionMet } from './peers.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REGCTL_BIN = `${REPO_ROOT}bin/regctl.js`;

function distPresent(): boolean {
  return existsSync(`${REPO_ROOT}dist/cli/main.js`) && existsSync(`${REPO_ROOT}dist/cli/commands/fsck.js`);
}

/**
 * True when `npm run build` has produced the CLI the child-process tests run; for `skipIf`: a missing build
 * is skipped with the reason printed, and fails under CI=true.
 */
export function builtCliPresent(): boolean {
  return preconditionMet('the built CLI (dist/cli/main.js)', distPresent(), 'run npm run build');
}

export interface ServeProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote on stdout and stderr so far. */
  output(): string;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), then wait for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServeSpawnOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** false: the child sees only PATH (and `env`), so no REGCTL_* variable of the test run reaches it. */
  inheritEnv?: boolean;
}

/**
 * Runs `node bin/regctl.js serve --listen 127.0.0.1:0 ...args` as a child process and resolves once it prints
 * the address it listens on. Rejects with the process output when it exits or stays silent for `timeoutMs`.
 */
export async function startServe(args: string[], opts: ServeSpawnOptions = {}): Promise<ServeProcess> {
  if (!distPresent()) throw new Error('dist/ is missing: run npm run build first');
  const child = spawn(process.execPath, [REGCTL_BIN, 'serve', '--listen', '127.0.0.1:0', ...args], {
    cwd: REPO_ROOT,
    env: {
      ...(opts.inheritEnv === false ? { PATH: process.env.PATH ?? '/usr/bin:/bin' } : process.env),
      NO_COLOR: '1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`regctl serve did not start within ${opts.timeoutMs ?? 30_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 30_000);
    const onData = () => {
      const m = /registry listening on (http:\/\/[^\s,]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`regctl serve exited (code ${code}, signal ${signal}) before listening:\n${out}`));
    });
  });
  return {
    url,
    pid: child.pid as number,
    child,
    exited,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await exited).code;
    },
  };
}

/** A registry process with one user (`username`/`password`, bcrypt cost 5) on its own temporary directory. */
export interface RegistryProcess {
  url: string;
  /** host:port as clients name the registry. */
  host: string;
  dataDir: string;
  /** The directory of the htpasswd file, where the registry also reads `robots.yaml`. */
  authDir: string;
  username: string;
  password: string;
  pid: number;
  /** Everything the process wrote (JSON logs included). */
  output(): string;
  /** SIGTERM (SIGKILL after 10 s), then the temporary directory is removed (a `dataDir` passed in is kept). */
  stop(): Promise<void>;
  /** SIGKILL (a crash: nothing is flushed or closed), then the temporary directory is removed. */
  kill(): Promise<void>;
}

export interface RegistryProcessOptions {
  /** Serve this data directory (kept by stop()) instead of a fresh one. */
  dataDir?: string;
  /** Storage flags instead of `--data DIR` (e.g. `--storage s3://bucket --s3-endpoint URL --s3-path-style`). */
  storageArgs?: string[];
  /** Extra environment for the process (e.g. AWS credentials); nothing else from the test run's is inherited. */
  env?: NodeJS.ProcessEnv;
  args?: string[];
}

export async function startRegistryProcess(opts: RegistryProcessOptions = {}): Promise<RegistryProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-serve-it-'));
  const dataDir = opts.dataDir ?? join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const username = 'tester';
  const password = randomBytes(12).toString('hex');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, `${username}:${bcrypt.hashSync(password, 5)}\n`, { mode: 0o600 });
  let srv: ServeProcess;
  try {
    // With S3 storage the data directory still holds local state (the default metadata store): the temporary one,
    // never the working directory's ./data.
    const storage = opts.storageArgs
      ? [...opts.storageArgs, ...(opts.storageArgs.includes('--data') ? [] : ['--data', dataDir])]
      : ['--data', dataDir];
    srv = await startServe([...storage, '--htpasswd', htpasswd, '--log-level', 'warn', ...(opts.args ?? [])], {
      inheritEnv: false,
      env: opts.env,
      timeoutMs: 20_000,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: srv.url,
    host: new URL(srv.url).host,
    dataDir,
    authDir: dir,
    username,
    password,
    pid: srv.pid,
    output: () => srv.output(),
    stop: async () => {
      const t = setTimeout(() => srv.child.kill('SIGKILL'), 10_000);
      await srv.stop();
      clearTimeout(t);
      await rm(dir, { recursive: true, force: true });
    },
    kill: async () => {
      await srv.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
