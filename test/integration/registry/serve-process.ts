/** Runs the built `regctl serve` as its own process on a free loopback port, as the registry container does. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(REPO_ROOT, 'bin/regctl.js');

export interface ServeProcess {
  url: string;
  /** host:port as clients name the registry. */
  host: string;
  dataDir: string;
  username: string;
  password: string;
  /** Everything the process wrote (JSON logs included). */
  output(): string;
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Serve this data directory (kept by stop()) instead of a fresh one. */
  dataDir?: string;
  args?: string[];
}

export async function startServe(opts: ServeOptions = {}): Promise<ServeProcess> {
  if (!existsSync(join(REPO_ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  const dir = await mkdtemp(join(tmpdir(), 'regctl-serve-it-'));
  const dataDir = opts.dataDir ?? join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const username = 'tester';
  const password = randomBytes(12).toString('hex');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, `${username}:${bcrypt.hashSync(password, 5)}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--htpasswd', htpasswd, '--log-level', 'warn', ...(opts.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1' } },
  );
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`regctl serve did not start within 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /registry listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`regctl serve exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    host: new URL(url).host,
    dataDir,
    username,
    password,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string; stdoutOnly?: boolean } = {}): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 240_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(opts.stdoutOnly ? stdout : `${stdout}${stderr}`);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
