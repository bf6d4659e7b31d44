import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VerifyError } from '../lib/http.js';
import { timed } from '../lib/load.js';
import { metric } from '../lib/model.js';
import { NullRegistry } from '../lib/null-registry.js';
import type { MetricSpec, PhaseResult } from '../lib/model.js';
import { errorText, orderFor } from '../lib/phase.js';
import type { RegistryName } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { mbPerSecond, percentile } from '../lib/stats.js';
import {
  ENTRY,
  OURS_IMAGE,
  PAYLOAD,
  PROJECT,
  REF_IMAGE,
  buildPayload,
  dockerCli,
  hostOf,
  recordResources,
  removePayload,
  startOurs,
  startReferenceAndProxy,
  teardown,
} from './docker-containers.js';
import type { Fronted } from './docker-containers.js';
import { BASE_IMAGE, TRAEFIK_IMAGE, initBenchStack, requireImages } from './stack.js';
import type { BenchStack } from './stack.js';

const MiB = 1024 * 1024;

/** What the phase ran, for the report's list of commands. */
export const DOCKER_COMMANDS = [
  'DOCKER_BUILDKIT=0 docker build -t PAYLOAD DIR   # FROM scratch, one COPY per file of random bytes: one layer each',
  'regctl init --yes ... && regctl up --dir STACK   # ours: the dev stack (registry container as deployed)',
  `docker run -d --network PROJECT_proxy ${REF_IMAGE}   # the reference: /usr/bin/docker-registry on ${BASE_IMAGE}, the stack's htpasswd mounted`,
  `docker run -d --network PROJECT_proxy -p 127.0.0.1:P1:${ENTRY.ours} -p 127.0.0.1:P2:${ENTRY.ref} ${TRAEFIK_IMAGE}   # the stack's static config, file provider`,
  'docker login 127.0.0.1:P --password-stdin; docker push 127.0.0.1:P/bench/payload:1   # timed, both registries',
  'docker rmi (every tag) && docker image prune -f; docker pull 127.0.0.1:P/bench/payload:1   # timed, then layers checked',
];

/** Each registry's figures so far, by metric id; a registry with fewer than every metric failed. */
type Figures = Partial<Record<RegistryName, Record<string, number>>>;

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
    label: 'docker pull through Traefik (image removed first), image bytes / wall time, median of the pulls',
    unit: 'MB/s',
    better: 'higher',
    targets: [{ kind: 'ratio-min', value: 1 }],
  },
  {
    id: 'pushShareOfCeiling',
    label: "docker push as a share of the client's ceiling measured just before it",
    unit: '%',
    better: 'higher',
  },
  {
    id: 'pushCeilingMBps',
    label: "The client's ceiling: docker push to a registry that stores nothing (loopback, no Traefik), just before",
    unit: 'MB/s',
    better: 'higher',
  },
  { id: 'pushSeconds', label: 'docker push, wall time', unit: 's', better: 'lower' },
  { id: 'pullSeconds', label: 'docker pull, wall time (median)', unit: 's', better: 'lower' },
];

export function dockerMetricSpecs(): MetricSpec[] {
  return METRICS;
}

/** The report's description of the phase. */
function describePhase(sizes: Sizes, bcryptCost: number): string {
  return (
    `An image of ${sizes.dockerLayers} layers of ${sizes.dockerLayerBytes / MiB} MiB of random bytes each (\`docker build\`, FROM scratch, ` +
    'one COPY per layer) is pushed with the docker CLI to each registry through Traefik, addressed as 127.0.0.1:PORT ' +
    '(dockerd treats loopback registries as insecure: it tries TLS first, which Traefik answers with its default ' +
    'certificate, as in the dev stack). Ours is the registry container of a dev stack (`regctl up`), the reference is ' +
    '`/usr/bin/docker-registry` in a container on the same network, built on the same base image; one Traefik ' +
    "container with the dev stack's static configuration and a file provider fronts both, on one entrypoint each. " +
    `Both read the stack's htpasswd (bcrypt cost ${bcryptCost}) and log as deployed by default (info; the ` +
    'reference with its access log). Before each pull every tag is removed and ' +
    'images pruned, so each pull transfers every layer; after it, the layer digests (diff IDs) and the repo digest are ' +
    "checked against the built image and the push. Wall time of the docker CLI, so the client's gzip of the layers " +
    '(push) and gunzip and extraction (pull) are in both figures. One push per registry; ' +
    `${PULL_ROUNDS} pulls per registry, alternating which goes first, the figure their median. Just before ` +
    "each registry's push, the same image is pushed to a registry that stores nothing (`bench/lib/null-registry.ts`, " +
    "in the bench's process, straight on loopback): what the client itself takes, the ceiling of any registry. The " +
    "resource table gives each registry container's process over its whole life (peak RSS never reset, CPU from " +
    'its start), read from the host after the pulls.'
  );
}

/** Logs in to each registry and times `docker push` of the payload; each push's figures land in `figures`. */
async function pushEach(
  fronted: Fronted,
  stack: BenchStack,
  totalBytes: number,
  figures: Figures,
): Promise<Partial<Record<RegistryName, Pushed>>> {
  const { docker } = fronted;
  const pushed: Partial<Record<RegistryName, Pushed>> = {};
  for (const name of fronted.order) {
    const ceiling = await pushToNull(docker, totalBytes);
    const ref = `${hostOf(fronted, name)}/bench/payload:1`;
    await docker(['login', hostOf(fronted, name), '-u', stack.user, '--password-stdin'], stack.password);
    await docker(['tag', PAYLOAD, ref]);
    const { value: out, seconds } = await timed(() => docker(['push', ref]));
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
    if (!digest) throw new VerifyError(`docker push ${ref} reported no digest:\n${out.slice(-1000)}`);
    pushed[name] = { ref, digest };
    const pushMBps = mbPerSecond(totalBytes, seconds);
    Object.assign(figures[name] ?? {}, {
      pushSeconds: seconds,
      pushMBps,
      pushCeilingMBps: ceiling,
      pushShareOfCeiling: (100 * pushMBps) / ceiling,
    });
    process.stderr.write(
      `   ${name.padEnd(4)} push ${seconds.toFixed(1)} s (${pushMBps.toFixed(0)} MB/s; client ceiling ${ceiling.toFixed(0)} MB/s)\n`,
    );
  }
  return pushed;
}

/**
 * The client's ceiling: `docker push` of the payload to a registry that stores nothing; MB/s. Checked: every
 * layer's bytes arrived (random bytes do not shrink under gzip) and one manifest.
 */
async function pushToNull(docker: Fronted['docker'], totalBytes: number): Promise<number> {
  const sink = await NullRegistry.start();
  const ref = `127.0.0.1:${sink.port}/bench/payload:1`;
  try {
    await docker(['tag', PAYLOAD, ref]);
    const { seconds } = await timed(() => docker(['push', ref]));
    if (sink.received < totalBytes || sink.manifests !== 1) {
      throw new VerifyError(
        `docker push to the null registry sent ${sink.received} bytes and ${sink.manifests} manifest(s); expected at least ${totalBytes} bytes and one`,
      );
    }
    return mbPerSecond(totalBytes, seconds);
  } finally {
    await docker(['rmi', ref]).catch(() => '');
    await sink.close();
  }
}

/** Pulls timed per registry (odd, so that the nearest-rank 50th percentile is their median). */
export const PULL_ROUNDS = 3;

/**
 * The order of the pulls: rounds alternate which registry goes first (A B, B A, A B, ...), so that neither always
 * pulls right after the other or first in the phase.
 */
export function pullSchedule(order: readonly RegistryName[], rounds: number): RegistryName[] {
  return Array.from({ length: rounds }, (_, r) => (r % 2 === 0 ? [...order] : [...order].reverse())).flat();
}

/**
 * Times `docker pull` from each registry PULL_ROUNDS times (see `pullSchedule`), with the payload removed before
 * each, and checks every pull's layers against the built image's and its repo digest against the push's. Each
 * registry's figure in `figures` is the median of its pulls.
 */
async function pullEach(
  fronted: Fronted,
  pushed: Partial<Record<RegistryName, Pushed>>,
  layers: string[],
  totalBytes: number,
  figures: Figures,
): Promise<void> {
  const { docker } = fronted;
  const times: Partial<Record<RegistryName, number[]>> = {};
  for (const name of pullSchedule(fronted.order, PULL_ROUNDS)) {
    const p = pushed[name] as Pushed;
    await removePayload(fronted);
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
    if (!repoDigests.includes(`${hostOf(fronted, name)}/bench/payload@${p.digest}`)) {
      throw new VerifyError(
        `${name}: pulled image's repo digests ${repoDigests.join(',')} do not hold the pushed ${p.digest}`,
      );
    }
    (times[name] ??= []).push(seconds);
    const rate = mbPerSecond(totalBytes, seconds).toFixed(0);
    process.stderr.write(
      `   ${name.padEnd(4)} pull ${seconds.toFixed(1)} s (${rate} MB/s), ${got.length} layers checked\n`,
    );
  }
  for (const name of fronted.order) {
    const seconds = percentile(times[name] ?? [], 50);
    Object.assign(figures[name] ?? {}, { pullSeconds: seconds, pullMBps: mbPerSecond(totalBytes, seconds) });
  }
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
    description: describePhase(sizes, input.bcryptCost),
    order,
    metrics: [],
    resources: {},
    errors: {},
  };
  process.stderr.write(`\n== ${title}\n`);
  const configDir = join(workDir, 'docker-config');
  const docker = dockerCli(configDir);
  const figures: Figures = { ours: {}, ref: {} };
  let stack: BenchStack | undefined;
  try {
    await requireImages(TRAEFIK_IMAGE, BASE_IMAGE);
    await mkdir(configDir, { recursive: true });
    const layers = await buildPayload(docker, workDir, sizes);
    stack = await initBenchStack(input.repoRoot, join(workDir, 'docker-stack'), PROJECT, OURS_IMAGE);
    await startOurs(stack, input.repoRoot, input.bcryptCost);
    const fronted = await startReferenceAndProxy(docker, stack, workDir, order);
    const pushed = await pushEach(fronted, stack, totalBytes, figures);
    await pullEach(fronted, pushed, layers, totalBytes, figures);
    await removePayload(fronted);
    await recordResources(docker, result);
  } catch (err) {
    const text = errorText(err);
    for (const name of order) if (Object.keys(figures[name] ?? {}).length < METRICS.length) result.errors[name] = text;
    process.stderr.write(`   FAILED ${text}\n`);
  } finally {
    await teardown(docker, stack, configDir);
  }
  const pick = (name: RegistryName, id: string): number | undefined =>
    result.errors[name] === undefined ? figures[name]?.[id] : undefined;
  result.metrics = METRICS.map((m) => metric(m, pick('ours', m.id), pick('ref', m.id)));
  return result;
}
