import { describe, expect, test } from 'vitest';
import { parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { buildStackModel, configHash } from '../../../src/stack/build-model.js';
import { LABELS, type ServiceModel } from '../../../src/stack/model.js';
import { routeLabels } from '../../../src/stack/traefik.js';

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const svc = (services: ServiceModel[], name: string): ServiceModel => {
  const found = services.find((s) => s.name === name);
  if (!found) throw new Error(`no service ${name}`);
  return found;
};

describe('buildStackModel', () => {
  test('dev: network, data volume, one build, three services, URLs', () => {
    const model = buildStackModel(config({ host: 'example.test' }), 'dev', { version: '9.9.9' });
    expect(model.project).toBe('regctl');
    expect(model.mode).toBe('dev');
    expect(model.network).toEqual({
      name: 'regctl_proxy',
      labels: { [LABELS.project]: 'regctl', [LABELS.managedBy]: 'regctl' },
    });
    expect(model.volumes).toEqual([
      {
        key: 'registry-data',
        name: 'regctl_registry-data',
        labels: { [LABELS.project]: 'regctl', [LABELS.managedBy]: 'regctl' },
      },
    ]);
    expect(model.builds).toEqual([
      {
        tag: 'regctl:0.1.0',
        dockerfile: 'templates/Dockerfile',
        args: { BASE_IMAGE: 'node:20-bookworm-slim' },
        labels: { [LABELS.managedBy]: 'regctl', 'dev.regctl.version': '9.9.9' },
      },
    ]);
    expect(model.services.map((s) => [s.name, s.containerName, s.image, s.build])).toEqual([
      ['traefik', 'regctl-traefik', 'traefik:v3.6', undefined],
      ['registry', 'regctl-registry', 'regctl:0.1.0', 0],
      ['ui', 'regctl-ui', 'regctl:0.1.0', 0],
    ]);
    expect(model.urls).toEqual({ registry: 'http://registry.example.test', ui: 'http://registry-ui.example.test' });
    expect(model.hostnames).toEqual({ registry: 'registry.example.test', ui: 'registry-ui.example.test' });
  });

  test('dev traefik: HTTP and HTTPS ports, static config, docker socket and the leaf read-only, ping health check', () => {
    const traefik = svc(buildStackModel(config({ ports: { http: 8080, https: 8443 } }), 'dev').services, 'traefik');
    expect(traefik.command).toEqual(['--configfile=/etc/traefik/traefik.yml']);
    expect(traefik.ports).toEqual([
      { host: 8080, container: 80 },
      { host: 8443, container: 443 },
    ]);
    // The leaf's directory only: the CA key beside it in certs/ never enters a container.
    expect(traefik.mounts).toEqual([
      { type: 'bind', source: './traefik/traefik.yml', target: '/etc/traefik/traefik.yml', readOnly: true },
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
      { type: 'bind', source: './traefik/tls.yml', target: '/etc/traefik/tls.yml', readOnly: true },
      { type: 'bind', source: './certs/traefik', target: '/etc/traefik/certs', readOnly: true },
    ]);
    expect(traefik.environment).toEqual({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/' });
    expect(traefik.healthcheck?.test).toEqual([
      'CMD',
      'traefik',
      'healthcheck',
      '--ping',
      '--configfile=/etc/traefik/traefik.yml',
    ]);
    expect(Object.keys(traefik.labels).filter((k) => k.startsWith('traefik.'))).toEqual([]);
  });

  test('registry: serve command, data volume, auth read-only, direct port in dev only, node health check', () => {
    const c = config({
      host: 'example.test',
      registry: { uploadPurgeAge: '24h', minFreeDisk: '2GiB', logLevel: 'debug' },
    });
    const dev = svc(buildStackModel(c, 'dev').services, 'registry');
    expect(dev.command).toEqual([
      'node',
      '--max-semi-space-size=1',
      '--heap-growing-percent=30',
      '/opt/regctl/bin/regctl.js',
      'serve',
      '--listen',
      '0.0.0.0:5000',
      '--data',
      '/var/lib/registry',
      '--htpasswd',
      '/auth/htpasswd',
      '--access',
      '/auth/access.yaml',
      '--log-level',
      'debug',
      '--upload-purge-age',
      '24h',
      '--min-free',
      '2GiB',
      '--trusted-proxy',
      'traefik',
    ]);
    expect(dev.ports).toEqual([{ hostIp: '127.0.0.1', host: 5000, container: 5000 }]);
    // V8 options (before the script) and glibc malloc settings that bound the server's resident memory
    // (src/registry/process-env.ts).
    expect(dev.environment).toEqual({
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '262144',
      MALLOC_TRIM_THRESHOLD_: '1048576',
    });
    expect(dev.mounts).toEqual([
      { type: 'volume', source: 'registry-data', target: '/var/lib/registry' },
      { type: 'bind', source: './auth', target: '/auth', readOnly: true },
    ]);
    expect(dev.healthcheck).toEqual({
      test: [
        'CMD',
        'node',
        '-e',
        "fetch('http://127.0.0.1:5000/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))",
      ],
      intervalMs: 10_000,
      timeoutMs: 5_000,
      retries: 3,
      startPeriodMs: 20_000,
    });
    expect(dev.restart).toBe('unless-stopped');
    expect(svc(buildStackModel(c, 'prod').services, 'registry').ports).toEqual([]);
    expect(svc(buildStackModel(config({ ports: { registry: 0 } }), 'dev').services, 'registry').ports).toEqual([]);
  });

  test('registry.auth token: the registry runs with the key the stack keeps in auth/; the direct port can be opened', () => {
    const registry = (input: Record<string, unknown>) =>
      buildStackModel(config(input), 'dev').services.find((s) => s.name === 'registry') as ServiceModel;
    expect(registry({ registry: { auth: 'token' } }).command?.slice(-6)).toEqual([
      '--trusted-proxy',
      'traefik',
      '--auth',
      'token',
      '--token-key',
      '/auth/token-key.pem',
    ]);
    expect(registry({}).command).not.toContain('--auth');
    expect(registry({ ports: { registryBind: '0.0.0.0' } }).ports).toEqual([
      { hostIp: '0.0.0.0', host: 5000, container: 5000 },
    ]);
  });

  test('service labels are the route label map plus bookkeeping labels and a config hash', () => {
    const model = buildStackModel(config({ host: 'example.test' }), 'dev', { version: '1.2.3' });
    const registry = svc(model.services, 'registry');
    const { [LABELS.configHash]: hash, ...rest } = registry.labels;
    expect(rest).toEqual({
      ...routeLabels(
        { mode: 'dev', network: 'regctl_proxy', httpsPort: 443, provider: 'docker', devTls: true },
        {
          router: 'registry',
          hostname: 'registry.example.test',
          port: 5000,
          corsOrigins: ['http://registry-ui.example.test', 'https://registry-ui.example.test'],
        },
      ),
      [LABELS.project]: 'regctl',
      [LABELS.service]: 'registry',
      [LABELS.managedBy]: 'regctl',
      'dev.regctl.version': '1.2.3',
    });
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(hash).toBe(configHash({ ...registry, labels: rest }));
  });

  test('the config hash changes with the service definition and only then', () => {
    const a = svc(buildStackModel(config(), 'dev').services, 'registry').labels[LABELS.configHash];
    const b = svc(buildStackModel(config(), 'dev').services, 'registry').labels[LABELS.configHash];
    const c = svc(buildStackModel(config({ registry: { logLevel: 'debug' } }), 'dev').services, 'registry').labels[
      LABELS.configHash
    ];
    const traefikA = svc(buildStackModel(config(), 'dev').services, 'traefik').labels[LABELS.configHash];
    const traefikC = svc(buildStackModel(config({ registry: { logLevel: 'debug' } }), 'dev').services, 'traefik')
      .labels[LABELS.configHash];
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(traefikC).toBe(traefikA);
  });

  test('ui: its own command pointing at the registry by service name, depends on the registry', () => {
    const ui = svc(buildStackModel(config({ host: 'example.test', ports: { https: 8443 } }), 'prod').services, 'ui');
    expect(ui.command).toEqual([
      'node',
      '/opt/regctl/bin/regctl.js',
      'ui',
      '--listen',
      '0.0.0.0:8080',
      '--registry',
      'http://registry:5000',
      '--public-registry',
      'registry.example.test:8443',
      '--trusted-proxy',
      'traefik',
      '--secure-cookies',
    ]);
    expect(ui.dependsOn).toEqual(['registry']);
    expect(ui.healthcheck?.test[3]).toContain('http://127.0.0.1:8080/healthz');
  });

  test('no UI: no ui service, no CORS on the registry, no UI URL', () => {
    const model = buildStackModel(config({ ui: { enabled: false } }), 'dev');
    expect(model.services.map((s) => s.name)).toEqual(['traefik', 'registry']);
    expect(model.urls).toEqual({ registry: 'http://registry.localhost' });
    expect(Object.keys(svc(model.services, 'registry').labels).filter((k) => k.includes('cors'))).toEqual([]);
  });

  test('prod: HTTP and HTTPS ports, letsencrypt volume, private ACME CA mounted with LEGO_CA_CERTIFICATES', () => {
    const model = buildStackModel(
      config({ name: 'reg', ports: { http: 8000, https: 8443 }, acme: { caCertificates: 'pebble.pem' } }),
      'prod',
    );
    expect(model.volumes.map((v) => [v.key, v.name])).toEqual([
      ['registry-data', 'reg_registry-data'],
      ['letsencrypt', 'reg_letsencrypt'],
    ]);
    const traefik = svc(model.services, 'traefik');
    expect(traefik.ports).toEqual([
      { host: 8000, container: 80 },
      { host: 8443, container: 443 },
    ]);
    expect(traefik.mounts).toEqual([
      { type: 'bind', source: './traefik/traefik.prod.yml', target: '/etc/traefik/traefik.yml', readOnly: true },
      { type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock', readOnly: true },
      { type: 'volume', source: 'letsencrypt', target: '/letsencrypt' },
      { type: 'bind', source: './pebble.pem', target: '/etc/traefik/acme-ca.pem', readOnly: true },
    ]);
    expect(traefik.environment).toEqual({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/',
      LEGO_CA_CERTIFICATES: '/etc/traefik/acme-ca.pem',
    });
    expect(model.urls).toEqual({
      registry: 'https://registry.localhost:8443',
      ui: 'https://registry-ui.localhost:8443',
    });
  });

  test('an absolute CA path stays absolute; a named data volume is used as is; the dashboard is published on loopback', () => {
    const model = buildStackModel(
      config({
        acme: { caCertificates: '/etc/pebble/ca.pem' },
        storage: { volume: 'base_registry_data' },
        traefik: { dashboard: true },
        ports: { dashboard: 9090 },
      }),
      'prod',
    );
    expect(svc(model.services, 'traefik').mounts.at(-1)).toEqual({
      type: 'bind',
      source: '/etc/pebble/ca.pem',
      target: '/etc/traefik/acme-ca.pem',
      readOnly: true,
    });
    expect(model.volumes[0]!.name).toBe('base_registry_data');
    expect(svc(model.services, 'traefik').ports).toContainEqual({ hostIp: '127.0.0.1', host: 9090, container: 8080 });
  });

  test('the model is pure: same input, equal output; no secrets anywhere', () => {
    const c = config({ users: { admin: { admin: true } } });
    expect(buildStackModel(c, 'prod')).toEqual(buildStackModel(c, 'prod'));
    expect(JSON.stringify(buildStackModel(c, 'prod'))).not.toMatch(/PASSWORD|\$2[aby]\$/);
  });
});
