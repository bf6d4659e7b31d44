/**
 * The docker phase's images and containers: the docker CLI it drives with a private config, the payload image, ours
 * (the dev stack), the reference's image and container, the Traefik container in front of both, and their teardown.
 */
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { HttpClient, VerifyError } from '../lib/http.js';
import type { PhaseResult, ResourceUse } from '../lib/model.js';
import { sampleProcess } from '../lib/proc.js';
import { REFERENCE_BINARY, freePort } from '../lib/servers.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { BASE_IMAGE, TRAEFIK_IMAGE } from './stack.js';
import type { BenchStack } from './stack.js';

const MiB = 1024 * 1024;
export const PROJECT = 'regctl-bench-docker';
export const OURS_IMAGE = 'regctl-bench/registry:docker';
export const REF_IMAGE = 'regctl-bench/docker-registry:2.8.2';
export const PAYLOAD = 'regctl-bench/payload:1';
const REF_CONTAINER = `${PROJECT}-reference`;
const PROXY_CONTAINER = `${PROJECT}-proxy`;
export const ENTRY = { ours: 8001, ref: 8002 } as const;

/** The docker CLI with a private config directory (the logins stay out of the machine's ~/.docker). */
export function dockerCli(configDir: string) {
  return (args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const env = { ...process.env, DOCKER_CONFIG: configDir, DOCKER_BUILDKIT: '0' };
      const child = execFile('docker', args, { env, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
        if (err)
          reject(new Error(`docker ${args.slice(0, 2).join(' ')}: ${err.message}\n${String(stderr).slice(-2000)}`));
        else resolve(String(stdout));
      });
      if (input !== undefined) child.stdin?.end(input);
    });
}

export type DockerCli = ReturnType<typeof dockerCli>;

/** A directory for `docker build`: `layers` files of random bytes, `FROM scratch` and one COPY (one layer) each. */
async function payloadContext(dir: string, layers: number, layerBytes: number): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const chunk = Buffer.allocUnsafe(16 * MiB);
  for (let i = 0; i < layers; i++) {
    const file = await open(join(dir, `layer-${i}.bin`), 'w');
    try {
      for (let done = 0; done < layerBytes; done += chunk.length) {
        randomFillSync(chunk);
        await file.write(chunk, 0, Math.min(chunk.length, layerBytes - done));
      }
    } finally {
      await file.close();
    }
  }
  const lines = [
    'FROM scratch',
    ...Array.from({ length: layers }, (_, i) => `COPY layer-${i}.bin /layer-${i}.bin`),
    'CMD ["/none"]',
  ];
  await writeFile(join(dir, 'Dockerfile'), `${lines.join('\n')}\n`);
}

/**
 * The reference's image: its binary on the same base image as ours, listening on :5000, htpasswd at /auth, logging
 * as registry:2 does by default (info, with access logs), as ours logs at the stack's default level (info).
 */
async function referenceImage(dir: string, docker: DockerCli): Promise<void> {
  await mkdir(dir, { recursive: true });
  await copyFile(REFERENCE_BINARY, join(dir, 'docker-registry'));
  const config = {
    version: 0.1,
    // As deployed by default on both sides: the stack's registry logs at info, registry:2 at info with access logs.
    log: { level: 'info' },
    storage: {
      filesystem: { rootdirectory: '/var/lib/registry' },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
    },
    http: { addr: ':5000', secret: 'regctl-bench-not-a-secret', headers: { 'X-Content-Type-Options': ['nosniff'] } },
    auth: { htpasswd: { realm: 'regctl-bench', path: '/auth/htpasswd' } },
  };
  await writeFile(join(dir, 'config.yml'), stringify(config));
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      `FROM ${BASE_IMAGE}`,
      'COPY docker-registry /usr/bin/docker-registry',
      'COPY config.yml /etc/docker/registry/config.yml',
      'ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]',
      '',
    ].join('\n'),
  );
  await docker(['build', '-q', '-t', REF_IMAGE, dir]);
}

/**
 * Traefik as the dev stack runs it (the stack's own rendered static config: log, access log, entrypoint
 * timeouts), with a file provider instead of the Docker one and one entrypoint per registry, each with a
 * catch-all router and its TLS copy (dockerd tries HTTPS first on an insecure registry, as in the dev stack).
 */
async function proxyConfig(stack: BenchStack, dir: string, upstream: Record<RegistryName, string>): Promise<void> {
  const rendered = parse(await readFile(join(stack.dir, 'traefik/traefik.yml'), 'utf8')) as Record<string, unknown>;
  const web = (rendered.entryPoints as Record<string, { transport?: unknown }>).web;
  const entryPoints: Record<string, unknown> = {};
  const routers: Record<string, unknown> = {};
  const services: Record<string, unknown> = {};
  for (const name of ['ours', 'ref'] as const) {
    entryPoints[name] = { address: `:${ENTRY[name]}`, ...(web?.transport ? { transport: web.transport } : {}) };
    routers[name] = { rule: 'PathPrefix(`/`)', entryPoints: [name], service: name };
    routers[`${name}-tls`] = { rule: 'PathPrefix(`/`)', entryPoints: [name], service: name, tls: {} };
    services[name] = { loadBalancer: { servers: [{ url: upstream[name] }] } };
  }
  const { providers: _docker, entryPoints: _stackEntryPoints, ping: _ping, ...rest } = rendered;
  await writeFile(
    join(dir, 'traefik.yml'),
    stringify({ ...rest, entryPoints, providers: { file: { filename: '/etc/traefik/dynamic.yml' } } }),
  );
  await writeFile(join(dir, 'dynamic.yml'), stringify({ http: { routers, services } }));
}

async function waitFor401(port: number, what: string): Promise<void> {
  const client = new HttpClient('127.0.0.1', port, undefined, 1);
  const deadline = Date.now() + 60_000;
  try {
    while (Date.now() < deadline) {
      const status = await client.request('GET', '/v2/').then(
        (r) => r.status,
        () => 0,
      );
      if (status === 401) return;
      await sleep(250);
    }
    throw new Error(`${what} on 127.0.0.1:${port} did not answer /v2/ with 401 within 60 s`);
  } finally {
    client.close();
  }
}

/** Peak resident set (VmHWM since start, never reset) and CPU of a container's processes, read from the host. */
async function containerResources(docker: DockerCli, container: string): Promise<ResourceUse | undefined> {
  const pid = Number((await docker(['inspect', '-f', '{{.State.Pid}}', container])).trim());
  if (!pid) return undefined;
  const s = await sampleProcess(pid);
  return { peakRssMiB: s.peakRssBytes / MiB, endRssMiB: s.rssBytes / MiB, cpuSeconds: s.cpuSeconds, wallSeconds: 0 };
}

/** The two registries as the docker CLI reaches them: Traefik's published port per registry, in the phase's order. */
export interface Fronted {
  docker: DockerCli;
  order: RegistryName[];
  ports: Record<RegistryName, number>;
}

export function hostOf(fronted: Fronted, name: RegistryName): string {
  return `127.0.0.1:${fronted.ports[name]}`;
}

/** Builds the payload image and returns its layer digests (diff IDs), one per layer asked for. */
export async function buildPayload(docker: DockerCli, workDir: string, sizes: Sizes): Promise<string[]> {
  await payloadContext(join(workDir, 'payload'), sizes.dockerLayers, sizes.dockerLayerBytes);
  await docker(['build', '-q', '-t', PAYLOAD, join(workDir, 'payload')]);
  await rm(join(workDir, 'payload'), { recursive: true, force: true });
  const layers = JSON.parse(await docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', PAYLOAD])) as string[];
  if (layers.length !== sizes.dockerLayers)
    throw new VerifyError(`built image has ${layers.length} layers, expected ${sizes.dockerLayers}`);
  return layers;
}

/** Ours: the dev stack up, its htpasswd hashed at the phase's bcrypt cost. */
export async function startOurs(stack: BenchStack, repoRoot: string, bcryptCost: number): Promise<void> {
  const { hashPassword } = (await import(join(repoRoot, 'dist/stack/htpasswd.js'))) as {
    hashPassword: (p: string, cost: number) => string;
  };
  await writeFile(join(stack.dir, 'auth/htpasswd'), `${stack.user}:${hashPassword(stack.password, bcryptCost)}\n`, {
    mode: 0o600,
  });
  await stack.regctl(['up', '--dir', stack.dir]);
}

/**
 * The reference's container on the stack's proxy network, reading the stack's htpasswd, and the Traefik container
 * in front of both; returns once Traefik answers /v2/ with 401 for each registry.
 */
export async function startReferenceAndProxy(
  docker: DockerCli,
  stack: BenchStack,
  workDir: string,
  order: RegistryName[],
): Promise<Fronted> {
  const network = `${PROJECT}_proxy`;
  await referenceImage(join(workDir, 'ref-image'), docker);
  await docker([
    'run',
    '-d',
    '--name',
    REF_CONTAINER,
    '--network',
    network,
    '-v',
    `${join(stack.dir, 'auth/htpasswd')}:/auth/htpasswd:ro`,
    REF_IMAGE,
  ]);
  const proxyDir = join(workDir, 'proxy');
  await mkdir(proxyDir, { recursive: true });
  await proxyConfig(stack, proxyDir, {
    ours: `http://${PROJECT}-registry:5000`,
    ref: `http://${REF_CONTAINER}:5000`,
  });
  const ports: Record<RegistryName, number> = { ours: await freePort(), ref: await freePort() };
  await docker([
    'run',
    '-d',
    '--name',
    PROXY_CONTAINER,
    '--network',
    network,
    '-p',
    `127.0.0.1:${ports.ours}:${ENTRY.ours}`,
    '-p',
    `127.0.0.1:${ports.ref}:${ENTRY.ref}`,
    '-v',
    `${join(proxyDir, 'traefik.yml')}:/etc/traefik/traefik.yml:ro`,
    '-v',
    `${join(proxyDir, 'dynamic.yml')}:/etc/traefik/dynamic.yml:ro`,
    TRAEFIK_IMAGE,
    '--configfile=/etc/traefik/traefik.yml',
  ]);
  for (const name of order) await waitFor401(ports[name], `Traefik in front of ${name}`);
  return { docker, order, ports };
}

/** Every tag of the payload removed and images pruned, so the next pull transfers every layer. */
export async function removePayload(fronted: Fronted): Promise<void> {
  const refs = [PAYLOAD, ...fronted.order.map((n) => `${hostOf(fronted, n)}/bench/payload:1`)];
  await fronted.docker(['rmi', '-f', ...refs]).catch(() => '');
  await fronted.docker(['image', 'prune', '-f']);
}

/** Both registry containers' resources, into the phase's resource table. */
export async function recordResources(docker: DockerCli, result: PhaseResult): Promise<void> {
  const ours = await containerResources(docker, `${PROJECT}-registry`);
  const ref = await containerResources(docker, REF_CONTAINER);
  if (ours) result.resources.ours = ours;
  if (ref) result.resources.ref = ref;
}

/** Containers, stack, images and the docker config directory removed, whatever the phase got to. */
export async function teardown(docker: DockerCli, stack: BenchStack | undefined, configDir: string): Promise<void> {
  await docker(['rm', '-f', PROXY_CONTAINER, REF_CONTAINER]).catch(() => '');
  if (stack) await stack.regctl(['down', '--dir', stack.dir, '--volumes', '--yes']).catch(() => undefined);
  await docker(['rmi', '-f', PAYLOAD, OURS_IMAGE, REF_IMAGE]).catch(() => '');
  await rm(configDir, { recursive: true, force: true });
}
