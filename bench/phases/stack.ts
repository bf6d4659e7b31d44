import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { freePort } from '../lib/servers.js';

const exec = promisify(execFile);

export const TRAEFIK_IMAGE = 'regctl-test/traefik:v3.6';
export const BASE_IMAGE = 'regctl-test/node:20';

/** A dev stack rendered by `regctl init` on free ports, with the machine's local Traefik and base images. */
export interface BenchStack {
  dir: string;
  project: string;
  ports: { http: number; https: number; registry: number };
  user: string;
  password: string;
  /** The `regctl init` command line, STACK for the directory. */
  initCommand: string;
  regctl: (args: string[]) => Promise<{ stdout: string; stderr: string }>;
}

export async function requireImages(...images: string[]): Promise<void> {
  await exec('docker', ['image', 'inspect', ...images]).catch(() => {
    throw new Error(`images ${images.join(' and ')} are needed (npm run test:provision makes them)`);
  });
}

/**
 * `regctl init --yes` in `workDir/stack` under project `project`, the registry image tagged `image` (so runs
 * never rebuild each other's), re-rendered with `init --force`; the admin's credentials read from its `.env`.
 */
export async function initBenchStack(
  repoRoot: string,
  workDir: string,
  project: string,
  image: string,
): Promise<BenchStack> {
  const regctl = (args: string[]) =>
    exec(process.execPath, [join(repoRoot, 'bin/regctl.js'), ...args], { maxBuffer: 64 * 1024 * 1024 });
  await requireImages(TRAEFIK_IMAGE, BASE_IMAGE);
  const dir = join(workDir, 'stack');
  await mkdir(workDir, { recursive: true });
  const ports = { http: await freePort(), https: await freePort(), registry: await freePort() };
  const init = [
    'init',
    '--yes',
    '--dir',
    dir,
    '--name',
    project,
    '--traefik-image',
    TRAEFIK_IMAGE,
    '--base-image',
    BASE_IMAGE,
    '--http-port',
    String(ports.http),
    '--https-port',
    String(ports.https),
    '--registry-port',
    String(ports.registry),
  ];
  await regctl(init);
  const configFile = join(dir, 'regctl.yaml');
  const doc = parseDocument(await readFile(configFile, 'utf8'));
  doc.setIn(['images', 'registry'], image);
  await writeFile(configFile, doc.toString());
  await regctl(['init', '--yes', '--force', '--dir', dir]);
  const env = await readFile(join(dir, '.env'), 'utf8');
  const password = /^REGISTRY_PASSWORD=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '');
  const user = /^REGISTRY_USERNAME=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '') ?? 'admin';
  if (!password) throw new Error('the stack .env has no REGISTRY_PASSWORD');
  return { dir, project, ports, user, password, initCommand: `regctl ${init.join(' ').replace(dir, 'STACK')}`, regctl };
}
