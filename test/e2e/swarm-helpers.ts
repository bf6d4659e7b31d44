/**
 * The swarm e2e test's plumbing: the docker CLI, the swarm it needs (initialised when the engine is in none), TCP
 * relays from docker's bridge to servers on loopback, the deployed service specs as both ways of deploying must
 * agree on them, and the removal of whatever the stack left.
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { preconditionMet } from '../helpers/peers.js';

export const PROJECT = 'e2eswarm';
export const IMAGE = `regctl-e2e/${PROJECT}:test`;
export const FILTER = `label=com.docker.stack.namespace=${PROJECT}`;

export async function sh(args: string[], opts: { cwd?: string; input?: string } = {}) {
  const res = await execa('docker', args, { reject: false, all: true, ...opts });
  return { code: res.exitCode ?? -1, out: String(res.stdout), all: String(res.all) };
}

/**
 * `docker swarm init` when the engine is in no swarm (`initialised`: this file must leave it again). Run while
 * the file is collected, so that the tests are skipped, or under CI=true fail, when no swarm can be had.
 */
export function ensureSwarm(): { ok: boolean; initialised: boolean; gwbridgeExisted: boolean } {
  const docker = (args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 60_000 });
  const state = docker(['info', '--format', '{{.Swarm.LocalNodeState}}']).stdout.trim();
  if (state === 'active') return { ok: true, initialised: false, gwbridgeExisted: true };
  // The swarm's bridge to the outside, created with the first task: removed again on leaving when it is new.
  const gwbridgeExisted = docker(['network', 'inspect', 'docker_gwbridge']).status === 0;
  const init = docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  const why = `docker swarm init failed: ${`${init.stdout}${init.stderr}`.trim()}`;
  const ok = preconditionMet('a single-node swarm', init.status === 0, why);
  return { ok, initialised: ok, gwbridgeExisted };
}

export { relay } from '../../bench/lib/relay.js';

interface ServiceSpecJson {
  Spec: {
    Name: string;
    Labels: Record<string, string>;
    TaskTemplate: {
      ContainerSpec: {
        Image: string;
        Command?: string[];
        Args?: string[];
        Env?: string[];
        Labels?: Record<string, string>;
        Mounts?: { Type: string; Source: string; Target: string; ReadOnly?: boolean }[];
        Secrets?: { SecretName: string; File: { Name: string } }[];
        Configs?: { ConfigName: string; File: { Name: string } }[];
        HealthCheck?: unknown;
      };
      Placement?: { Constraints?: string[] };
      Networks?: { Aliases?: string[] }[];
    };
    Mode: { Replicated?: { Replicas: number } };
    UpdateConfig?: { Order: string; FailureAction?: string; Parallelism: number };
    EndpointSpec?: { Mode?: string; Ports?: { TargetPort: number; PublishedPort: number; PublishMode: string }[] };
  };
}

/** What both ways of deploying must agree on, per service (but regctl's record of what it applied). */
const OWN = 'dev.regctl.applied-hash';
export async function deployedSpecs(filter = FILTER): Promise<Record<string, unknown>> {
  const names = (await sh(['service', 'ls', '--filter', filter, '--format', '{{.Name}}'])).out
    .split('\n')
    .filter(Boolean);
  const list = JSON.parse((await sh(['service', 'inspect', ...names])).out) as ServiceSpecJson[];
  const out: Record<string, unknown> = {};
  for (const s of list) {
    const c = s.Spec.TaskTemplate.ContainerSpec;
    out[s.Spec.Name] = {
      image: c.Image.replace(/@sha256:.*$/, ''),
      entrypoint: c.Command,
      args: c.Args,
      env: [...(c.Env ?? [])].sort(),
      labels: Object.fromEntries(
        Object.entries(s.Spec.Labels)
          .filter(([k]) => k !== OWN)
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
      containerLabels: Object.fromEntries(Object.entries(c.Labels ?? {}).filter(([k]) => k !== OWN)),
      mounts: (c.Mounts ?? []).map((m) => `${m.Type} ${m.Source} ${m.Target} ${m.ReadOnly ? 'ro' : 'rw'}`).sort(),
      secrets: (c.Secrets ?? []).map((x) => `${x.SecretName} ${x.File.Name}`).sort(),
      configs: (c.Configs ?? []).map((x) => `${x.ConfigName} ${x.File.Name}`).sort(),
      healthcheck: c.HealthCheck,
      constraints: s.Spec.TaskTemplate.Placement?.Constraints ?? [],
      aliases: s.Spec.TaskTemplate.Networks?.flatMap((n) => n.Aliases ?? []) ?? [],
      replicas: s.Spec.Mode.Replicated?.Replicas,
      update: { order: s.Spec.UpdateConfig?.Order, failure: s.Spec.UpdateConfig?.FailureAction },
      endpointMode: s.Spec.EndpointSpec?.Mode ?? 'vip',
      ports: (s.Spec.EndpointSpec?.Ports ?? []).map((p) => `${p.PublishedPort}:${p.TargetPort}/${p.PublishMode}`),
    };
  }
  return out;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Removes whatever of a stack is left (`project`, default this file's): services, then (once their containers are
 * gone) secrets, configs, its network and the named volumes (`registry-data` unless told).
 */
export async function removeEverything(project = PROJECT, volumes = ['registry-data']): Promise<void> {
  const filter = `label=com.docker.stack.namespace=${project}`;
  const services = (await sh(['service', 'ls', '-q', '--filter', filter])).out.split('\n').filter(Boolean);
  if (services.length) await sh(['service', 'rm', ...services]);
  await waitFor(
    'the tasks to stop',
    async () => (await sh(['ps', '-q', '--filter', filter])).out.trim() === '',
    60_000,
  ).catch(() => undefined);
  for (const kind of ['secret', 'config'] as const) {
    const ids = (await sh([kind, 'ls', '-q', '--filter', filter])).out.split('\n').filter(Boolean);
    if (ids.length) await sh([kind, 'rm', ...ids]);
  }
  for (let i = 0; i < 10; i++) {
    const net = await sh(['network', 'rm', `${project}_proxy`]);
    if (net.code === 0 || /not found/i.test(net.all)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await sh(['volume', 'rm', '-f', ...volumes.map((v) => `${project}_${v}`)]);
}
