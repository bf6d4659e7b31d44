/**
 * StackModel → compose file text (`compose.yaml` for dev, `compose.prod.yaml` for prod).
 *
 * The output is meant to read like a hand-written file and to be accepted by Compose v2 and by Debian's
 * docker-compose 1.29:
 * - no top-level `name:` (1.29 rejects it): the project name is `COMPOSE_PROJECT_NAME` in `.env`;
 * - the build context is `${REGCTL_PACKAGE_DIR}`, also from `.env` (`regctl init` writes the directory of
 *   the installed regctl package there), because the image is built from this package, not from the stack;
 * - every `$` coming from the model is doubled to `$$` so compose never interpolates it;
 * - `com.docker.compose.*` labels are left to compose itself;
 * - strings YAML 1.1 readers could take for something else (ports such as "22:22", "yes", "on") are quoted.
 */
import { Document, isScalar, Scalar, visit } from 'yaml';
import type { HealthcheckModel, MountModel, PortModel, ServiceModel, StackModel } from './model.js';

export const PACKAGE_DIR_VAR = 'REGCTL_PACKAGE_DIR';
export const COMPOSE_FILES = { dev: 'compose.yaml', prod: 'compose.prod.yaml' } as const;

/** A value as compose files must hold it: `$` doubled, so that compose interpolates nothing. */
export const escape = (value: string): string => value.replaceAll('$', '$$$$');

export function escapeRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, escape(v)]));
}

export function durationOf(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${String(ms)}ms`;
}

function portString(p: PortModel): string {
  return `${p.hostIp ? `${p.hostIp}:` : ''}${p.host}:${p.container}`;
}

function mountString(m: MountModel): string {
  return `${escape(m.source)}:${m.target}${m.readOnly ? ':ro' : ''}`;
}

/** A service's health check as compose writes it (durations as compose strings). */
export function healthcheck(h: HealthcheckModel): Record<string, unknown> {
  return {
    test: h.test.map(escape),
    interval: durationOf(h.intervalMs),
    timeout: durationOf(h.timeoutMs),
    retries: h.retries,
    start_period: durationOf(h.startPeriodMs),
  };
}

function withoutComposeLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith('com.docker.compose.')));
}

function service(model: StackModel, svc: ServiceModel): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (svc.build !== undefined) {
    const build = model.builds[svc.build];
    if (!build) throw new Error(`service ${svc.name} names build ${svc.build}, which the model does not have`);
    out.build = {
      context: `\${${PACKAGE_DIR_VAR}:?set ${PACKAGE_DIR_VAR} in .env to the regctl package directory}`,
      dockerfile: build.dockerfile,
      args: escapeRecord(build.args),
      labels: escapeRecord(build.labels),
    };
  }
  out.image = escape(svc.image);
  out.container_name = svc.containerName;
  if (svc.command) out.command = svc.command.map(escape);
  if (Object.keys(svc.environment).length > 0) out.environment = escapeRecord(svc.environment);
  if (svc.ports.length > 0) out.ports = svc.ports.map(portString);
  if (svc.mounts.length > 0) out.volumes = svc.mounts.map(mountString);
  out.networks = svc.aliases && svc.aliases.length > 0 ? { proxy: { aliases: svc.aliases } } : ['proxy'];
  if (svc.dependsOn.length > 0) out.depends_on = svc.dependsOn;
  out.restart = svc.restart;
  if (svc.healthcheck) out.healthcheck = healthcheck(svc.healthcheck);
  const labels = withoutComposeLabels(svc.labels);
  if (Object.keys(labels).length > 0) out.labels = escapeRecord(labels);
  return out;
}

/** The compose object, before serialization (tests parse the text back and compare with this). */
export function composeObject(model: StackModel): Record<string, unknown> {
  return {
    services: Object.fromEntries(model.services.map((svc) => [svc.name, service(model, svc)])),
    networks: {
      proxy: { name: model.network.name, labels: escapeRecord(withoutComposeLabels(model.network.labels)) },
    },
    volumes: Object.fromEntries(
      model.volumes.map((v) => [v.key, { name: escape(v.name), labels: escapeRecord(withoutComposeLabels(v.labels)) }]),
    ),
  };
}

function header(model: StackModel): string {
  const lines =
    model.mode === 'dev'
      ? [
          'regctl stack, dev mode: HTTP through Traefik on the "web" entrypoint, plus the registry\'s direct port.',
          `  ${model.urls.registry}${model.urls.ui ? `   ${model.urls.ui}` : ''}`,
        ]
      : [
          'regctl stack, prod mode: HTTPS with an ACME certificate, HTTP redirected to HTTPS, HSTS.',
          `  ${model.urls.registry}${model.urls.ui ? `   ${model.urls.ui}` : ''}`,
        ];
  return [
    ...lines,
    '',
    'Rendered by `regctl init` from regctl.yaml: change regctl.yaml, then `regctl init --force` to re-render.',
    'Run it with `regctl up' +
      (model.mode === 'prod' ? ' --prod`' : '`') +
      `, or \`docker compose -f ${COMPOSE_FILES[model.mode]} up -d\`.`,
    'The project name (COMPOSE_PROJECT_NAME) and the build context (REGCTL_PACKAGE_DIR) come from .env.',
  ]
    .map((l) => (l ? ` ${l}` : ''))
    .join('\n');
}

/** Serializes a plain object as YAML a person would write, with quotes wherever YAML 1.1 could misread. */
export function toYamlText(value: unknown, comment?: string): string {
  const doc = new Document(value, { version: '1.1', aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /^[0-9.:]+$/.test(node.value) && node.value.includes(':')) {
        node.type = Scalar.QUOTE_DOUBLE;
      }
    },
    Pair(_key, pair) {
      if (
        isScalar(pair.key) &&
        typeof pair.key.value === 'string' &&
        /^(?:y|n|yes|no|on|off|true|false|null|~)$/i.test(pair.key.value)
      ) {
        pair.key.type = Scalar.QUOTE_DOUBLE;
      }
    },
  });
  if (comment) doc.commentBefore = comment;
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

export function renderCompose(model: StackModel): string {
  return toYamlText(composeObject(model), header(model));
}
