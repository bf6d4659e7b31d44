/**
 * An in-memory `SwarmEngine` for unit tests of `src/ops`: services, secrets and configs as plain objects, every
 * mutating call recorded in the owning FakeEngine's `calls` (e.g. `service-create:proj_registry`). A created or
 * updated service gets `replicas` running tasks at once, unless `taskState` says otherwise for it.
 */
import { Readable } from 'node:stream';
import {
  EngineError,
  type LogOptions,
  type SwarmEngine,
  type SwarmObjectInfo,
  type SwarmServiceInfo,
  type SwarmServiceSpec,
  type SwarmState,
  type SwarmTaskInfo,
} from './engine.js';

interface FakeService {
  id: string;
  spec: SwarmServiceSpec;
  version: number;
  updated: boolean;
}

const matches = (labels: Record<string, string>, wanted: Record<string, string>) =>
  Object.entries(wanted).every(([k, v]) => labels[k] === v);

export class FakeSwarm implements SwarmEngine {
  /** What `state()` answers: a one-node swarm whose node is a manager, unless a test changes it. */
  swarmState: SwarmState | undefined = { nodeId: 'node-1', manager: true, nodes: 1 };
  readonly secrets = new Map<string, { data: Buffer; labels: Record<string, string> }>();
  readonly configs = new Map<string, { data: Buffer; labels: Record<string, string> }>();
  readonly services = new Map<string, FakeService>();
  /** Service name → the state its tasks are in (default running). */
  readonly taskState = new Map<string, string>();
  /** Service name → the state of its last update (default completed once updated). */
  readonly updateState = new Map<string, SwarmServiceInfo['updateState']>();
  /**
   * Service name → how many more `listTasks` calls still show the tasks of the spec before the last update (the
   * engine starts an update a moment after accepting it).
   */
  readonly taskLag = new Map<string, number>();
  private readonly previous = new Map<string, SwarmServiceSpec>();
  /** Service name → its log text (lines are prefixed with `<key>.<slot> | ` as the real one does). */
  readonly logText = new Map<string, string>();
  private seq = 0;

  constructor(
    private readonly networks: Map<string, Record<string, string>>,
    private readonly record: (key: string) => void,
  ) {}

  async state(): Promise<SwarmState | undefined> {
    return this.swarmState;
  }

  async ensureOverlayNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    if (this.networks.has(name)) return false;
    this.record(`network:${name}`);
    this.networks.set(name, labels);
    return true;
  }

  private list(
    map: Map<string, { labels: Record<string, string> }>,
    labels: Record<string, string>,
  ): SwarmObjectInfo[] {
    return [...map.entries()]
      .filter(([, o]) => matches(o.labels, labels))
      .map(([name, o]) => ({ id: `id-${name}`, name, labels: o.labels }));
  }

  async listSecrets(labels: Record<string, string>): Promise<SwarmObjectInfo[]> {
    return this.list(this.secrets, labels);
  }
  async createSecret(name: string, data: Buffer, labels: Record<string, string>): Promise<void> {
    this.record(`secret-create:${name}`);
    if (this.secrets.has(name)) throw new EngineError(`secret ${name} already exists`, 409);
    this.secrets.set(name, { data, labels });
  }
  async removeSecret(name: string): Promise<boolean> {
    if (!this.secrets.has(name)) return false;
    this.inUse('secret', name, (s) => s.secrets);
    this.record(`secret-remove:${name}`);
    return this.secrets.delete(name);
  }
  async listConfigs(labels: Record<string, string>): Promise<SwarmObjectInfo[]> {
    return this.list(this.configs, labels);
  }
  async createConfig(name: string, data: Buffer, labels: Record<string, string>): Promise<void> {
    this.record(`config-create:${name}`);
    if (this.configs.has(name)) throw new EngineError(`config ${name} already exists`, 409);
    this.configs.set(name, { data, labels });
  }
  async removeConfig(name: string): Promise<boolean> {
    if (!this.configs.has(name)) return false;
    this.inUse('config', name, (s) => s.configs);
    this.record(`config-remove:${name}`);
    return this.configs.delete(name);
  }

  /** The engine refuses to remove a secret or config a service still uses. */
  private inUse(kind: string, name: string, refs: (s: SwarmServiceSpec) => { name: string }[]): void {
    for (const s of this.services.values())
      if (refs(s.spec).some((r) => r.name === name))
        throw new EngineError(`${kind} ${name} is in use by service ${s.spec.name}`, 400);
  }

  private info(s: FakeService): SwarmServiceInfo {
    const updateState = this.updateState.get(s.spec.name) ?? (s.updated ? 'completed' : undefined);
    return {
      id: s.id,
      name: s.spec.name,
      version: s.version,
      labels: s.spec.labels,
      image: s.spec.image,
      replicas: s.spec.replicas,
      ...(updateState ? { updateState } : {}),
    };
  }

  async listServices(labels: Record<string, string>): Promise<SwarmServiceInfo[]> {
    return [...this.services.values()].filter((s) => matches(s.spec.labels, labels)).map((s) => this.info(s));
  }
  async inspectService(name: string): Promise<SwarmServiceInfo | undefined> {
    const s = this.services.get(name);
    return s ? this.info(s) : undefined;
  }

  private checkRefs(spec: SwarmServiceSpec): void {
    for (const r of spec.secrets)
      if (!this.secrets.has(r.name)) throw new EngineError(`secret ${r.name} not found`, 404);
    for (const r of spec.configs)
      if (!this.configs.has(r.name)) throw new EngineError(`config ${r.name} not found`, 404);
    if (!this.networks.has(spec.network)) throw new EngineError(`network ${spec.network} not found`, 404);
  }

  async createService(spec: SwarmServiceSpec): Promise<void> {
    this.record(`service-create:${spec.name}`);
    if (this.services.has(spec.name)) throw new EngineError(`service ${spec.name} already exists`, 409);
    this.checkRefs(spec);
    this.services.set(spec.name, { id: `svc${++this.seq}`, spec: structuredClone(spec), version: 1, updated: false });
  }
  async updateService(name: string, version: number, spec: SwarmServiceSpec): Promise<void> {
    this.record(`service-update:${name}`);
    const s = this.services.get(name);
    if (!s) throw new EngineError(`service ${name} not found`, 404);
    if (s.version !== version) throw new EngineError(`update out of sequence`, 500);
    this.checkRefs(spec);
    this.previous.set(name, s.spec);
    Object.assign(s, { spec: structuredClone(spec), version: version + 1, updated: true });
  }
  async scaleService(name: string, replicas: number): Promise<void> {
    this.record(`service-scale:${name}=${replicas}`);
    const s = this.services.get(name);
    if (!s) throw new EngineError(`service ${name} not found`, 404);
    s.spec.replicas = replicas;
    s.version += 1;
  }
  async removeService(name: string): Promise<boolean> {
    if (!this.services.has(name)) return false;
    this.record(`service-remove:${name}`);
    return this.services.delete(name);
  }
  async listTasks(serviceName: string): Promise<SwarmTaskInfo[]> {
    const s = this.services.get(serviceName);
    if (!s) return [];
    const state = this.taskState.get(serviceName) ?? 'running';
    const lag = this.taskLag.get(serviceName) ?? 0;
    if (lag > 0) this.taskLag.set(serviceName, lag - 1);
    const spec = lag > 0 ? (this.previous.get(serviceName) ?? s.spec) : s.spec;
    return Array.from({ length: s.spec.replicas }, (_, i) => ({
      id: `${s.id}-task${i + 1}`,
      serviceName,
      slot: i + 1,
      nodeId: 'node-1',
      state,
      desiredState: 'running',
      containerLabels: { ...spec.containerLabels },
    }));
  }
  async serviceLogs(name: string, _options?: LogOptions): Promise<Readable> {
    return Readable.from([this.logText.get(name) ?? '']);
  }
}
