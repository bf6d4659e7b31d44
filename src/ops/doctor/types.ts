import type { DockerEngine, EngineInfo } from '../../docker/engine.js';
import type { StackConfig } from '../../config/schema.js';
import type { StackModel } from '../../stack/model.js';
import type { ProbeRequest } from '../http-probe.js';
import type { LoadedStack } from '../stack.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** The exact fix, for warn and fail. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  mode: 'dev' | 'prod';
  checks: CheckResult[];
}

export interface DoctorOptions {
  dir: string;
  engine: DockerEngine;
  prod?: boolean;
  /** Also push a slow, large synthetic upload through Traefik (takes over a minute). */
  uploadTest?: boolean;
  /** Address Traefik's published ports are reached on. */
  address?: string;
  platform?: NodeJS.Platform;
  onProgress?: (text: string) => void;
  /** Seconds the synthetic upload lasts (over Traefik's 60 s default read timeout). */
  uploadSeconds?: number;
  /** Bytes of the synthetic upload (over the 100 MB limit common in front of registries). */
  uploadBytes?: number;
  /** The engine's certs.d (default /etc/docker/certs.d), where `regctl login --trust` puts the dev CA. */
  certsDir?: string;
  /** How a host name resolves (default: the system's resolver, as clients on this machine see it). */
  lookup?: (name: string) => Promise<{ address: string }>;
}

/** A check's verdict: its result without the id and title, which the check's table entry carries. */
export type Verdict = Omit<CheckResult, 'id' | 'title'>;

/**
 * What the checks of a loaded stack share: the options, the stack, where its registry is reached, and facts that
 * earlier checks of the table found and later ones build on (so a later check skips with the reason instead of
 * failing again for the same cause).
 */
export interface DoctorContext {
  opts: DoctorOptions;
  engine: DockerEngine;
  platform: NodeJS.Platform;
  /** Address Traefik's published ports are reached on. */
  address: string;
  stack: LoadedStack;
  model: StackModel;
  config: StackConfig;
  mode: 'dev' | 'prod';
  tls: boolean;
  registryHost: string;
  /** Traefik's public port: HTTPS in prod, HTTP in dev. */
  publicPort: number;
  /** What a client sends as Host: the name, with the port when it is not the scheme's default. */
  hostHeader: string;
  /** The registry's and the UI's host names. */
  names: string[];
  /** The admin credentials of `.env`, when present. */
  creds: { username: string; password: string } | undefined;
  /** The engine's info, asked once (rejects when the engine does not answer). */
  engineInfo: () => Promise<EngineInfo>;
  /** The engine's clock now (asked afresh: earlier checks, such as the upload test, may take minutes). */
  engineTime: () => Promise<string | undefined>;
  /** Set by the engine check. */
  engineUp: boolean;
  /** Set by the host-name check: the address the registry's name resolves to. */
  registryIp: string | undefined;
  /** Set by the stack-containers check: Traefik runs. */
  running: boolean;
}

/** One row of the doctor's table. `run` answers undefined when the check does not apply (it is then not listed). */
export interface Check {
  id: string;
  title: string;
  /** Only in this mode; in both when absent. */
  mode?: 'dev' | 'prod';
  run(ctx: DoctorContext): Promise<Verdict | undefined>;
}

/** The message of an unknown thrown value. */
export const messageOf = (err: unknown): string => (err as Error).message;

/** The verdict of a check that needs Traefik up when it is not. */
export const TRAEFIK_NOT_RUNNING: Verdict = { status: 'skip', detail: 'Traefik is not running' };

/**
 * Where a probe of the registry through Traefik goes: its public port and name, over TLS when the stack serves
 * it, accepting any certificate (the certificate has a check of its own).
 */
export function throughTraefik(
  ctx: DoctorContext,
): Pick<ProbeRequest, 'address' | 'port' | 'host' | 'tls' | 'insecure'> {
  return { address: ctx.address, port: ctx.publicPort, host: ctx.registryHost, tls: ctx.tls, insecure: true };
}
