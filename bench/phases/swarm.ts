/**
 * The swarm phase: a swarm stack (`regctl init --mode swarm`) on this single-node swarm, its registry on versitygw
 * and PostgreSQL (both on loopback, reached by the tasks through relays on docker's bridge), measured through its
 * Traefik with one registry replica, then three (`regctl scale`), then one again. Ours only: the figures say what
 * replicas cost or bring on one host, not how we compare with another registry.
 *
 * Two loads, each for `swarmSeconds`: pulls of one large blob from 4 connections (MB/s), and GETs of one manifest
 * by tag from 16 (requests/s). Every response is checked (status, digest header, byte count, content digest).
 * Both one-replica runs are reported; their mean is the figure the three replicas are compared with, so that
 * neither side always has the warmer page cache.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Server } from 'node:net';
import { parseDocument } from 'yaml';
import { randomBuffer } from '../lib/data.js';
import { HttpClient, sha256 } from '../lib/http.js';
import type { RequestOptions, Response } from '../lib/http.js';
import { runForDuration } from '../lib/load.js';
import { metric } from '../lib/model.js';
import type { Metric, MetricSpec, PhaseResult } from '../lib/model.js';
import { startPostgres, type PostgresCluster } from '../lib/postgres.js';
import { bridgeGateway, relay } from '../lib/relay.js';
import {
  OCI_MANIFEST,
  getManifest,
  imageManifest,
  pullBlob,
  pushBlobMonolithic,
  putManifest,
} from '../lib/registry-ops.js';
import { freePort } from '../lib/servers.js';
import type { Sizes } from '../lib/sizes.js';
import { mbPerSecond } from '../lib/stats.js';
import { launchVersitygw, type S3Server } from '../lib/versitygw.js';
import { errorText } from '../lib/phase.js';
import { BASE_IMAGE, TRAEFIK_IMAGE, requireImages } from './stack.js';

const exec = promisify(execFile);

const PROJECT = 'regctl-bench-swarm';
const IMAGE = 'regctl-bench/registry:swarm';
const HOST = 'bench-swarm.test';
const REGISTRY_HOST = `registry.${HOST}`;
const VERSITYGW_BINARY = '/var/cache/regctl-test/bin/versitygw';
const REPO = 'bench/swarm';

export const SWARM_COMMANDS = [
  `regctl init --yes --mode swarm --replicas 1 --no-ui --host ${HOST} --metadata postgres://… --storage s3://BUCKET/registry --s3-endpoint http://BRIDGE:PORT --s3-path-style ... && regctl up --dir STACK   # the swarm stack`,
  'regctl scale --replicas 3 --dir STACK; later regctl scale --replicas 1   # between the timed loads',
  `GET http://127.0.0.1:HTTP_PORT/v2/${REPO}/blobs/DIGEST (Host: ${REGISTRY_HOST})   # 4 connections, through Traefik`,
  `GET http://127.0.0.1:HTTP_PORT/v2/${REPO}/manifests/1 (Host: ${REGISTRY_HOST})   # 16 connections, through Traefik`,
];

type Replicas = 'one' | 'three' | 'oneAgain';

const FIGURES = [
  { id: 'pull', label: 'Blob pull through Traefik, 4 connections', unit: 'MB/s' },
  { id: 'manifest', label: 'Manifest GET by tag through Traefik, 16 connections', unit: 'req/s' },
] as const;

function metricSpecs(): MetricSpec[] {
  return FIGURES.flatMap(({ id, label, unit }) => [
    {
      id: `swarm.one.${id}`,
      label: `${label}, 1 registry replica (mean of the runs before and after)`,
      unit,
      better: 'higher' as const,
    },
    { id: `swarm.three.${id}`, label: `${label}, 3 registry replicas`, unit, better: 'higher' as const },
    {
      id: `swarm.change.${id}`,
      label: `${label}: 3 replicas against 1`,
      unit: '%',
      better: 'higher' as const,
      note: 'positive: three replicas serve more on this host; negative: they cost',
    },
  ]);
}

/** An HttpClient that names the stack's registry host, so Traefik routes the request to it. */
class RoutedClient extends HttpClient {
  override request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return super.request(method, path, { ...options, headers: { ...options.headers, host: REGISTRY_HOST } });
  }
}

async function docker(args: string[]): Promise<string> {
  return (await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

interface Peers {
  pg?: PostgresCluster;
  s3?: S3Server;
  relays: Server[];
  leaveSwarm: boolean;
}

/** The swarm (initialised, and left at the end, when the engine is in none), PostgreSQL and versitygw. */
async function startPeers(peers: Peers, dataRoot: string) {
  const state = await docker(['info', '--format', '{{.Swarm.LocalNodeState}}']);
  if (state !== 'active') {
    await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    peers.leaveSwarm = true;
  }
  peers.pg = await startPostgres();
  const db = await peers.pg.createDatabase();
  peers.s3 = await launchVersitygw(VERSITYGW_BINARY, dataRoot);
  const bucket = await peers.s3.createBucket();
  const gateway = bridgeGateway();
  const pgRelay = await relay(gateway, peers.pg.port);
  const s3Relay = await relay(gateway, Number(new URL(peers.s3.endpoint).port));
  peers.relays.push(pgRelay.server, s3Relay.server);
  return { db, bucket, gateway, pgPort: pgRelay.port, s3Port: s3Relay.port, s3: peers.s3 };
}

async function stopPeers(peers: Peers): Promise<void> {
  for (const r of peers.relays) r.close();
  await peers.s3?.stop().catch(() => undefined);
  await peers.pg?.stop().catch(() => undefined);
  if (peers.leaveSwarm) await docker(['swarm', 'leave', '--force']).catch(() => '');
}

export interface SwarmPhaseInput {
  repoRoot: string;
  workDir: string;
  dataRoot: string;
  sizes: Sizes;
}

export async function swarmPhase(input: SwarmPhaseInput): Promise<PhaseResult> {
  const { repoRoot, workDir, dataRoot, sizes } = input;
  const result: PhaseResult = {
    id: 'swarm',
    title: 'Swarm: one and three registry replicas through Traefik on this host',
    description:
      'A swarm stack on this single-node swarm (S3 on versitygw, PostgreSQL metadata, both on this machine), ' +
      'measured through its Traefik with 1 registry replica, then 3, then 1 again (`regctl scale`). The tasks, ' +
      'Traefik, versitygw, PostgreSQL and the load generator share the 2 cores: three replicas cannot add CPU ' +
      'here, so this row measures the cost of spreading requests over replicas, not the gain of more hosts.',
    order: ['ours'],
    metrics: [],
    resources: {},
    errors: {},
  };
  const figures: Partial<Record<Replicas, Record<string, number>>> = {};
  const peers: Peers = { relays: [], leaveSwarm: false };
  const dir = join(workDir, 'swarm-stack');
  const regctl = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    exec(process.execPath, [join(repoRoot, 'bin/regctl.js'), ...args], {
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
  let client: RoutedClient | undefined;
  try {
    await requireImages(TRAEFIK_IMAGE, BASE_IMAGE);
    const p = await startPeers(peers, dataRoot);
    const httpPort = await freePort();
    // prettier-ignore
    await regctl(['init', '--yes', '--dir', dir, '--name', PROJECT, '--host', HOST, '--mode', 'swarm', '--replicas', '1',
      '--no-ui', '--metadata', `postgres://${p.db.user}@${p.gateway}:${p.pgPort}/${p.db.database}`,
      '--storage', `s3://${p.bucket}/registry`, '--s3-endpoint', `http://${p.gateway}:${p.s3Port}`,
      '--s3-region', p.s3.region, '--s3-path-style', '--http-port', String(httpPort), '--registry-port', '0',
      '--traefik-image', TRAEFIK_IMAGE, '--base-image', BASE_IMAGE],
      { REGCTL_METADATA_PASSWORD: p.db.password, ...p.s3.env() });
    const configFile = join(dir, 'regctl.yaml');
    const doc = parseDocument(await readFile(configFile, 'utf8'));
    doc.setIn(['images', 'registry'], IMAGE);
    await writeFile(configFile, doc.toString());
    await regctl(['init', '--yes', '--force', '--dir', dir]);
    const env = await readFile(join(dir, '.env'), 'utf8');
    const password = /^REGISTRY_PASSWORD=(.*)$/m.exec(env)?.[1]?.replace(/^["']|["']$/g, '');
    if (!password) throw new Error('the stack .env has no REGISTRY_PASSWORD');
    process.stderr.write('   regctl up (swarm, 1 replica)\n');
    await regctl(['up', '--dir', dir]);

    client = new RoutedClient('127.0.0.1', httpPort, { user: 'admin', password }, 32);
    const blob = randomBuffer(sizes.swarmBlobBytes);
    const blobDigest = sha256(blob);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }));
    await pushBlobMonolithic(client, REPO, config, sha256(config));
    await pushBlobMonolithic(client, REPO, blob, blobDigest);
    const manifest = imageManifest({ digest: sha256(config), size: config.length }, [
      { digest: blobDigest, size: blob.length },
    ]);
    const manifestDigest = await putManifest(client, REPO, '1', manifest, OCI_MANIFEST);
    const c = client;
    const measure = async (replicas: Replicas) => {
      // A few untimed requests first, so that each replica has its connections and caches.
      for (let i = 0; i < 6; i++) await getManifest(c, REPO, '1', manifestDigest);
      const pull = await runForDuration(4, sizes.swarmSeconds * 1000, () => pullBlob(c, REPO, blobDigest, blob.length));
      const get = await runForDuration(16, sizes.swarmSeconds * 1000, () => getManifest(c, REPO, '1', manifestDigest));
      figures[replicas] = {
        pull: mbPerSecond(pull.requests * blob.length, pull.seconds),
        manifest: get.requestsPerSecond,
      };
      process.stderr.write(
        `   ${replicas}: pull ${figures[replicas].pull!.toFixed(0)} MB/s, manifest GET ${get.requestsPerSecond.toFixed(0)} req/s\n`,
      );
    };
    const scaleTo = async (n: number) => {
      await regctl(['scale', '--replicas', String(n), '--dir', dir]);
      // Traefik's Swarm provider polls the task list: give it a few refreshes to see the new set.
      await new Promise((r) => setTimeout(r, 8_000));
    };
    await measure('one');
    await scaleTo(3);
    await measure('three');
    await scaleTo(1);
    await measure('oneAgain');
  } catch (err) {
    result.errors.ours = errorText(err);
    process.stderr.write(`   FAILED ${errorText(err)}\n`);
  } finally {
    client?.close();
    await regctl(['down', '--dir', dir, '--volumes', '--yes']).catch(() => undefined);
    await docker(['rmi', '-f', IMAGE]).catch(() => '');
    await stopPeers(peers);
  }
  result.metrics = swarmMetrics(figures);
  return result;
}

/** The reported metrics from the three runs' figures; a figure missing from any run leaves its rows empty. */
export function swarmMetrics(figures: Partial<Record<Replicas, Record<string, number>>>): Metric[] {
  const specs = metricSpecs();
  const spec = (id: string) => specs.find((s) => s.id === id) as MetricSpec;
  return FIGURES.flatMap(({ id }) => {
    const a = figures.one?.[id];
    const b = figures.oneAgain?.[id];
    const three = figures.three?.[id];
    const one = a !== undefined && b !== undefined ? (a + b) / 2 : undefined;
    const change = one !== undefined && three !== undefined && one > 0 ? ((three - one) / one) * 100 : undefined;
    const oneSpec = spec(`swarm.one.${id}`);
    const runs = a !== undefined && b !== undefined ? `; runs: ${a.toFixed(1)} before, ${b.toFixed(1)} after` : '';
    return [
      metric({ ...oneSpec, note: `mean of the two one-replica runs${runs}` }, one, undefined),
      metric(spec(`swarm.three.${id}`), three, undefined),
      metric(spec(`swarm.change.${id}`), change, undefined),
    ];
  });
}
