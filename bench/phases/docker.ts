import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { HttpClient, VerifyError } from '../lib/http.js';
import { timed } from '../lib/load.js';
import { metric } from '../lib/model.js';
import type { MetricSpec, PhaseResult, ResourceUse } from '../lib/model.js';
import { errorText, orderFor } from '../lib/phase.js';
import { sampleProcess } from '../lib/proc.js';
import { REFERENCE_BINARY, freePort } from '../lib/servers.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { mbPerSecond } from '../lib/stats.js';
import { BASE_IMAGE, TRAEFIK_IMAGE, initBenchStack, requireImages } from './stack.js';
import type { BenchStack } from './stack.js';

const MiB = 1024 * 1024;
const PROJECT = 'regctl-bench-docker';
const OURS_IMAGE = 'regctl-bench/registry:docker';
const REF_IMAGE = 'regctl-bench/docker-registry:2.8.2';
const PAYLOAD = 'regctl-bench/payload:1';
const REF_CONTAINER = `${PROJECT}-reference`;
const PROXY_CONTAINER = `${PROJECT}-proxy`;
const ENTRY = { ours: 8001, ref: 8002 } as const;

/** What the phase ran, for the report's list of commands. */
export const DOCKER_COMMANDS = [
  'DOCKER_BUILDKIT=0 docker build -t PAYLOAD DIR   # FROM scratch, one COPY per file of random bytes: one layer each',
  'regctl init --yes ... && regctl up --dir STACK   # ours: the dev stack (registry container as deployed)',
  `docker run -d --network PROJECT_proxy ${REF_IMAGE}   # the reference: /usr/bin/docker-registry on ${BASE_IMAGE}, the stack's htpasswd mounted`,
  `docker run -d --network PROJECT_proxy -p 127.0.0.1:P1:${ENTRY.ours} -p 127.0.0.1:P2:${ENTRY.ref} ${TRAEFIK_IMAGE}   # the stack's static config, file provider`,
  'docker login 127.0.0.1:P --password-stdin; docker push 127.0.0.1:P/bench/payload:1   # timed, both registries',
  'docker rmi (every tag) && docker image prune -f; docker pull 127.0.0.1:P/bench/payload:1   # timed, then layers checked',
];

/** The docker CLI with a private config directory (the logins stay out of the machine's ~/.docker). */
function dockerCli(configDir: string) {
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
async function referenceImage(dir: string, docker: ReturnType<typeof dockerCli>): Promise<void> {
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

interface Pushed {
  ref: string;
  digest: string;
}

export interface DockerPhaseInput {
  repoRoot: string;
  workDir: string;
  sizes: Sizes;
  /** bcrypt cost of the htpasswd both registries read. */
  bcryptCost: number;
  index: number;
}

/** Peak resident set (VmHWM since start, never reset) and CPU of a container's processes, read from the host. */
async function containerResources(
  docker: ReturnType<typeof dockerCli>,
  container: string,
): Promise<ResourceUse | undefined> {
  const pid = Number((await docker(['inspect', '-f', '{{.State.Pid}}', container])).trim());
  if (!pid) return undefined;
  const s = await sampleProcess(pid);
  return { peakRssMiB: s.peakRssBytes / MiB, endRssMiB: s.rssBytes / MiB, cpuSeconds: s.cpuSeconds, wallSeconds: 0 };
}

const METRICS: MetricSpec[] = [
  {
    id: 'pushMBps',
    label: 'docker push through Traefik, image bytes / wall time',
    unit: 'MB/s',
    better: 'higher',
    targets: [{ kind: 'ratio-min', value: 1.5 }],
  },
  {
    id: 'pullMBps',
    label: 'docker pull through Traefik (image removed first), image bytes / wall time',
    unit: 'MB/s',
    better: 'higher',
    targets: [{ kind: 'ratio-min', value: 1 }],
  },
  { id: 'pushSeconds', label: 'docker push, wall time', unit: 's', better: 'lower' },
  { id: 'pullSeconds', label: 'docker pull, wall time', unit: 's', better: 'lower' },
];

export function dockerMetricSpecs(): MetricSpec[] {
  return METRICS;
}

/**
 * `docker push` and `docker pull` of a locally built multi-layer image through Traefik, to ours (the dev stack's
 * registry container) and to the reference (its binary in a container on the same network), both behind one
 * Traefik container configured as the dev stack's. The image is removed (every tag, then a prune) before each
 * pull, so the pull transfers every layer; after it, the image's layer digests (diff IDs) are compared with the
 * built image's and its repo digest with the one the push reported.
 */
export async function dockerPhase(input: DockerPhaseInput): Promise<PhaseResult> {
  const { sizes, workDir } = input;
  const totalBytes = sizes.dockerLayers * sizes.dockerLayerBytes;
  const order = orderFor(input.index);
  const title = `docker push and pull of a ${sizes.dockerLayers}-layer, ${Math.round(totalBytes / MiB)} MiB image through Traefik`;
  const result: PhaseResult = {
    id: 'docker',
    title,
    description:
      `An image of ${sizes.dockerLayers} layers of ${sizes.dockerLayerBytes / MiB} MiB of random bytes each (\`docker build\`, FROM scratch, ` +
      'one COPY per layer) is pushed with the docker CLI to each registry through Traefik, addressed as 127.0.0.1:PORT ' +
      '(dockerd treats loopback registries as insecure: it tries TLS first, which Traefik answers with its default ' +
      'certificate, as in the dev stack). Ours is the registry container of a dev stack (`regctl up`), the reference is ' +
      '`/usr/bin/docker-registry` in a container on the same network, built on the same base image; one Traefik ' +
      "container with the dev stack's static configuration and a file provider fronts both, on one entrypoint each. " +
      `Both read the stack's htpasswd (bcrypt cost ${input.bcryptCost}) and log as deployed by default (info; the ` +
      'reference with its access log). Before each pull every tag is removed and ' +
      'images pruned, so each pull transfers every layer; after it, the layer digests (diff IDs) and the repo digest are ' +
      "checked against the built image and the push. Wall time of the docker CLI, so the client's gzip of the layers " +
      '(push) and gunzip and extraction (pull) are in both figures. One push and one pull per registry. The ' +
      "resource table gives each registry container's process over its whole life (peak RSS never reset, CPU from " +
      'its start), read from the host after the pulls.',
    order,
    metrics: [],
    resources: {},
    errors: {},
  };
  process.stderr.write(`\n== ${title}\n`);
  const configDir = join(workDir, 'docker-config');
  const docker = dockerCli(configDir);
  const figures: Partial<Record<RegistryName, Record<string, number>>> = { ours: {}, ref: {} };
  let stack: BenchStack | undefined;
  try {
    await requireImages(TRAEFIK_IMAGE, BASE_IMAGE);
    await mkdir(configDir, { recursive: true });
    await payloadContext(join(workDir, 'payload'), sizes.dockerLayers, sizes.dockerLayerBytes);
    await docker(['build', '-q', '-t', PAYLOAD, join(workDir, 'payload')]);
    await rm(join(workDir, 'payload'), { recursive: true, force: true });
    const layers = JSON.parse(await docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', PAYLOAD])) as string[];
    if (layers.length !== sizes.dockerLayers)
      throw new VerifyError(`built image has ${layers.length} layers, expected ${sizes.dockerLayers}`);

    stack = await initBenchStack(input.repoRoot, join(workDir, 'docker-stack'), PROJECT, OURS_IMAGE);
    const { hashPassword } = (await import(join(input.repoRoot, 'dist/stack/htpasswd.js'))) as {
      hashPassword: (p: string, cost: number) => string;
    };
    await writeFile(
      join(stack.dir, 'auth/htpasswd'),
      `${stack.user}:${hashPassword(stack.password, input.bcryptCost)}\n`,
      { mode: 0o600 },
    );
    await stack.regctl(['up', '--dir', stack.dir]);
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

    const host = (name: RegistryName): string => `127.0.0.1:${ports[name]}`;
    const pushed: Partial<Record<RegistryName, Pushed>> = {};
    const removeAll = async (): Promise<void> => {
      const refs = [PAYLOAD, ...order.map((n) => `${host(n)}/bench/payload:1`)];
      await docker(['rmi', '-f', ...refs]).catch(() => '');
      await docker(['image', 'prune', '-f']);
    };
    for (const name of order) {
      const ref = `${host(name)}/bench/payload:1`;
      await docker(['login', host(name), '-u', stack.user, '--password-stdin'], stack.password);
      await docker(['tag', PAYLOAD, ref]);
      const { value: out, seconds } = await timed(() => docker(['push', ref]));
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
      if (!digest) throw new VerifyError(`docker push ${ref} reported no digest:\n${out.slice(-1000)}`);
      pushed[name] = { ref, digest };
      Object.assign(figures[name] ?? {}, { pushSeconds: seconds, pushMBps: mbPerSecond(totalBytes, seconds) });
      process.stderr.write(
        `   ${name.padEnd(4)} push ${seconds.toFixed(1)} s (${mbPerSecond(totalBytes, seconds).toFixed(0)} MB/s)\n`,
      );
    }
    for (const name of order) {
      const p = pushed[name] as Pushed;
      await removeAll();
      const { seconds } = await timed(() => docker(['pull', p.ref]));
      const got = JSON.parse(await docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', p.ref])) as string[];
      if (got.join() !== layers.join()) {
        throw new VerifyError(
          `${name}: pulled layers ${got.join(',')} differ from the built image's ${layers.join(',')}`,
        );
      }
      const repoDigests = JSON.parse(
        await docker(['image', 'inspect', '-f', '{{json .RepoDigests}}', p.ref]),
      ) as string[];
      if (!repoDigests.includes(`${host(name)}/bench/payload@${p.digest}`)) {
        throw new VerifyError(
          `${name}: pulled image's repo digests ${repoDigests.join(',')} do not hold the pushed ${p.digest}`,
        );
      }
      Object.assign(figures[name] ?? {}, { pullSeconds: seconds, pullMBps: mbPerSecond(totalBytes, seconds) });
      const rate = mbPerSecond(totalBytes, seconds).toFixed(0);
      process.stderr.write(
        `   ${name.padEnd(4)} pull ${seconds.toFixed(1)} s (${rate} MB/s), ${got.length} layers checked\n`,
      );
    }
    await removeAll();
    const ours = await containerResources(docker, `${PROJECT}-registry`);
    const ref = await containerResources(docker, REF_CONTAINER);
    if (ours) result.resources.ours = ours;
    if (ref) result.resources.ref = ref;
  } catch (err) {
    const text = errorText(err);
    for (const name of order) if (Object.keys(figures[name] ?? {}).length < METRICS.length) result.errors[name] = text;
    process.stderr.write(`   FAILED ${text}\n`);
  } finally {
    await docker(['rm', '-f', PROXY_CONTAINER, REF_CONTAINER]).catch(() => '');
    if (stack) await stack.regctl(['down', '--dir', stack.dir, '--volumes', '--yes']).catch(() => undefined);
    await docker(['rmi', '-f', PAYLOAD, OURS_IMAGE, REF_IMAGE]).catch(() => '');
    await rm(configDir, { recursive: true, force: true });
  }
  const pick = (name: RegistryName, id: string): number | undefined =>
    result.errors[name] === undefined ? figures[name]?.[id] : undefined;
  result.metrics = METRICS.map((m) => metric(m, pick('ours', m.id), pick('ref', m.id)));
  return result;
}
