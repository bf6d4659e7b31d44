/**
 * A DockerEngine that loads dockerode (and its gRPC, protobuf and SSH dependencies) only when a command
 * first talks to the engine, so that `--help` and commands that never need an engine start fast and small.
 */
import type { Readable } from 'node:stream';
import type {
  BuildRequest,
  ContainerInfo,
  ContainerSpec,
  DockerEngine,
  EngineInfo,
  ImageInfo,
  LogOptions,
  SwarmEngine,
} from './engine.js';

export class LazyEngine implements DockerEngine {
  private engine: Promise<DockerEngine> | undefined;

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  private real(): Promise<DockerEngine> {
    this.engine ??= import('./dockerode-engine.js').then((m) => m.createDockerEngine(this.env));
    return this.engine;
  }

  async ping(): Promise<void> {
    return (await this.real()).ping();
  }
  async swarm(): Promise<SwarmEngine> {
    return (await this.real()).swarm();
  }
  async ensureNetwork(name: string, labels: Record<string, string>): Promise<boolean> {
    return (await this.real()).ensureNetwork(name, labels);
  }
  async removeNetwork(name: string): Promise<boolean> {
    return (await this.real()).removeNetwork(name);
  }
  async networkExists(name: string): Promise<boolean> {
    return (await this.real()).networkExists(name);
  }
  async ensureVolume(name: string, labels: Record<string, string>): Promise<boolean> {
    return (await this.real()).ensureVolume(name, labels);
  }
  async removeVolume(name: string): Promise<boolean> {
    return (await this.real()).removeVolume(name);
  }
  async listVolumes(labels: Record<string, string>): Promise<string[]> {
    return (await this.real()).listVolumes(labels);
  }
  async volumeSize(name: string): Promise<number | undefined> {
    return (await this.real()).volumeSize(name);
  }
  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    return (await this.real()).inspectImage(ref);
  }
  async buildImage(request: BuildRequest, onProgress: (line: string) => void): Promise<ImageInfo> {
    return (await this.real()).buildImage(request, onProgress);
  }
  async pullImage(ref: string, onProgress: (line: string) => void): Promise<void> {
    return (await this.real()).pullImage(ref, onProgress);
  }
  async removeImageIfUnused(id: string): Promise<boolean> {
    return (await this.real()).removeImageIfUnused(id);
  }
  async createContainer(spec: ContainerSpec): Promise<string> {
    return (await this.real()).createContainer(spec);
  }
  async startContainer(name: string): Promise<void> {
    return (await this.real()).startContainer(name);
  }
  async stopContainer(name: string, timeoutSeconds?: number): Promise<void> {
    return (await this.real()).stopContainer(name, timeoutSeconds);
  }
  async removeContainer(name: string): Promise<boolean> {
    return (await this.real()).removeContainer(name);
  }
  async inspectContainer(name: string): Promise<ContainerInfo | undefined> {
    return (await this.real()).inspectContainer(name);
  }
  async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    return (await this.real()).listContainers(labels);
  }
  async logs(name: string, options?: LogOptions): Promise<Readable> {
    return (await this.real()).logs(name, options);
  }
  async engineInfo(): Promise<EngineInfo> {
    return (await this.real()).engineInfo();
  }
  async volumeMountpoint(name: string): Promise<string | undefined> {
    return (await this.real()).volumeMountpoint(name);
  }
}
