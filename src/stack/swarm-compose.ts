/**
 * SwarmModel → `compose.swarm.yaml`, for `docker stack deploy -c compose.swarm.yaml <project>`.
 *
 * Secrets and configs are file references with their versioned names: the file names the stack's own files and
 * never holds a value. `build:`, `container_name`, `restart` and `depends_on` are left out (stack deploy ignores
 * them); the image must already exist on the nodes (`regctl up` builds it on this one). Every `$` from the model
 * is doubled, as in the compose files.
 */
import { durationOf, escape, escapeRecord, healthcheck, toYamlText } from './compose.js';
import type { MountModel } from './model.js';
import { SWARM_COMPOSE_FILE, type SwarmModel, type SwarmObjectModel, type SwarmServiceModel } from './swarm-model.js';

/** Version 3.8: secret and config `name:` (3.5), `order: start-first` (3.4), `rollback_config` (3.7). */
export const SWARM_COMPOSE_VERSION = '3.8';

function mount(m: MountModel): Record<string, unknown> {
  return { type: m.type, source: escape(m.source), target: m.target, ...(m.readOnly ? { read_only: true } : {}) };
}

function service(svc: SwarmServiceModel): Record<string, unknown> {
  const out: Record<string, unknown> = { image: escape(svc.image) };
  if (svc.entrypoint) out.entrypoint = svc.entrypoint.map(escape);
  if (svc.command) out.command = svc.command.map(escape);
  if (Object.keys(svc.environment).length > 0) out.environment = escapeRecord(svc.environment);
  if (svc.ports.length > 0)
    out.ports = svc.ports.map((p) => ({ target: p.target, published: p.published, protocol: 'tcp', mode: 'host' }));
  if (svc.mounts.length > 0) out.volumes = svc.mounts.map(mount);
  if (svc.secrets.length > 0) out.secrets = svc.secrets.map((s) => ({ source: s.source, target: s.target }));
  if (svc.configs.length > 0) out.configs = svc.configs.map((c) => ({ source: c.source, target: c.target }));
  out.networks = ['proxy'];
  if (svc.healthcheck) out.healthcheck = healthcheck(svc.healthcheck);
  const u = svc.update;
  out.deploy = {
    mode: 'replicated',
    replicas: svc.replicas,
    endpoint_mode: svc.endpointMode,
    ...(svc.constraints.length > 0 ? { placement: { constraints: svc.constraints } } : {}),
    update_config: {
      parallelism: u.parallelism,
      delay: durationOf(u.delayMs),
      order: u.order,
      failure_action: u.failureAction,
      monitor: durationOf(u.monitorMs),
    },
    rollback_config: { parallelism: u.parallelism, order: u.order },
    restart_policy: { condition: 'any' },
    labels: escapeRecord(svc.labels),
  };
  return out;
}

function objects(list: SwarmObjectModel[]): Record<string, unknown> {
  return Object.fromEntries(list.map((o) => [o.key, { name: o.name, file: `./${o.file}` }]));
}

/** The compose object, before serialization (tests parse the text back and compare with this). */
export function swarmComposeObject(model: SwarmModel): Record<string, unknown> {
  return {
    version: SWARM_COMPOSE_VERSION,
    services: Object.fromEntries(model.services.map((svc) => [svc.key, service(svc)])),
    networks: {
      proxy: {
        name: model.network.name,
        driver: 'overlay',
        attachable: true,
        labels: escapeRecord(model.network.labels),
      },
    },
    volumes: Object.fromEntries(
      model.volumes.map((v) => [v.key, { name: escape(v.name), labels: escapeRecord(v.labels) }]),
    ),
    secrets: objects(model.secrets),
    configs: objects(model.configs),
  };
}

function header(model: SwarmModel): string {
  return [
    `regctl stack, Swarm mode (${model.mode} routing): ${model.urls.registry}${model.urls.ui ? `   ${model.urls.ui}` : ''}`,
    '',
    'Rendered by `regctl init` from regctl.yaml; run it with `regctl up`, or',
    `  docker stack deploy -c ${SWARM_COMPOSE_FILE} ${model.project}`,
    'from this directory (the registry image must exist on the nodes). Secret and config names carry a digest of',
    'their file: after a change of credentials or users, `regctl init --force` renders the new names.',
    'Traefik publishes its ports in host mode and every service uses endpoint_mode dnsrr: see docs/swarm.md.',
  ]
    .map((l) => (l ? ` ${l}` : ''))
    .join('\n');
}

export function renderSwarmCompose(model: SwarmModel): string {
  return toYamlText(swarmComposeObject(model), header(model));
}
