/**
 * Adoption of a volume written by Debian's docker-registry (distribution 2.8.2) on the real engine behind the
 * real Traefik: served in place, in the client stack's place, with the old credentials and digests.
 */
import { basicAuth } from '../helpers/auth.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startReferenceRegistry } from '../helpers/reference-registry.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  buildMultiLayerImage,
  stackTestsReady,
  regctl,
  type E2eStack,
} from './helpers.js';
import {
  CLIENT_HOST,
  PROJECT,
  startClientStack,
  stopClientStack,
  viaTraefik,
  type ClientStack,
} from './client-stack.js';

const ready = stackTestsReady();

async function manifestDigest(base: string, repo: string, tag: string, auth: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: auth,
      accept:
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json',
    },
  });
  if (res.status !== 200) throw new Error(`HEAD ${repo}:${tag} → ${res.status}`);
  return res.headers.get('docker-content-digest') ?? '';
}

describe.skipIf(!ready)('client side: adoption', () => {
  let client: ClientStack | undefined;
  let stack: E2eStack;
  let docker: ClientStack['docker'];
  let registry: string;
  let work: string;

  beforeAll(async () => {
    client = await startClientStack();
    ({ stack, docker, registry, work } = client);
  });

  afterAll(async () => {
    if (client) await stopClientStack(client);
  });

  it('adopts a volume written by the reference registry: same images, same digests, old credentials', async () => {
    await regctl(['down', '--dir', stack.dir, '--yes']);
    const seedVolume = 'seed_registry_data';
    await execa('docker', ['volume', 'rm', '-f', seedVolume], { reject: false });
    await execa('docker', ['volume', 'create', seedVolume]);
    const mountpoint = (
      await execa('docker', ['volume', 'inspect', '--format', '{{.Mountpoint}}', seedVolume])
    ).stdout.trim();
    const ref = await startReferenceRegistry({ dataDir: mountpoint });
    const pushed: { repo: string; tag: string; digest: string }[] = [];
    try {
      const login = await docker(['login', ref.host, '-u', ref.username, '--password-stdin'], { input: ref.password });
      expect(login.exitCode, login.all).toBe(0);
      for (const [repo, tag, layers] of [
        ['minio', 'latest', 3],
        ['apps/api', '1.0', 2],
        ['apps/api', '1.1', 4],
      ] as const) {
        await buildMultiLayerImage(`${ref.host}/${repo}:${tag}`, layers, docker);
        const push = await docker(['push', `${ref.host}/${repo}:${tag}`]);
        expect(push.exitCode, push.all).toBe(0);
        pushed.push({
          repo,
          tag,
          digest: await manifestDigest(ref.url, repo, tag, basicAuth(ref.username, ref.password)),
        });
      }
    } finally {
      await ref.stop();
    }
    const seed = join(work, 'seed');
    await mkdir(seed);
    await writeFile(
      join(seed, '.env'),
      `COMPOSE_PROJECT_NAME=seed\nREGISTRY_USERNAME=${ref.username}\nREGISTRY_PASSWORD=${ref.password}\nREGISTRY_STORAGE_DELETE_ENABLED=true\nHOST=${CLIENT_HOST}\n`,
    );
    await chmod(join(seed, '.env'), 0o600);
    await writeFile(
      join(seed, '01-docker-compose.Infra.dev.yml'),
      stringify({
        services: {
          registry: {
            build: { context: './server/registry' },
            image: 'registry-custom:latest',
            container_name: 'registry',
            ports: ['5000:5000'],
            volumes: ['registry_data:/var/lib/registry'],
          },
        },
        volumes: { registry_data: null },
      }),
    );
    const target = join(work, 'adopted');
    const common = [
      '--from',
      seed,
      '--dir',
      target,
      '--name',
      PROJECT,
      '--traefik-image',
      E2E_TRAEFIK_IMAGE,
      '--base-image',
      E2E_BASE_IMAGE,
      '--http-port',
      String(stack.ports.http),
      '--registry-port',
      String(stack.ports.registry),
    ];
    const dry = await regctl(['adopt', ...common, '--dry-run', '--json']);
    expect(dry.exitCode, dry.all).toBe(0);
    const found = JSON.parse(dry.stdout) as {
      volume: string;
      users: string[];
      repositories: number;
      actions: string[];
    };
    expect(found.volume).toBe(seedVolume);
    expect(found.users).toEqual([ref.username]);
    expect(found.repositories).toBe(2);
    await expect(readFile(join(target, 'regctl.yaml'), 'utf8')).rejects.toThrow();

    const adopt = await regctl(['adopt', ...common]);
    expect(adopt.exitCode, adopt.all).toBe(0);
    expect(adopt.all).not.toContain(ref.password);
    try {
      const up = await regctl(['up', '--dir', target]);
      expect(up.exitCode, up.all).toBe(0);
      for (const p of pushed) {
        const res = await viaTraefik(stack.ports.http, registry, 'HEAD', `/v2/${p.repo}/manifests/${p.tag}`, {
          username: ref.username,
          password: ref.password,
        });
        expect(res.status).toBe(200);
        expect(res.headers['docker-content-digest']).toBe(p.digest);
      }
      const gate = await docker(['login', registry, '-u', ref.username, '--password-stdin'], { input: ref.password });
      expect(gate.exitCode, gate.all).toBe(0);
      await docker(['rmi', '-f', `${registry}/apps/api:1.1`]);
      const pull = await docker(['pull', `${registry}/apps/api:1.1`]);
      expect(pull.exitCode, pull.all).toBe(0);
      const digests = await docker([
        'image',
        'inspect',
        '--format',
        '{{json .RepoDigests}}',
        `${registry}/apps/api:1.1`,
      ]);
      expect(digests.stdout).toContain(pushed.find((p) => p.tag === '1.1')!.digest);
    } finally {
      await regctl(['down', '--dir', target, '--yes']);
      const left = await execa('docker', ['volume', 'inspect', seedVolume], { reject: false });
      expect(left.exitCode).toBe(0);
      await execa('docker', ['volume', 'rm', '-f', seedVolume], { reject: false });
    }
  });
});
