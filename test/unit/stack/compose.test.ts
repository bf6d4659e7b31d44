import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { buildStackModel } from '../../../src/stack/build-model.js';
import { composeObject, durationOf, renderCompose, toYamlText } from '../../../src/stack/compose.js';
import { LABELS, type StackModel } from '../../../src/stack/model.js';

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

type ComposeFile = {
  services: Record<
    string,
    Record<string, unknown> & { labels?: Record<string, string>; build?: Record<string, unknown> }
  >;
  networks: Record<string, unknown>;
  volumes: Record<string, unknown>;
};

describe('compose rendering', () => {
  test('the text parses back (YAML 1.1, as docker-compose 1.29 reads it) to the compose object', () => {
    for (const mode of ['dev', 'prod'] as const) {
      const model = buildStackModel(config({ host: 'example.test', acme: { caCertificates: 'ca.pem' } }), mode);
      const text = renderCompose(model);
      expect(parse(text, { version: '1.1' })).toEqual(composeObject(model));
      expect(parse(text)).toEqual(composeObject(model));
    }
  });

  test('structure of the dev file: services, one network, one volume, no top-level name', () => {
    const model = buildStackModel(config({ host: 'example.test' }), 'dev');
    const file = parse(renderCompose(model)) as ComposeFile;
    expect(Object.keys(file)).toEqual(['services', 'networks', 'volumes']);
    expect(Object.keys(file.services)).toEqual(['traefik', 'registry', 'ui']);
    expect(file.networks).toEqual({ proxy: { name: 'regctl_proxy', labels: { 'dev.regctl.managed-by': 'regctl' } } });
    expect(file.volumes).toEqual({
      'registry-data': { name: 'regctl_registry-data', labels: { 'dev.regctl.managed-by': 'regctl' } },
    });
    const registry = file.services.registry!;
    expect(registry.build).toEqual({
      context: '${REGCTL_PACKAGE_DIR:?set REGCTL_PACKAGE_DIR in .env to the regctl package directory}',
      dockerfile: 'templates/Dockerfile',
      args: { BASE_IMAGE: 'node:20-bookworm-slim' },
      labels: model.builds[0]!.labels,
    });
    expect(registry.image).toBe('regctl:0.1.0');
    expect(registry.container_name).toBe('regctl-registry');
    expect(registry.ports).toEqual(['127.0.0.1:5000:5000']);
    expect(registry.volumes).toEqual(['registry-data:/var/lib/registry', './auth:/auth:ro']);
    expect(registry.networks).toEqual(['proxy']);
    expect(registry.restart).toBe('unless-stopped');
    expect(registry.healthcheck).toEqual({
      test: model.services[1]!.healthcheck!.test,
      interval: '10s',
      timeout: '5s',
      retries: 3,
      start_period: '20s',
    });
    expect(file.services.ui!.depends_on).toEqual(['registry']);
    expect(file.services.traefik!.volumes).toEqual([
      './traefik/traefik.yml:/etc/traefik/traefik.yml:ro',
      '/var/run/docker.sock:/var/run/docker.sock:ro',
      './traefik/tls.yml:/etc/traefik/tls.yml:ro',
      './certs/traefik:/etc/traefik/certs:ro',
    ]);
  });

  test('labels are the model labels minus the com.docker.compose.* ones compose sets itself', () => {
    const model = buildStackModel(config(), 'prod');
    const file = parse(renderCompose(model)) as ComposeFile;
    for (const svc of model.services) {
      const expected = Object.fromEntries(
        Object.entries(svc.labels).filter(([k]) => !k.startsWith('com.docker.compose.')),
      );
      expect(file.services[svc.name]!.labels).toEqual(expected);
      expect(expected[LABELS.configHash]).toBeDefined();
    }
  });

  test('ports are quoted so YAML 1.1 never reads them as base-60 numbers', () => {
    const model = buildStackModel(config({ ports: { http: 22, https: 23, registry: 5959 } }), 'dev');
    const text = renderCompose(model);
    expect(text).toContain('- "22:80"');
    expect(text).toContain('- "23:443"');
    expect(text).toContain('- "127.0.0.1:5959:5000"');
    expect((parse(text, { version: '1.1' }) as ComposeFile).services.traefik!.ports).toEqual(['22:80', '23:443']);
  });

  test('every $ from the model is doubled; the build context variable is not', () => {
    const model: StackModel = structuredClone(buildStackModel(config(), 'dev'));
    model.services[1]!.environment = { HASH: 'admin:$2y$10$abc' };
    model.services[1]!.labels['traefik.http.middlewares.auth.basicauth.users'] = 'u:$apr1$x';
    model.services[1]!.command = ['echo', '$HOME'];
    const text = renderCompose(model);
    const file = parse(text) as ComposeFile;
    expect(file.services.registry!.environment).toEqual({ HASH: 'admin:$$2y$$10$$abc' });
    expect(file.services.registry!.labels!['traefik.http.middlewares.auth.basicauth.users']).toBe('u:$$apr1$$x');
    expect(file.services.registry!.command).toEqual(['echo', '$$HOME']);
    expect(text.match(/\$\{REGCTL_PACKAGE_DIR/g)).toHaveLength(2);
  });

  test('header comment says what the file is and how to re-render it', () => {
    const dev = renderCompose(buildStackModel(config({ host: 'example.test' }), 'dev'));
    const prod = renderCompose(buildStackModel(config({ host: 'example.test' }), 'prod'));
    expect(dev.startsWith('# regctl stack, dev mode')).toBe(true);
    expect(dev).toContain('http://registry.example.test');
    expect(prod.startsWith('# regctl stack, prod mode')).toBe(true);
    expect(prod).toContain('docker compose -f compose.prod.yaml up -d');
    expect(prod).toContain('COMPOSE_PROJECT_NAME');
  });

  test('no YAML anchors or aliases, no folded lines', () => {
    const text = toYamlText({ a: { x: 1 }, b: [{ x: 1 }], long: 'y'.repeat(300) });
    expect(text).not.toMatch(/[&*]a\d/);
    expect(text).toContain('y'.repeat(300));
  });

  test('durations', () => {
    expect(durationOf(10_000)).toBe('10s');
    expect(durationOf(120_000)).toBe('2m');
    expect(durationOf(1500)).toBe('1500ms');
    expect(durationOf(0)).toBe('0s');
  });
});
