/**
 * An in-memory `DockerEngine` for unit tests of `src/ops`. It keeps networks, volumes, images and
 * containers as plain objects, records every mutating call in `calls` (e.g. `create:proj-registry`), and
 * lets a test script failures (`failOn`), the health a started container reaches (`healthOnStart`) and
 * what its log says (`logText`).
 */
import { Readable } from 'node:stream';
import { RegctlError } from '../common/errors.js';
import {
  EngineError,
  type BuildRequest,
  type ContainerInfo,
  type ContainerSpec,
  type DockerEngine,
  type HealthState,
  type ImageInfo,
  type LogOptions,
  type EngineInfo,
  type SwarmEngine,
} from './engine.js';
import { FakeSwarm } from './fake-swarm.js';

interface FakeContainer {
  id: string;
  spec: ContainerSpec;
  info: ContainerInfo;
}

export class FakeEngine implements DockerEngine {
  reachable = true;
  readonly calls: string[] = [];
  readonly networks = new Map<string, Record<string, string>>();
  readonly volumes = new Map<string, { labels: Record<string, string>; size: number }>();
  readonly images = new Map<string, ImageInfo>();
  readonly containers = new Map<string, FakeContainer>();
  /** Images `pullImage` can fetch. */
  readonly pullable = new Set<string>();
  /** Call key (e.g. `start:proj-ui`, `build:regctl:0.1.0`) → error thrown by that call. */
  readonly failOn = new Map<string, Error>();
  /** Container name → health it reports once started (default `healthy` when it has a health check). */
  readonly healthOnStart = new Map<string, HealthState>();
  /** Container name → its log text. */
  readonly logText = new Map<string, string>();
  /** Build contexts received, drained to bytes. */
  readonly buildContexts: Buffer[] = [];
  private seq = 0;
  /** The engine's Swarm API: a one-node swarm with this engine's networks and calls. */
  readonly fakeSwarm = new FakeSwarm(this.networks, (key) => this.record(key));

  private check(key: string): void {
    if (!this.reachable) {
      throw new RegctlError('DOCKER_UNREACHABLE', 'no Docker engine reachable at the fake engine', {
        hint: 'start the Docker daemon',
      });
    }
    const failure = this.failOn.get(key);
    if (failure) throw failure;
  }

  private record(key: string): void {
    this.check(key);
    this.calls.push(key);
  }

  async ping(): Promise<void> {
    this.check('ping');
  }

  async swarm(): Promise<SwarmEngine> {
    this.check('swarm');
    return this.fakeSwarm;
  }

  async networkExists(name: string): Promise<boolean> {
    this.check('inspect-network');
    return this.networks.has(name);
  }

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    this.check(`network:${name}`);
    if (this.networks.has(name)) return false;
    this.record(`network:${name}`);
    this.networks.set(name, labels);
    return true;
  }

  async removeNetwork(name: string): Promise<boolean> {
    if (!this.networks.has(name)) return false;
    const attached = [...this.containers.values()].some((c) => c.spec.network === name);
    if (attached) throw new EngineError(`remove network ${name}: network has active endpoints`, 403);
    this.record(`remove-network:${name}`);
    return this.networks.delete(name);
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<boolean> {
    this.check(`volume:${name}`);
    if (this.volumes.has(name)) return false;
    this.record(`volume:${name}`);
    this.volumes.set(name, { labels, size: 0 });
    return true;
  }

  async removeVolume(name: string): Promise<boolean> {
    if (!this.volumes.has(name)) return false;
    const used = [...this.containers.values()].some((c) =>
      c.spec.mounts.some((m) => m.type === 'volume' && m.source === name),
    );
    if (used) throw new EngineError(`remove volume ${name}: volume is in use`, 409);
    this.record(`remove-volume:${name}`);
    return this.volumes.delete(name);
  }

  async listVolumes(labels: Record<string, string>): Promise<string[]> {
    this.check('list-volumes');
    return [...this.volumes.entries()]
      .filter(([, v]) => matches(v.labels, labels))
      .map(([name]) => name)
      .sort();
  }

  async volumeSize(name: string): Promise<number | undefined> {
    return this.volumes.get(name)?.size;
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    this.check('inspect-image');
    return this.images.get(ref);
  }

  async buildImage(request: BuildRequest, onProgress: (line: string) => void): Promise<ImageInfo> {
    this.record(`build:${request.tag}`);
    const chunks: Buffer[] = [];
    for await (const chunk of request.context) chunks.push(Buffer.from(chunk as Buffer));
    this.buildContexts.push(Buffer.concat(chunks));
    onProgress(`Step 1/1 : FROM ${request.buildArgs.BASE_IMAGE ?? 'base'}`);
    const info: ImageInfo = {
      id: `sha256:${(++this.seq).toString(16).padStart(64, '0')}`,
      labels: { ...request.labels },
    };
    this.images.set(request.tag, info);
    return info;
  }

  async pullImage(ref: string, onProgress: (line: string) => void): Promise<void> {
    this.record(`pull:${ref}`);
    if (!this.pullable.has(ref))
      throw new EngineError(`pull ${ref}: pull access denied or repository does not exist`, 404);
    onProgress(`${ref}: Pull complete`);
    this.images.set(ref, { id: `sha256:${(++this.seq).toString(16).padStart(64, '0')}`, labels: {} });
  }

  async removeImageIfUnused(id: string): Promise<boolean> {
    if ([...this.containers.values()].some((c) => c.info.imageId === id)) return false;
    const entry = [...this.images.entries()].find(([, info]) => info.id === id);
    this.record(`remove-image:${id}`);
    if (entry) this.images.delete(entry[0]);
    return true;
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    this.record(`create:${spec.name}`);
    if (this.containers.has(spec.name))
      throw new EngineError(`create container ${spec.name}: name already in use`, 409);
    const image = this.images.get(spec.image);
    if (!image) throw new EngineError(`create container ${spec.name}: No such image: ${spec.image}`, 404);
    const id = `c${(++this.seq).toString(16).padStart(63, '0')}`;
    this.containers.set(spec.name, {
      id,
      spec,
      info: {
        id,
        name: spec.name,
        image: spec.image,
        imageId: image.id,
        labels: { ...spec.labels },
        state: 'created',
        ports: spec.ports.map((p) => ({ ...p })),
      },
    });
    return id;
  }

  async startContainer(name: string): Promise<void> {
    this.record(`start:${name}`);
    const c = this.get(name);
    c.info.state = 'running';
    if (c.spec.healthcheck) c.info.health = this.healthOnStart.get(name) ?? 'healthy';
  }

  async stopContainer(name: string): Promise<void> {
    const c = this.containers.get(name);
    if (!c || c.info.state !== 'running') return;
    this.record(`stop:${name}`);
    c.info.state = 'exited';
    delete c.info.health;
  }

  async removeContainer(name: string): Promise<boolean> {
    if (!this.containers.has(name)) return false;
    this.record(`remove:${name}`);
    return this.containers.delete(name);
  }

  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    this.check('inspect-container');
    const c = this.containers.get(name) ?? [...this.containers.values()].find((x) => x.id === name);
    return c ? structuredClone(c.info) : undefined;
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    this.check('list-containers');
    return [...this.containers.values()]
      .filter((c) => matches(c.info.labels, labels))
      .map((c) => structuredClone(c.info))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async logs(name: string, options: LogOptions = {}): Promise<Readable> {
    this.check(`logs:${name}`);
    this.get(name);
    const lines = (this.logText.get(name) ?? '').split('\n').filter((l) => l !== '');
    const tail = options.tail !== undefined ? lines.slice(-options.tail) : lines;
    return Readable.from(tail.map((l) => `${l}\n`));
  }

  /** What `engineInfo` reports; tests change it. */
  info: EngineInfo = { insecureCidrs: ['127.0.0.0/8'], insecureRegistries: [] };

  async engineInfo(): Promise<EngineInfo> {
    this.check('info');
    return structuredClone(this.info);
  }

  async volumeMountpoint(name: string): Promise<string | undefined> {
    return this.volumes.has(name) ? `/var/lib/docker/volumes/${name}/_data` : undefined;
  }

  /** The spec a container was created with, for assertions. */
  specOf(name: string): ContainerSpec {
    return this.get(name).spec;
  }

  private get(name: string): FakeContainer {
    const c = this.containers.get(name);
    if (!c) throw new EngineError(`No such container: ${name}`, 404);
    return c;
  }
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}
