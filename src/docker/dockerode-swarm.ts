/**
 * `SwarmEngine` on dockerode. Engine errors go through the engine's own mapping (`call`, `lookup`), so a missing
 * engine is DOCKER_UNREACHABLE and a 404 is `undefined` here as everywhere.
 */
import type Docker from 'dockerode';
import { PassThrough, Readable } from 'node:stream';
import { demuxDockerStream } from './demux.js';
import type {
  LogOptions,
  SwarmEngine,
  SwarmObjectInfo,
  SwarmServiceInfo,
  SwarmServiceSpec,
  SwarmState,
  SwarmTaskInfo,
  UpdateState,
} from './engine.js';

type Call = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

const MS = 1_000_000;

interface RawObject {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string> | null };
}
interface RawService {
  ID: string;
  Version: { Index: number };
  Spec: Docker.ServiceSpec & { Labels?: Record<string, string>; Name: string };
  UpdateStatus?: { State?: string; Message?: string };
}
interface RawTask {
  ID: string;
  Slot?: number;
  NodeID?: string;
  DesiredState: string;
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> | null } };
  Status: {
    State: string;
    Err?: string;
    Message?: string;
    Timestamp?: string;
    ContainerStatus?: { ContainerID?: string };
  };
}

const labelFilter = (labels: Record<string, string>) => ({
  label: Object.entries(labels).map(([k, v]) => `${k}=${v}`),
});

function objectInfo(o: RawObject): SwarmObjectInfo {
  return { id: o.ID, name: o.Spec.Name, labels: o.Spec.Labels ?? {} };
}

function serviceInfo(s: RawService): SwarmServiceInfo {
  const task: Docker.ContainerTaskSpec | undefined = s.Spec.TaskTemplate;
  return {
    id: s.ID,
    name: s.Spec.Name,
    version: s.Version.Index,
    labels: s.Spec.Labels ?? {},
    image: task?.ContainerSpec?.Image ?? '',
    replicas: s.Spec.Mode?.Replicated?.Replicas ?? 0,
    ...(s.UpdateStatus?.State ? { updateState: s.UpdateStatus.State as UpdateState } : {}),
    ...(s.UpdateStatus?.Message ? { updateMessage: s.UpdateStatus.Message } : {}),
  };
}

export class DockerodeSwarm implements SwarmEngine {
  constructor(
    private readonly docker: Docker,
    private readonly call: Call,
    private readonly lookup: <T>(what: string, fn: () => Promise<T>) => Promise<T | undefined>,
  ) {}

  async state(): Promise<SwarmState | undefined> {
    const info = (await this.call('docker info', () => this.docker.info())) as {
      Swarm?: { NodeID?: string; LocalNodeState?: string; ControlAvailable?: boolean; Nodes?: number };
    };
    const swarm = info.Swarm;
    if (!swarm || swarm.LocalNodeState !== 'active' || !swarm.NodeID) return undefined;
    return { nodeId: swarm.NodeID, manager: swarm.ControlAvailable === true, nodes: swarm.Nodes ?? 1 };
  }

  async ensureOverlayNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    const existing = await this.lookup('inspect network', () => this.docker.getNetwork(name).inspect());
    if (existing) return false;
    await this.call(`create network ${name}`, () =>
      this.docker.createNetwork({
        Name: name,
        Driver: 'overlay',
        Attachable: true,
        Labels: labels,
        CheckDuplicate: true,
      }),
    );
    return true;
  }

  async listSecrets(labels: Record<string, string>): Promise<SwarmObjectInfo[]> {
    const list = (await this.call('list secrets', () =>
      this.docker.listSecrets({ filters: labelFilter(labels) }),
    )) as unknown as RawObject[];
    return list.map(objectInfo);
  }

  async createSecret(name: string, data: Buffer, labels: Record<string, string>): Promise<void> {
    await this.call(`create secret ${name}`, () =>
      this.docker.createSecret({ Name: name, Labels: labels, Data: data.toString('base64') }),
    );
  }

  async removeSecret(name: string): Promise<boolean> {
    return (await this.lookup(`remove secret ${name}`, () => this.docker.getSecret(name).remove())) !== undefined;
  }

  async listConfigs(labels: Record<string, string>): Promise<SwarmObjectInfo[]> {
    const list = (await this.call('list configs', () =>
      this.docker.listConfigs({ filters: labelFilter(labels) }),
    )) as unknown as RawObject[];
    return list.map(objectInfo);
  }

  async createConfig(name: string, data: Buffer, labels: Record<string, string>): Promise<void> {
    await this.call(`create config ${name}`, () =>
      this.docker.createConfig({ Name: name, Labels: labels, Data: data.toString('base64') }),
    );
  }

  async removeConfig(name: string): Promise<boolean> {
    return (await this.lookup(`remove config ${name}`, () => this.docker.getConfig(name).remove())) !== undefined;
  }

  async listServices(labels: Record<string, string>): Promise<SwarmServiceInfo[]> {
    const list = (await this.call('list services', () =>
      this.docker.listServices({ filters: labelFilter(labels) }),
    )) as unknown as RawService[];
    return list.map(serviceInfo);
  }

  async inspectService(name: string): Promise<SwarmServiceInfo | undefined> {
    const raw = (await this.lookup(`inspect service ${name}`, () => this.docker.getService(name).inspect())) as
      RawService | undefined;
    return raw ? serviceInfo(raw) : undefined;
  }

  /** The engine's ServiceSpec of a spec, with secret and config names resolved to their IDs. */
  private async serviceSpec(spec: SwarmServiceSpec): Promise<Docker.ServiceSpec & { Labels: Record<string, string> }> {
    const ids = async (kind: 'secret' | 'config', names: string[]): Promise<Map<string, string>> => {
      if (names.length === 0) return new Map();
      const list = (await this.call<unknown>(`list ${kind}s`, () =>
        kind === 'secret'
          ? this.docker.listSecrets({ filters: { name: names } })
          : this.docker.listConfigs({ filters: { name: names } }),
      )) as RawObject[];
      const map = new Map(list.map((o) => [o.Spec.Name, o.ID]));
      for (const n of names) if (!map.has(n)) throw new Error(`${kind} ${n} does not exist`);
      return map;
    };
    const secretIds = await ids(
      'secret',
      spec.secrets.map((s) => s.name),
    );
    const configIds = await ids(
      'config',
      spec.configs.map((c) => c.name),
    );
    const file = (target: string) => ({ Name: target, UID: '0', GID: '0', Mode: 0o444 });
    const h = spec.healthcheck;
    const update: Docker.UpdateConfig = {
      Parallelism: spec.update.parallelism,
      Delay: spec.update.delayMs * MS,
      FailureAction: spec.update.failureAction,
      Monitor: spec.update.monitorMs * MS,
      MaxFailureRatio: 0,
      Order: spec.update.order,
    };
    return {
      Name: spec.name,
      Labels: spec.labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: spec.image,
          Labels: spec.containerLabels,
          ...(spec.entrypoint ? { Command: spec.entrypoint } : {}),
          ...(spec.command ? { Args: spec.command } : {}),
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          Mounts: spec.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
          Secrets: spec.secrets.map((s) => ({
            SecretID: secretIds.get(s.name),
            SecretName: s.name,
            File: file(s.target),
          })),
          Configs: spec.configs.map((c) => ({
            ConfigID: configIds.get(c.name),
            ConfigName: c.name,
            File: file(c.target),
          })),
          ...(h
            ? {
                HealthCheck: {
                  Test: h.test,
                  Interval: h.intervalMs * MS,
                  Timeout: h.timeoutMs * MS,
                  Retries: h.retries,
                  StartPeriod: h.startPeriodMs * MS,
                },
              }
            : {}),
        },
        RestartPolicy: { Condition: 'any' },
        Placement: { Constraints: spec.constraints },
        Networks: [{ Target: spec.network, Aliases: spec.aliases }],
      },
      Mode: { Replicated: { Replicas: spec.replicas } },
      UpdateConfig: update,
      RollbackConfig: { Parallelism: spec.update.parallelism, Order: spec.update.order, FailureAction: 'pause' },
      EndpointSpec: {
        Mode: spec.endpointMode,
        Ports: spec.ports.map((p) => ({
          Protocol: 'tcp',
          TargetPort: p.target,
          PublishedPort: p.published,
          PublishMode: 'host',
        })),
      },
    };
  }

  async createService(spec: SwarmServiceSpec): Promise<void> {
    const body = await this.serviceSpec(spec);
    await this.call(`create service ${spec.name}`, () => this.docker.createService(body));
  }

  async updateService(name: string, version: number, spec: SwarmServiceSpec): Promise<void> {
    const body = await this.serviceSpec(spec);
    await this.call(`update service ${name}`, () => this.docker.getService(name).update({ version, ...body }));
  }

  async scaleService(name: string, replicas: number): Promise<void> {
    const raw = (await this.call(`inspect service ${name}`, () =>
      this.docker.getService(name).inspect(),
    )) as RawService;
    const spec = { ...raw.Spec, Mode: { Replicated: { Replicas: replicas } } };
    await this.call(`scale service ${name}`, () =>
      this.docker.getService(name).update({ version: raw.Version.Index, ...spec }),
    );
  }

  async removeService(name: string): Promise<boolean> {
    return (await this.lookup(`remove service ${name}`, () => this.docker.getService(name).remove())) !== undefined;
  }

  async listTasks(serviceName: string): Promise<SwarmTaskInfo[]> {
    const list = (await this.call(`list tasks of ${serviceName}`, () =>
      this.docker.listTasks({ filters: { service: [serviceName] } }),
    )) as RawTask[];
    return list.map((t) => ({
      id: t.ID,
      serviceName,
      ...(t.Slot !== undefined ? { slot: t.Slot } : {}),
      nodeId: t.NodeID ?? '',
      state: t.Status.State,
      desiredState: t.DesiredState,
      containerLabels: t.Spec?.ContainerSpec?.Labels ?? {},
      ...(t.Status.ContainerStatus?.ContainerID ? { containerId: t.Status.ContainerStatus.ContainerID } : {}),
      ...(t.Status.Err || t.Status.Message ? { message: t.Status.Err ?? t.Status.Message } : {}),
      ...(t.Status.Timestamp ? { timestamp: t.Status.Timestamp } : {}),
    }));
  }

  async serviceLogs(name: string, options: LogOptions = {}): Promise<Readable> {
    const tasks = new Map((await this.listTasks(name)).map((t) => [t.id, t]));
    const short = name.replace(/^[^_]+_/, '');
    const service = this.docker.getService(name);
    const opts = {
      stdout: true,
      stderr: true,
      details: true,
      timestamps: options.timestamps ?? false,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
    };
    let raw: Readable;
    if (options.follow) {
      raw = (await this.call(`logs ${name}`, () => service.logs({ ...opts, follow: true }))) as unknown as Readable;
      options.signal?.addEventListener('abort', () => raw.destroy(), { once: true });
    } else {
      const buf = (await this.call(`logs ${name}`, () => service.logs({ ...opts, follow: false }))) as unknown as
        Buffer | string;
      raw = Readable.from([Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf))]);
    }
    return prefixByTask(demuxDockerStream(raw), (taskId) => {
      const t = tasks.get(taskId);
      return t?.slot !== undefined ? `${short}.${t.slot}` : `${short}.${taskId.slice(0, 12)}`;
    });
  }
}

/**
 * With `details`, each line starts with the task's attributes (`com.docker.swarm.task.id=…,… message`, after the
 * timestamp when asked for): they become a `<service>.<slot> | ` prefix.
 */
function prefixByTask(source: Readable, nameOf: (taskId: string) => string): Readable {
  const out = new PassThrough();
  let pending = '';
  const emit = (line: string) => {
    const m = /^(\S+ )?(\S*com\.docker\.swarm\.task\.id=([^,\s]+)\S*) (.*)$/.exec(line);
    out.write(m ? `${nameOf(m[3]!)} | ${m[1] ?? ''}${m[4]}\n` : `${line}\n`);
  };
  source.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) emit(l);
  });
  source.on('end', () => {
    if (pending) emit(pending);
    out.end();
  });
  source.on('error', () => out.end());
  source.on('close', () => out.end());
  return out;
}
