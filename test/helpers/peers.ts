import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

import { parse as parseYaml } from 'yaml';

/**
 * Where the test peers live on this machine, as `test/setup/provision.sh` installs them.
 *
 * Go-built peers sit in PEERS_DIR (REGCTL_PEERS_DIR, default /var/cache/regctl-test/bin); system peers
 * come from Debian packages and are found on PATH. Under `CI=true` a missing peer is an error, never a skip.
 */
export const PEERS_DIR = process.env.REGCTL_PEERS_DIR ?? '/var/cache/regctl-test/bin';

/** Real Traefik v3.6.x built from the Go module proxy, imported as a local image (entrypoint /traefik). */
export const TRAEFIK_IMAGE = 'regctl-test/traefik:v3.6';
/** Base image made from the machine's node: /usr/bin/node, its libraries, CA certificates, user node (1000), busybox sh. */
export const BASE_IMAGE = 'regctl-test/node:20';
/** The trial services' images (a swarm stack's `trial:`), made from Debian's PostgreSQL 15 and the versitygw peer. */
export const TRIAL_POSTGRES_IMAGE = 'regctl-test/postgres:15';
export const TRIAL_S3_IMAGE = 'regctl-test/versitygw:v1.8.0';

/** Peers built with Go into PEERS_DIR. `regclient` is regclient's CLI (upstream name `regctl`). */
export const GO_PEERS = [
  'crane',
  'oras',
  'regclient',
  'conformance',
  'registry-v3',
  'traefik',
  'actionlint',
  'versitygw',
  'cosign',
  'notation',
] as const;
/**
 * Peers from Debian packages; `chromium` is Debian's build, the only browser the tests use; `ctr` is containerd's
 * client, talking to the containerd that dockerd runs.
 */
export const SYSTEM_PEERS = [
  'docker',
  'dockerd',
  'ctr',
  'docker-compose',
  'skopeo',
  'podman',
  'docker-registry',
  'pebble',
  'chromium',
  'openssl',
  'groovy',
  'htpasswd',
] as const;

export type GoPeer = (typeof GO_PEERS)[number];
export type SystemPeer = (typeof SYSTEM_PEERS)[number];
export type PeerName = GoPeer | SystemPeer;

const SYSTEM_PATHS: Partial<Record<SystemPeer, string>> = {
  chromium: '/usr/bin/chromium',
  'docker-registry': '/usr/bin/docker-registry',
  pebble: '/usr/bin/pebble',
  htpasswd: '/usr/bin/htpasswd',
};

export const IN_CI = process.env.CI === 'true';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(command: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/local/bin', '/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    const candidate = join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isGoPeer(name: PeerName): name is GoPeer {
  return (GO_PEERS as readonly string[]).includes(name);
}

/** The path a peer is expected at. It may not exist: see `peerAvailable` and `requirePeer`. */
export function peerPath(name: PeerName): string {
  if (isGoPeer(name)) return join(PEERS_DIR, name);
  const fixed = SYSTEM_PATHS[name];
  if (fixed !== undefined) return fixed;
  return findOnPath(name) ?? join('/usr/bin', name);
}

function missingMessage(name: PeerName): string {
  return `test peer '${name}' is missing (expected an executable at ${peerPath(name)}); run: bash test/setup/provision.sh`;
}

/** The peer's path; throws when it is missing under CI=true, and also outside CI (callers that can skip use peerAvailable). */
export function requirePeer(name: PeerName): string {
  const path = peerPath(name);
  if (!isExecutable(path)) throw new Error(missingMessage(name));
  return path;
}

const reportedSkips = new Set<string>();

function reportSkip(what: string, reason: string): void {
  if (reportedSkips.has(what)) return;
  reportedSkips.add(what);
  process.stderr.write(`skipping tests that need ${what}: ${reason}\n`);
}

/**
 * For `describe.skipIf(!peerAvailable('crane'))`. Prints why it is skipped; under CI=true a missing peer throws,
 * so nothing is skipped silently there.
 */
export function peerAvailable(name: PeerName): boolean {
  if (isExecutable(peerPath(name))) return true;
  if (IN_CI) throw new Error(missingMessage(name));
  reportSkip(name, missingMessage(name));
  return false;
}

/**
 * For a precondition that is not a peer (root for mounts, the built CLI): true when `met`; otherwise prints why
 * the tests are skipped, and under CI=true throws, as for a missing peer.
 */
export function preconditionMet(what: string, met: boolean, howToFix: string): boolean {
  if (met) return true;
  const reason = `${what}: ${howToFix}`;
  if (IN_CI) throw new Error(`missing test precondition, ${reason}`);
  reportSkip(what, reason);
  return false;
}

let dockerAnswered: boolean | undefined;

/** True when the docker CLI reaches a running engine. Under CI=true a silent engine throws. */
export function dockerAvailable(): boolean {
  if (dockerAnswered === undefined) {
    const docker = findOnPath('docker');
    dockerAnswered =
      docker !== undefined &&
      (() => {
        try {
          execFileSync(docker, ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 20_000 });
          return true;
        } catch {
          return false;
        }
      })();
  }
  if (dockerAnswered) return true;
  const reason = 'no docker engine answers `docker info`; start dockerd or run: bash test/setup/provision.sh';
  if (IN_CI) throw new Error(reason);
  reportSkip('docker', reason);
  return false;
}

/** True when the local image exists (docker must answer). Under CI=true a missing image throws. */
export function imageAvailable(image: string): boolean {
  if (!dockerAvailable()) return false;
  try {
    execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', image], { stdio: 'pipe', timeout: 20_000 });
    return true;
  } catch {
    const reason = `image ${image} is missing; run: bash test/setup/provision.sh`;
    if (IN_CI) throw new Error(reason);
    reportSkip(image, reason);
    return false;
  }
}

export { freePort } from './ports.js';

/**
 * The IPv4 address of docker's default bridge on this host (usually 172.17.0.1 on docker0): containers on
 * any local docker network reach host services listening there, and the host reaches it too.
 */
export function dockerBridgeGateway(): string {
  const docker = requirePeer('docker');
  const out = execFileSync(
    docker,
    [
      'network',
      'inspect',
      'bridge',
      '--format',
      '{{range .IPAM.Config}}{{.Gateway}} {{end}}|{{index .Options "com.docker.network.bridge.name"}}',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 },
  ).trim();
  const [gateways = '', bridgeName = ''] = out.split('|');
  const gateway = gateways.split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (gateway !== undefined) return gateway;
  // docker 20.10 leaves the default bridge's IPAM gateway empty: read the bridge interface instead (with
  // `ip`, since node lists only interfaces that are up, and docker0 is down while no container runs)
  const iface = bridgeName !== '' && bridgeName !== '<no value>' ? bridgeName : 'docker0';
  const addr = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', iface], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
  const address = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(addr)?.[1];
  if (address === undefined) throw new Error(`docker's default bridge (${iface}) has no IPv4 address`);
  return address;
}

/** Outcome of one run of the OCI distribution-spec conformance program. */
export interface ConformanceRun {
  /** The program's exit code: 0 when every enabled check passed, 1 when one failed. */
  exitCode: number;
  /** Per-API and per-data results from results.yaml, e.g. apis['Manifest put by tag'] === 'Pass'. */
  apis: Record<string, string>;
  data: Record<string, string>;
  /** Directory holding results.yaml, junit.xml and report.html. */
  resultsDir: string;
  /** stdout and stderr (the summary table and warnings for each failed check). */
  output: string;
  /** The program's warning for each failed check (its name and error), in the order they failed. */
  failures: string[];
}

export interface ConformanceOptions {
  /** host:port of the registry under test. */
  registry: string;
  /** 'disabled' (http), 'insecure' (https, any certificate) or 'enabled' (https, verified). Default 'disabled'. */
  tls?: 'disabled' | 'insecure' | 'enabled';
  username?: string;
  password?: string;
  /** Where the reports go (created); a caller removes it. */
  resultsDir: string;
  /** Further OCI_* settings, e.g. { OCI_REPO1: 'conf/one', OCI_DATA_SHA512: 'false' }. */
  env?: Record<string, string>;
}

/** What a failing run's assertion message shows: the failed checks with their errors, else the output's tail. */
export function failureReport(run: ConformanceRun): string {
  return run.failures.join('\n') || run.output.slice(-6000);
}

/** The optional parts of the spec our registry implements, switched on for every conformance run against it. */
export const OUR_CONFORMANCE_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
  OCI_API_MANIFESTS_TAG_PARAM: 'true',
  OCI_API_BLOBS_DIGEST_HEADER: 'true',
  OCI_API_MANIFESTS_DIGEST_HEADER: 'true',
  OCI_API_BLOBS_MOUNT_ANONYMOUS: 'true',
  OCI_DATA_SPARSE: 'false',
});

/**
 * Runs the conformance program (configured only through OCI_* variables, see its README) and reads its
 * results.yaml. The program exits 0 without any report when its own setup fails, so a missing report is
 * an error here.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceRun> {
  const bin = requirePeer('conformance');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    OCI_REGISTRY: options.registry,
    OCI_TLS: options.tls ?? 'disabled',
    OCI_USERNAME: options.username ?? '',
    OCI_PASSWORD: options.password ?? '',
    OCI_RESULTS_DIR: options.resultsDir,
    ...options.env,
  };
  await mkdir(options.resultsDir, { recursive: true });
  // cwd is the (fresh) results dir so no stray oci-conformance.yaml is picked up
  const { exitCode, output } = await new Promise<{ exitCode: number; output: string }>((resolve) => {
    execFile(
      bin,
      [],
      { env, cwd: options.resultsDir, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ exitCode: code, output: `${stdout}${stderr}` });
      },
    );
  });
  let text: string;
  try {
    text = await readFile(join(options.resultsDir, 'results.yaml'), 'utf8');
  } catch {
    throw new Error(`conformance wrote no results.yaml (exit ${exitCode}):\n${output.slice(-4_000)}`);
  }
  const results = parseYaml(text) as { apis?: Record<string, string>; data?: Record<string, string> };
  const failures = output.split('\n').filter((line) => line.includes('msg="failed test"'));
  return {
    exitCode,
    apis: results.apis ?? {},
    data: results.data ?? {},
    resultsDir: options.resultsDir,
    output,
    failures,
  };
}
