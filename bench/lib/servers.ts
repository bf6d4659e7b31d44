import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpClient } from './http.js';
import { resetPeak, sampleProcess } from './proc.js';
import type { ProcSample } from './proc.js';

export type RegistryName = 'ours' | 'ref';

export const REFERENCE_BINARY = '/usr/bin/docker-registry';

export interface ServerSettings {
  /** Where the server's storage lives (created if missing). */
  dataDir: string;
  htpasswdFile: string;
  /** Where logs (and, for ours with `profileDir`, CPU profiles) go. */
  workDir: string;
  /** Ours only: run node with `--cpu-prof` and write the profile here on exit. */
  profileDir?: string;
  /** Ours only: node options instead of the deployed ones ({@link deployedProcess}), for before/after runs. */
  nodeFlags?: string[];
  /** Ours only: false starts it with `--no-credential-cache` (bcrypt on every request, as the reference does). */
  credentialCache?: boolean;
  /** Ours only: its `--metadata` setting (default: the embedded SQLite store under `dataDir`). */
  metadata?: string;
  /** Ours only: `--metadata-password-file` (a 0600 file), for a PostgreSQL `metadata`. */
  metadataPasswordFile?: string;
}

/** A registry server running as its own process on a loopback port. */
export interface RunningServer {
  readonly name: RegistryName;
  readonly port: number;
  readonly pid: number;
  readonly command: string;
  client(credentials: { user: string; password: string }, maxSockets?: number): HttpClient;
  /** Resets the peak-RSS counter so the next {@link sample} reports a phase's own peak. */
  resetPeak(): Promise<boolean>;
  sample(): Promise<ProcSample>;
  /**
   * The process's peak resident set since it started, bytes: the highest VmHWM read just before every
   * {@link resetPeak} and now. VmHWM only grows between resets, so that maximum is the peak a counter never
   * reset would show, start-up included. After {@link stop}, the value read just before the process was stopped.
   */
  lifetimePeakBytes(): Promise<number>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The reference registry's configuration: registry:2's defaults plus delete, htpasswd auth and quiet logs. */
export function referenceConfig(dataDir: string, htpasswdFile: string, port: number): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    '  delete:',
    '    enabled: true',
    '  cache:',
    '    blobdescriptor: inmemory',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: regctl-bench-not-a-secret',
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'auth:',
    '  htpasswd:',
    '    realm: regctl-bench',
    `    path: ${JSON.stringify(htpasswdFile)}`,
    '',
  ].join('\n');
}

async function waitHealthy(port: number, path: string, child: ChildProcess, logFile: string): Promise<void> {
  const client = new HttpClient('127.0.0.1', port, undefined, 1);
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode}; see ${logFile}`);
      try {
        const res = await client.request('GET', path);
        if (res.status === 200 || res.status === 401) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`server on port ${port} not healthy after 30 s; see ${logFile}`);
  } finally {
    client.close();
  }
}

function launch(
  name: RegistryName,
  executable: string,
  args: string[],
  port: number,
  healthPath: string,
  logFile: string,
  env: NodeJS.ProcessEnv,
  shownEnv: Record<string, string> = {},
): Promise<RunningServer> {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${executable}`);
  let peakBefore = 0;
  let stopped = false;
  const lifetimePeakBytes = async (): Promise<number> => {
    if (stopped) return peakBefore;
    try {
      peakBefore = Math.max(peakBefore, (await sampleProcess(pid)).peakRssBytes);
    } catch {
      // the process is gone: what was read before stands
    }
    return peakBefore;
  };
  const server: RunningServer = {
    name,
    port,
    pid,
    command: [...Object.entries(shownEnv).map(([k, v]) => `${k}=${v}`), executable, ...args].join(' '),
    client: (credentials, maxSockets) => new HttpClient('127.0.0.1', port, credentials, maxSockets),
    async resetPeak() {
      await lifetimePeakBytes();
      return resetPeak(pid);
    },
    sample: () => sampleProcess(pid),
    lifetimePeakBytes,
    async stop() {
      await lifetimePeakBytes();
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!killed) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      log.end();
    },
  };
  return waitHealthy(port, healthPath, child, logFile).then(
    () => server,
    async (err: unknown) => {
      await server.stop();
      throw err;
    },
  );
}

/**
 * The node options and environment the stack gives the registry container (`dist/registry/process-env.js` of
 * the checkout under test), so the bench measures the server as deployed; empty for a checkout from before
 * that module (or a part of it) existed.
 */
export async function deployedProcess(repoRoot: string): Promise<{ nodeFlags: string[]; env: Record<string, string> }> {
  const file = join(repoRoot, 'dist/registry/process-env.js');
  if (!existsSync(file)) return { nodeFlags: [], env: {} };
  const mod = (await import(pathToFileURL(file).href)) as {
    REGISTRY_PROCESS_ENV?: Record<string, string>;
    REGISTRY_NODE_FLAGS?: readonly string[];
  };
  return { nodeFlags: [...(mod.REGISTRY_NODE_FLAGS ?? [])], env: { ...(mod.REGISTRY_PROCESS_ENV ?? {}) } };
}

/** Starts `regctl serve` from this checkout (bin/regctl.js, so `npm run build` must have run). */
export async function startOurs(repoRoot: string, settings: ServerSettings): Promise<RunningServer> {
  await mkdir(settings.dataDir, { recursive: true });
  const port = await freePort();
  const deployed = await deployedProcess(repoRoot);
  const nodeFlags = [
    ...(settings.nodeFlags ?? deployed.nodeFlags),
    ...(settings.profileDir ? ['--cpu-prof', '--cpu-prof-dir', settings.profileDir] : []),
  ];
  const args = [
    ...nodeFlags,
    join(repoRoot, 'bin/regctl.js'),
    'serve',
    '--listen',
    `127.0.0.1:${port}`,
    '--data',
    settings.dataDir,
    '--htpasswd',
    settings.htpasswdFile,
    '--log-level',
    'error',
    ...(settings.credentialCache === false ? ['--no-credential-cache'] : []),
    ...(settings.metadata ? ['--metadata', settings.metadata] : []),
    ...(settings.metadataPasswordFile ? ['--metadata-password-file', settings.metadataPasswordFile] : []),
  ];
  const env = { ...process.env, ...deployed.env };
  for (const key of Object.keys(env)) if (key.startsWith('REGCTL_')) delete env[key];
  return launch(
    'ours',
    process.execPath,
    args,
    port,
    '/healthz',
    join(settings.workDir, 'ours.log'),
    env,
    deployed.env,
  );
}

/** Starts Debian's docker-registry (distribution 2.8.2) with {@link referenceConfig}. */
export async function startReference(settings: ServerSettings): Promise<RunningServer> {
  await mkdir(settings.dataDir, { recursive: true });
  const port = await freePort();
  const configFile = join(settings.workDir, `ref-config-${port}.yml`);
  await writeFile(configFile, referenceConfig(settings.dataDir, settings.htpasswdFile, port));
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('REGISTRY_')) delete env[key];
  return launch('ref', REFERENCE_BINARY, ['serve', configFile], port, '/v2/', join(settings.workDir, 'ref.log'), env);
}
