import Docker from 'dockerode';
import { Readable } from 'node:stream';
import { RegctlError } from '../common/errors.js';
import {
  EngineError,
  type BuildRequest,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerState,
  type DockerEngine,
  type ImageInfo,
  type LogOptions,
  type PortBinding,
  type EngineInfo,
  type SwarmEngine,
} from './engine.js';
import { demuxDockerStream } from './demux.js';
import { DockerodeSwarm } from './dockerode-swarm.js';

interface EngineTarget {
  options: Docker.DockerOptions;
  /** What we tried to reach, for error messages. */
  describe: string;
}

/** Where the engine is: `DOCKER_HOST` (unix:// or tcp://) or the default socket. */
export function engineTarget(env: NodeJS.ProcessEnv = process.env): EngineTarget {
  const host = env.DOCKER_HOST?.trim();
  if (!host) return { options: { socketPath: '/var/run/docker.sock' }, describe: 'unix:///var/run/docker.sock' };
  if (host.startsWith('unix://')) return { options: { socketPath: host.slice('unix://'.length) }, describe: host };
  if (host.startsWith('tcp://') || host.startsWith('http://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    return { options: { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' }, describe: host };
  }
  throw new RegctlError('DOCKER_UNREACHABLE', `unsupported DOCKER_HOST ${host}`, {
    hint: 'use unix:///path/to/docker.sock or tcp://host:port',
  });
}

interface DockerodeError {
  statusCode?: number;
  code?: string;
  syscall?: string;
  message?: string;
  json?: { message?: string } | null;
}

const CONNECT_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT']);

function asDockerodeError(err: unknown): DockerodeError {
  return err && typeof err === 'object' ? err : { message: String(err) };
}

function engineMessage(err: DockerodeError): string {
  const fromJson = err.json && typeof err.json === 'object' ? err.json.message : undefined;
  return (fromJson ?? err.message ?? 'unknown engine error').replace(/^\(HTTP code \d+\) [a-z ]+ - /, '').trim();
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function portKey(port: number): string {
  return `${port}/tcp`;
}

const STATES: ReadonlySet<string> = new Set([
  'created',
  'running',
  'paused',
  'restarting',
  'removing',
  'exited',
  'dead',
]);

export class DockerodeEngine implements DockerEngine {
  readonly docker: Docker;
  private readonly target: EngineTarget;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.target = engineTarget(env);
    this.docker = new Docker(this.target.options);
  }

  /** Runs one Engine API call; maps "no engine" to DOCKER_UNREACHABLE and 404 to `undefined` when asked. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(what, err);
    }
  }

  private async lookup<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (asDockerodeError(err).statusCode === 404) return undefined;
      throw this.mapError(what, err);
    }
  }

  private mapError(what: string, err: unknown): Error {
    if (err instanceof RegctlError) return err;
    const e = asDockerodeError(err);
    if (e.code && CONNECT_CODES.has(e.code)) {
      const permission = e.code === 'EACCES' || e.code === 'EPERM';
      return new RegctlError(
        'DOCKER_UNREACHABLE',
        `no Docker engine reachable at ${this.target.describe} (${e.code})`,
        {
          hint: permission
            ? 'no permission on the Docker socket: run as root or add your user to the docker group'
            : 'start the Docker daemon (systemctl start docker, or dockerd), or point DOCKER_HOST at a running engine',
          cause: err,
        },
      );
    }
    return new EngineError(`${what}: ${engineMessage(e)}`, e.statusCode, err);
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  async swarm(): Promise<SwarmEngine> {
    return new DockerodeSwarm(
      this.docker,
      (what, fn) => this.call(what, fn),
      (what, fn) => this.lookup(what, fn),
    );
  }

  async networkExists(name: string): Promise<boolean> {
    return (await this.lookup('inspect network', () => this.docker.getNetwork(name).inspect())) !== undefined;
  }

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    if (await this.networkExists(name)) return false;
    await this.call(`create network ${name}`, () =>
      this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, CheckDuplicate: true }),
    );
    return true;
  }

  async removeNetwork(name: string): Promise<boolean> {
    const removed = await this.lookup<unknown>(`remove network ${name}`, () => this.docker.getNetwork(name).remove());
    return removed !== undefined;
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<boolean> {
    const existing = await this.lookup('inspect volume', () => this.docker.getVolume(name).inspect());
    if (existing) return false;
    await this.call(`create volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: labels }));
    return true;
  }

  async removeVolume(name: string): Promise<boolean> {
    const removed = await this.lookup<unknown>(`remove volume ${name}`, () => this.docker.getVolume(name).remove());
    return removed !== undefined;
  }

  async listVolumes(labels: Record<string, string>): Promise<string[]> {
    const res = await this.call('list volumes', () =>
      this.docker.listVolumes({ filters: { label: labelFilters(labels) } }),
    );
    return (res.Volumes ?? []).map((v) => v.Name).sort();
  }

  async volumeSize(name: string): Promise<number | undefined> {
    const df = (await this.call('disk usage', () => this.docker.df())) as {
      Volumes?: { Name: string; UsageData?: { Size?: number } | null }[];
    };
    const size = df.Volumes?.find((v) => v.Name === name)?.UsageData?.Size;
    return typeof size === 'number' && size >= 0 ? size : undefined;
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    const info = await this.lookup('inspect image', () => this.docker.getImage(ref).inspect());
    if (!info) return undefined;
    return { id: info.Id, labels: info.Config?.Labels ?? {} };
  }

  async buildImage(request: BuildRequest, onProgress: (line: string) => void): Promise<ImageInfo> {
    const stream = await this.call(`build ${request.tag}`, () =>
      this.docker.buildImage(request.context, {
        t: request.tag,
        dockerfile: request.dockerfile,
        buildargs: request.buildArgs,
        labels: request.labels,
        rm: true,
        forcerm: true,
      }),
    );
    await this.follow(stream, `build ${request.tag}`, onProgress);
    const info = await this.inspectImage(request.tag);
    if (!info) throw new EngineError(`build ${request.tag}: the engine reported success but the image is missing`);
    return info;
  }

  async pullImage(ref: string, onProgress: (line: string) => void): Promise<void> {
    const stream = await this.call(`pull ${ref}`, () => this.docker.pull(ref));
    await this.follow(stream, `pull ${ref}`, onProgress);
  }

  async removeImageIfUnused(id: string): Promise<boolean> {
    try {
      await this.docker.getImage(id).remove({ noprune: false });
      return true;
    } catch (err) {
      const code = asDockerodeError(err).statusCode;
      if (code === 404 || code === 409) return false;
      throw this.mapError(`remove image ${id}`, err);
    }
  }

  /** Reads a build or pull JSON-lines stream to its end; an `error` line fails the whole operation. */
  private follow(stream: NodeJS.ReadableStream, what: string, onProgress: (line: string) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let failure: string | undefined;
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          if (err) reject(new EngineError(`${what}: ${err.message}`, undefined, err));
          else if (failure) reject(new EngineError(`${what}: ${failure}`));
          else resolve();
        },
        (event: {
          stream?: string;
          status?: string;
          progress?: string;
          id?: string;
          error?: string;
          errorDetail?: { message?: string };
        }) => {
          if (event.error || event.errorDetail) {
            failure = (event.errorDetail?.message ?? event.error ?? 'failed').trim();
            return;
          }
          const text = event.stream ?? [event.id, event.status, event.progress].filter(Boolean).join(' ');
          for (const line of text.split('\n')) if (line.trim()) onProgress(line.trimEnd());
        },
      );
    });
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp?: string; HostPort: string }[]> = {};
    for (const p of spec.ports) {
      exposed[portKey(p.containerPort)] = {};
      (bindings[portKey(p.containerPort)] ??= []).push({
        ...(p.hostIp ? { HostIp: p.hostIp } : {}),
        HostPort: String(p.hostPort),
      });
    }
    const options: Docker.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      ExposedPorts: exposed,
      HostConfig: {
        PortBindings: bindings,
        Mounts: spec.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
        RestartPolicy: { Name: spec.restart },
        NetworkMode: spec.network,
      },
      NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: spec.aliases } } },
    };
    if (spec.command) options.Cmd = spec.command;
    if (spec.healthcheck) {
      const ns = 1_000_000;
      options.Healthcheck = {
        Test: spec.healthcheck.test,
        Interval: spec.healthcheck.intervalMs * ns,
        Timeout: spec.healthcheck.timeoutMs * ns,
        Retries: spec.healthcheck.retries,
        StartPeriod: spec.healthcheck.startPeriodMs * ns,
      };
    }
    const container = await this.call(`create container ${spec.name}`, () => this.docker.createContainer(options));
    return container.id;
  }

  async startContainer(name: string): Promise<void> {
    await this.call(`start ${name}`, () => this.docker.getContainer(name).start());
  }

  async stopContainer(name: string, timeoutSeconds = 10): Promise<void> {
    try {
      await this.docker.getContainer(name).stop({ t: timeoutSeconds });
    } catch (err) {
      const code = asDockerodeError(err).statusCode;
      if (code === 304 || code === 404) return;
      throw this.mapError(`stop ${name}`, err);
    }
  }

  async removeContainer(name: string): Promise<boolean> {
    const removed = await this.lookup<unknown>(`remove ${name}`, () =>
      this.docker.getContainer(name).remove({ force: true, v: true }),
    );
    return removed !== undefined;
  }

  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    const info = await this.lookup(`inspect ${name}`, () => this.docker.getContainer(name).inspect());
    if (!info) return undefined;
    const ports: PortBinding[] = [];
    const bindings = (info.HostConfig?.PortBindings ?? {}) as Record<
      string,
      { HostIp?: string; HostPort?: string }[] | null
    >;
    for (const [key, list] of Object.entries(bindings)) {
      const containerPort = Number(key.split('/')[0]);
      for (const b of list ?? []) {
        ports.push({ ...(b.HostIp ? { hostIp: b.HostIp } : {}), hostPort: Number(b.HostPort), containerPort });
      }
    }
    const status = info.State?.Status ?? 'dead';
    const health = info.State?.Health?.Status;
    const result: ContainerInfo = {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config?.Image ?? '',
      imageId: info.Image,
      labels: info.Config?.Labels ?? {},
      state: (STATES.has(status) ? status : 'dead') as ContainerState,
      exitCode: info.State?.ExitCode,
      ports,
    };
    if (health === 'starting' || health === 'healthy' || health === 'unhealthy') result.health = health;
    if (info.State?.StartedAt) result.startedAt = info.State.StartedAt;
    return result;
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) } }),
    );
    const out: ContainerInfo[] = [];
    for (const summary of list) {
      const info = await this.inspectContainer(summary.Id);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async engineInfo(): Promise<EngineInfo> {
    const info = (await this.call('engine info', () => this.docker.info())) as {
      RegistryConfig?: {
        InsecureRegistryCIDRs?: string[];
        IndexConfigs?: Record<string, { Name: string; Secure: boolean }>;
      };
      SystemTime?: string;
      ServerVersion?: string;
    };
    const indexConfigs = Object.values(info.RegistryConfig?.IndexConfigs ?? {});
    return {
      insecureCidrs: info.RegistryConfig?.InsecureRegistryCIDRs ?? [],
      insecureRegistries: indexConfigs.filter((c) => !c.Secure).map((c) => c.Name),
      ...(info.SystemTime ? { systemTime: info.SystemTime } : {}),
      ...(info.ServerVersion ? { serverVersion: info.ServerVersion } : {}),
    };
  }

  async volumeMountpoint(name: string): Promise<string | undefined> {
    const v = await this.lookup('inspect volume', () => this.docker.getVolume(name).inspect());
    return v?.Mountpoint || undefined;
  }

  async logs(name: string, options: LogOptions = {}): Promise<Readable> {
    const container = this.docker.getContainer(name);
    const base = {
      stdout: true,
      stderr: true,
      timestamps: options.timestamps ?? false,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
    };
    if (options.follow) {
      const raw = (await this.call(`logs ${name}`, () =>
        container.logs({ ...base, follow: true }),
      )) as unknown as Readable;
      const out = demuxDockerStream(raw);
      options.signal?.addEventListener(
        'abort',
        () => {
          raw.destroy();
          out.end();
        },
        { once: true },
      );
      return out;
    }
    const buf = await this.call(`logs ${name}`, () => container.logs({ ...base, follow: false }));
    return demuxDockerStream(Readable.from([Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf))]));
  }
}

export function createDockerEngine(env: NodeJS.ProcessEnv = process.env): DockerEngine {
  return new DockerodeEngine(env);
}
