/**
 * Shared by the end-to-end tests: run the built CLI as a user would, the docker CLI with a private
 * config directory, /etc/hosts lines that are removed afterwards, and a stack directory made by `regctl init`.
 */
import { builtCliPresent } from '../helpers/serve-process.js';
import { execa } from 'execa';
import { afterAll } from 'vitest';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { collectContextFiles } from '../../src/docker/build-context.js';
import { BASE_IMAGE, TRAEFIK_IMAGE, dockerAvailable, freePort, imageAvailable } from '../helpers/peers.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let snapshot: Promise<string> | undefined;

/**
 * A private copy of the built package (what `npm install` would put on a machine: bin/, dist/, templates/,
 * production node_modules/), made once per test file. The tests run the CLI from it, so a rebuild of the
 * working tree during a run changes neither the CLI under test nor the image it builds.
 */
export function packageSnapshot(): Promise<string> {
  snapshot ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regctl-e2e-pkg-'));
    const ctx = await collectContextFiles(ROOT);
    for (const rel of ctx.files) {
      const from = join(ROOT, rel);
      const to = join(dir, rel);
      await mkdir(dirname(to), { recursive: true });
      if ((await lstat(from)).isSymbolicLink()) await symlink(await readlink(from), to);
      else await copyFile(from, to);
    }
    return dir;
  })();
  return snapshot;
}

export async function removePackageSnapshot(): Promise<void> {
  if (!snapshot) return;
  const dir = await snapshot;
  snapshot = undefined;
  await rm(dir, { recursive: true, force: true });
}

// Each test file loads this module afresh: its copy goes when the file's tests are done.
afterAll(removePackageSnapshot);
export const HOST = 'example.test';
export const REGISTRY_HOST = `registry.${HOST}`;
export const UI_HOST = `registry-ui.${HOST}`;
/** The Node base image the stack's image is built on (REGCTL_E2E_BASE_IMAGE overrides, for development). */
export const E2E_BASE_IMAGE = process.env.REGCTL_E2E_BASE_IMAGE ?? BASE_IMAGE;
export const E2E_TRAEFIK_IMAGE = process.env.REGCTL_E2E_TRAEFIK_IMAGE ?? TRAEFIK_IMAGE;

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved. */
  all: string;
}

async function run(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number },
): Promise<Run> {
  const res = await execa(file, args, {
    reject: false,
    all: true,
    env: opts.env ?? {},
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    timeout: opts.timeoutMs ?? 600_000,
  });
  return { exitCode: res.exitCode ?? -1, stdout: String(res.stdout), stderr: String(res.stderr), all: String(res.all) };
}

export { builtCliPresent };

/** What every stack test needs: an engine, the local Traefik and base images, and the built CLI (under CI, missing ones throw). */
export function stackTestsReady(): boolean {
  return dockerAvailable() && imageAvailable(E2E_TRAEFIK_IMAGE) && imageAvailable(E2E_BASE_IMAGE) && builtCliPresent();
}

/** Runs `node bin/regctl.js ...args`; never throws on a non-zero exit. */
export async function regctl(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<Run> {
  const pkg = await packageSnapshot();
  return run('node', [join(pkg, 'bin/regctl.js'), ...args], { ...opts, env: { NO_COLOR: '1', ...opts.env } });
}

/** The docker CLI with its own DOCKER_CONFIG, so logins stay out of the machine's ~/.docker. */
export function dockerCli(configDir: string) {
  return (args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> =>
    run('docker', args, { ...opts, env: { DOCKER_CONFIG: configDir, DOCKER_BUILDKIT: '0', ...opts.env } });
}

const HOSTS = '/etc/hosts';

/** Adds `<address> names…` (127.0.0.1 unless given) to /etc/hosts; the returned function removes exactly that line. */
export async function addHostsLine(
  names: string[],
  marker: string,
  address = '127.0.0.1',
): Promise<() => Promise<void>> {
  const line = `${address} ${names.join(' ')} # ${marker}`;
  const before = await readFile(HOSTS, 'utf8');
  if (!before.split('\n').includes(line)) {
    await writeFile(HOSTS, `${before.endsWith('\n') || before === '' ? before : `${before}\n`}${line}\n`);
  }
  return async () => {
    const now = await readFile(HOSTS, 'utf8');
    await writeFile(
      HOSTS,
      now
        .split('\n')
        .filter((l) => l !== line)
        .join('\n'),
    );
  };
}

export interface E2eStack {
  dir: string;
  /** Compose project name (`--name`, default regctl): prefixes containers, network and volumes. */
  project: string;
  ports: { http: number; https: number; registry: number };
  password: string;
  cleanup(): Promise<void>;
}

/** A port free on all addresses (what Docker binds a published port to). */
async function freeHostPort(): Promise<number> {
  return freePort('0.0.0.0');
}

/**
 * `regctl init --yes` in a fresh directory, on free ports, with the local Traefik and base images.
 * `registryImage` gives the stack its own tag for the image regctl builds (set in regctl.yaml, then
 * re-rendered with `init --force`), so that tests running side by side never rebuild each other's image.
 */
export async function initStack(extra: string[] = [], opts: { registryImage?: string } = {}): Promise<E2eStack> {
  const root = await mkdtemp(join(tmpdir(), 'regctl-e2e-'));
  const dir = join(root, 'stack');
  const ports = { http: await freeHostPort(), https: await freeHostPort(), registry: await freeHostPort() };
  const res = await regctl([
    'init',
    '--yes',
    '--dir',
    dir,
    '--host',
    HOST,
    '--traefik-image',
    E2E_TRAEFIK_IMAGE,
    '--base-image',
    E2E_BASE_IMAGE,
    '--http-port',
    String(ports.http),
    '--https-port',
    String(ports.https),
    '--registry-port',
    String(ports.registry),
    ...extra,
  ]);
  if (res.exitCode !== 0) throw new Error(`regctl init failed (${res.exitCode}):\n${res.all}`);
  if (opts.registryImage) {
    const file = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(file, 'utf8'));
    doc.setIn(['images', 'registry'], opts.registryImage);
    await writeFile(file, doc.toString());
    const again = await regctl(['init', '--yes', '--force', '--dir', dir]);
    if (again.exitCode !== 0) throw new Error(`regctl init --force failed (${again.exitCode}):\n${again.all}`);
  }
  const env = await readFile(join(dir, '.env'), 'utf8');
  const password = /^REGISTRY_PASSWORD=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '');
  if (!password) throw new Error('.env has no REGISTRY_PASSWORD');
  const nameAt = extra.indexOf('--name');
  const project = nameAt >= 0 ? (extra[nameAt + 1] ?? 'regctl') : 'regctl';
  return { dir, project, ports, password, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Containers, networks and volumes of a compose project, by label. */
export async function projectResources(
  project: string,
): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const list = async (args: string[]) =>
    (await execa('docker', args, { reject: false })).stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)
      .sort();
  const filter = `label=com.docker.compose.project=${project}`;
  return {
    containers: await list(['ps', '-a', '--filter', filter, '--format', '{{.Names}}']),
    networks: await list(['network', 'ls', '--filter', filter, '--format', '{{.Name}}']),
    volumes: await list(['volume', 'ls', '--filter', filter, '--format', '{{.Name}}']),
  };
}

/** Removes whatever a failed test left of a project (containers, network, volumes). */
export async function forceRemoveProject(project: string, opts: { image?: string } = {}): Promise<void> {
  const r = await projectResources(project);
  if (r.containers.length) await execa('docker', ['rm', '-f', '-v', ...r.containers], { reject: false });
  for (const n of [...r.networks, `${project}_proxy`]) await execa('docker', ['network', 'rm', n], { reject: false });
  if (r.volumes.length) await execa('docker', ['volume', 'rm', '-f', ...r.volumes], { reject: false });
  if (opts.image) await execa('docker', ['rmi', '-f', opts.image], { reject: false });
}

/** A local image of `layers` layers of random bytes (FROM scratch), built with the docker CLI. */
export async function buildMultiLayerImage(
  tag: string,
  layers: number,
  docker: ReturnType<typeof dockerCli>,
): Promise<void> {
  const ctx = await mkdtemp(join(tmpdir(), 'regctl-e2e-img-'));
  try {
    const { randomBytes } = await import('node:crypto');
    const lines = ['FROM scratch'];
    for (let i = 0; i < layers; i++) {
      await writeFile(join(ctx, `layer${i}.bin`), randomBytes(256 * 1024 * (i + 1)));
      lines.push(`COPY layer${i}.bin /data/layer${i}.bin`);
    }
    await writeFile(join(ctx, 'Dockerfile'), `${lines.join('\n')}\n`);
    const res = await docker(['build', '-q', '-t', tag, ctx]);
    if (res.exitCode !== 0) throw new Error(`docker build failed:\n${res.all}`);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}
