/**
 * Shared by the client-side end-to-end tests (doctor, login and pipelines, adoption): a dev stack of its own
 * project and host, so that nothing there touches another stack's containers or names, a working directory
 * with a private docker config, and requests through Traefik with the registry's Host header.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe } from '../../src/ops/http-probe.js';
import { addHostsLine, dockerCli, forceRemoveProject, initStack, regctl, type E2eStack } from './helpers.js';

export const PROJECT = 'regctl-client';
export const CLIENT_HOST = 'client.test';
export const REGISTRY_HOST = `registry.${CLIENT_HOST}`;
export const UI_HOST = `registry-ui.${CLIENT_HOST}`;
/** The /etc/hosts marker of the client stack's names. */
export const HOSTS_MARKER = 'regctl e2e client-side';

/** A request through Traefik with the registry's Host header (fetch cannot set Host). */
export async function viaTraefik(
  port: number,
  host: string,
  method: string,
  path: string,
  auth: { username: string; password: string },
) {
  return probe({ port, host, method, path, auth });
}

/** The client stack running, its names in /etc/hosts, and a docker client with a private config. */
export interface ClientStack {
  stack: E2eStack;
  /** host:port of the registry through Traefik. */
  registry: string;
  work: string;
  dockerConfig: string;
  docker: ReturnType<typeof dockerCli>;
  removeHosts: () => Promise<void>;
}

/** Clears what an earlier run left of the client project, inits the stack, brings it up and adds its names to /etc/hosts; on failure, removes what it made. */
export async function startClientStack(): Promise<ClientStack> {
  await forceRemoveProject(PROJECT);
  const stack = await initStack(['--name', PROJECT, '--host', CLIENT_HOST]);
  const work = await mkdtemp(join(tmpdir(), 'regctl-e2e-client-'));
  const dockerConfig = join(work, 'docker-config');
  const client: ClientStack = {
    stack,
    registry: `${REGISTRY_HOST}:${stack.ports.http}`,
    work,
    dockerConfig,
    docker: dockerCli(dockerConfig),
    removeHosts: async () => undefined,
  };
  try {
    await mkdir(dockerConfig);
    const up = await regctl(['up', '--dir', stack.dir]);
    if (up.exitCode !== 0) throw new Error(`regctl up failed (${up.exitCode}):\n${up.all}`);
    client.removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], HOSTS_MARKER);
  } catch (err) {
    await stopClientStack(client);
    throw err;
  }
  return client;
}

/** Takes the client stack down and removes its project, hosts line, pipeline container and directories. */
export async function stopClientStack(client: ClientStack): Promise<void> {
  await regctl(['down', '--dir', client.stack.dir, '--yes']);
  await forceRemoveProject(PROJECT);
  await client.removeHosts();
  await execa('docker', ['rm', '-f', 'e2e-ci-app'], { reject: false });
  await rm(client.work, { recursive: true, force: true });
  await client.stack.cleanup();
}
