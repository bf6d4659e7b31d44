import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { HttpClient, expectStatus } from '../lib/http.js';
import { timed } from '../lib/load.js';
import { freePort } from '../lib/servers.js';

const exec = promisify(execFile);

export const UP_TRAEFIK_IMAGE = 'regctl-test/traefik:v3.6';
export const UP_BASE_IMAGE = 'regctl-test/node:20';
const PROJECT = 'regctl-bench';
const IMAGE = 'regctl-bench/registry:bench';

export interface UpTiming {
  firstUpSeconds: number;
  upSeconds: number;
  commands: string[];
}

async function hostPort(): Promise<number> {
  return freePort();
}

/**
 * `regctl up` timed on a stack that was already brought up once (so its image is built): init a stack in
 * `workDir` on free ports with the machine's local Traefik and base images, `up` (builds the image), `down`,
 * then the timed `up`, checked by an authenticated `GET /v2/` on the registry's direct port; `down --volumes`
 * and the image removed at the end, whatever happened.
 */
export async function timeRegctlUp(repoRoot: string, workDir: string): Promise<UpTiming> {
  const regctl = (args: string[]) => exec(process.execPath, [join(repoRoot, 'bin/regctl.js'), ...args], { maxBuffer: 64 * 1024 * 1024 });
  await exec('docker', ['image', 'inspect', UP_TRAEFIK_IMAGE, UP_BASE_IMAGE]).catch(() => {
    throw new Error(`images ${UP_TRAEFIK_IMAGE} and ${UP_BASE_IMAGE} are needed (npm run test:provision makes them)`);
  });
  const dir = join(workDir, 'stack');
  await mkdir(workDir, { recursive: true });
  const ports = { http: await hostPort(), https: await hostPort(), registry: await hostPort() };
  const init = [
    'init', '--yes', '--dir', dir, '--name', PROJECT, '--traefik-image', UP_TRAEFIK_IMAGE, '--base-image', UP_BASE_IMAGE,
    '--http-port', String(ports.http), '--https-port', String(ports.https), '--registry-port', String(ports.registry),
  ];
  await regctl(init);
  const configFile = join(dir, 'regctl.yaml');
  const doc = parseDocument(await readFile(configFile, 'utf8'));
  doc.setIn(['images', 'registry'], IMAGE);
  await writeFile(configFile, doc.toString());
  await regctl(['init', '--yes', '--force', '--dir', dir]);
  const env = await readFile(join(dir, '.env'), 'utf8');
  const password = /^REGISTRY_PASSWORD=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '');
  const user = /^REGISTRY_USERNAME=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '') ?? 'admin';
  if (!password) throw new Error('the stack .env has no REGISTRY_PASSWORD');
  try {
    const first = await timed(() => regctl(['up', '--dir', dir]));
    await regctl(['down', '--dir', dir, '--yes']);
    const second = await timed(() => regctl(['up', '--dir', dir]));
    await writeFile(join(workDir, 'up.log'), `${second.value.stdout}\n${second.value.stderr}`);
    const client = new HttpClient('127.0.0.1', ports.registry, { user, password }, 1);
    try {
      expectStatus(await client.request('GET', '/v2/'), 200, 'GET /v2/ on the stack brought up');
    } finally {
      client.close();
    }
    return {
      firstUpSeconds: first.seconds,
      upSeconds: second.seconds,
      commands: [
        `regctl ${init.join(' ').replace(dir, 'STACK')}   # then images.registry: ${IMAGE} and init --force`,
        'regctl up --dir STACK; regctl down --dir STACK --yes   # brings the image into being',
        'regctl up --dir STACK   # timed',
        'regctl down --dir STACK --volumes --yes',
      ],
    };
  } finally {
    await regctl(['down', '--dir', dir, '--volumes', '--yes']).catch(() => undefined);
    await exec('docker', ['rmi', '-f', IMAGE]).catch(() => undefined);
  }
}
