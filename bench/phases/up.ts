import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HttpClient, expectStatus } from '../lib/http.js';
import { timed } from '../lib/load.js';
import { initBenchStack } from './stack.js';

const exec = promisify(execFile);

const PROJECT = 'regctl-bench';
const IMAGE = 'regctl-bench/registry:bench';

export interface UpTiming {
  firstUpSeconds: number;
  upSeconds: number;
  commands: string[];
}

/**
 * `regctl up` timed on a stack that was already brought up once (so its image is built): init a stack in
 * `workDir` on free ports with the machine's local Traefik and base images, `up` (builds the image), `down`,
 * then the timed `up`, checked by an authenticated `GET /v2/` on the registry's direct port; `down --volumes`
 * and the image removed at the end, whatever happened.
 */
export async function timeRegctlUp(repoRoot: string, workDir: string): Promise<UpTiming> {
  const stack = await initBenchStack(repoRoot, workDir, PROJECT, IMAGE);
  const { dir, regctl, ports, user, password } = stack;
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
        `${stack.initCommand}   # then images.registry: ${IMAGE} and init --force`,
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
