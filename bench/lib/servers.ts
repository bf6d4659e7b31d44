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
/** distribution v3 (a Go peer, `test/setup/provision.sh`): the reference that stores in S3. */
export const REFERENCE_V3_BINARY = '/var/cache/regctl-test/bin/registry-v3';

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
  /** Ours only: storage arguments instead of `--data dataDir` (e.g. `--storage s3://…`). */
  storageArgs?: string[];
  /** Ours only: more arguments (e.g. `--metadata postgres://…`). */
  extraArgs?: string[];
  /**
   * Environment the process gets but the report never shows (S3 keys, a database password): secrets stay off the
   * command line and out of `command`.
   */
  secretEnv?: Record<string, string>;
  /** Ours only: `--no-auth` instead of `--htpasswd`; the clients then send no credentials. */
  noAuth?: boolean;
  /** How long to wait for the first healthy answer (default 30 s): a start on a large S3 bucket imports it first. */
  healthTimeoutMs?: number;
  /** The log file's name in `workDir` (default `ours.log`). */
  logName?: string;
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

/**
 * A distribution configuration around its `storage` driver lines and what follows `http.secret`: quiet logs,
 * delete on, the in-memory blob descriptor cache, upload purging off, a loopback address. Both references use it.
 */
function distributionConfig(storage: string[], port: number, tail: string[]): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    ...storage,
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
    ...tail,
    '',
  ].join('\n');
}

/** The reference registry's configuration: registry:2's defaults plus delete, htpasswd auth and quiet logs. */
export function referenceConfig(dataDir: string, htpasswdFile: string, port: number): string {
  return distributionConfig(['  filesystem:', `    rootdirectory: ${JSON.stringify(dataDir)}`], port, [
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    'auth:',
    '  htpasswd:',
    '    realm: regctl-bench',
    `    path: ${JSON.stringify(htpasswdFile)}`,
  ]);
}

async function waitHealthy(
  port: number,
  path: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  const client = new HttpClient('127.0.0.1', port, undefined, 1);
  const deadline = Date.now() + timeoutMs;
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
    throw new Error(`server on port ${port} not healthy after ${timeoutMs / 1000} s; see ${logFile}`);
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
  opts: { anonymous?: boolean; healthTimeoutMs?: number } = {},
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
    client: (credentials, maxSockets) =>
      new HttpClient('127.0.0.1', port, opts.anonymous ? undefined : credentials, maxSockets),
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
  return waitHealthy(port, healthPath, child, logFile, opts.healthTimeoutMs ?? 30_000).then(
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
export async function deployedProcess(
  repoRoot: string,
  onS3 = false,
): Promise<{ nodeFlags: string[]; env: Record<string, string> }> {
  const file = join(repoRoot, 'dist/registry/process-env.js');
  if (!existsSync(file)) return { nodeFlags: [], env: {} };
  const mod = (await import(pathToFileURL(file).href)) as {
    REGISTRY_PROCESS_ENV?: Record<string, string>;
    REGISTRY_NODE_FLAGS?: readonly string[];
    REGISTRY_S3_NODE_FLAGS?: readonly string[];
  };
  const flags = (onS3 ? mod.REGISTRY_S3_NODE_FLAGS : undefined) ?? mod.REGISTRY_NODE_FLAGS ?? [];
  return { nodeFlags: [...flags], env: { ...(mod.REGISTRY_PROCESS_ENV ?? {}) } };
}

/** Starts `regctl serve` from this checkout (bin/regctl.js, so `npm run build` must have run). */
export async function startOurs(repoRoot: string, settings: ServerSettings): Promise<RunningServer> {
  if (!settings.storageArgs) await mkdir(settings.dataDir, { recursive: true });
  const port = await freePort();
  const deployed = await deployedProcess(
    repoRoot,
    settings.storageArgs?.some((a) => a.startsWith('s3://')),
  );
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
    ...(settings.storageArgs ?? ['--data', settings.dataDir]),
    ...(settings.noAuth ? ['--no-auth'] : ['--htpasswd', settings.htpasswdFile]),
    '--log-level',
    'error',
    ...(settings.credentialCache === false ? ['--no-credential-cache'] : []),
    ...(settings.extraArgs ?? []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, ...deployed.env };
  for (const key of Object.keys(env)) if (key.startsWith('REGCTL_') || key.startsWith('AWS_')) delete env[key];
  Object.assign(env, settings.secretEnv);
  return launch(
    'ours',
    process.execPath,
    args,
    port,
    '/healthz',
    join(settings.workDir, settings.logName ?? 'ours.log'),
    env,
    deployed.env,
    {
      anonymous: settings.noAuth === true,
      ...(settings.healthTimeoutMs ? { healthTimeoutMs: settings.healthTimeoutMs } : {}),
    },
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

/** Where distribution v3 stores: a bucket on an S3-compatible endpoint, path style, under `rootdirectory`. */
export interface ReferenceS3 {
  endpoint: string;
  region: string;
  bucket: string;
  rootdirectory: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * distribution v3's configuration for the S3 phase: its S3 driver on `s3` (path style, redirects off, so blobs
 * flow through the registry as ours serves them), no auth, delete on, quiet logs. The keys are not in it: they go
 * in the environment (REGISTRY_STORAGE_S3_ACCESSKEY/SECRETKEY).
 */
export function referenceS3Config(s3: Omit<ReferenceS3, 'accessKeyId' | 'secretAccessKey'>, port: number): string {
  return distributionConfig(
    [
      '  s3:',
      `    region: ${JSON.stringify(s3.region)}`,
      `    regionendpoint: ${JSON.stringify(s3.endpoint)}`,
      '    forcepathstyle: true',
      `    secure: ${s3.endpoint.startsWith('https:')}`,
      `    bucket: ${JSON.stringify(s3.bucket)}`,
      `    rootdirectory: ${JSON.stringify(s3.rootdirectory)}`,
      '  redirect:',
      '    disable: true',
    ],
    port,
    [],
  );
}

/** Starts distribution v3 storing in S3 ({@link referenceS3Config}), without auth. */
export async function startReferenceS3(
  settings: Pick<ServerSettings, 'workDir' | 'healthTimeoutMs'>,
  s3: ReferenceS3,
): Promise<RunningServer> {
  const port = await freePort();
  const configFile = join(settings.workDir, `ref-s3-config-${port}.yml`);
  await writeFile(configFile, referenceS3Config(s3, port), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('REGISTRY_') || key.startsWith('AWS_')) delete env[key];
  env.OTEL_TRACES_EXPORTER = 'none';
  env.REGISTRY_STORAGE_S3_ACCESSKEY = s3.accessKeyId;
  env.REGISTRY_STORAGE_S3_SECRETKEY = s3.secretAccessKey;
  return launch(
    'ref',
    REFERENCE_V3_BINARY,
    ['serve', configFile],
    port,
    '/v2/',
    join(settings.workDir, 'ref-s3.log'),
    env,
    {},
    {
      anonymous: true,
      ...(settings.healthTimeoutMs ? { healthTimeoutMs: settings.healthTimeoutMs } : {}),
    },
  );
}
