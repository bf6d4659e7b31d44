import { describe, expect, test } from 'vitest';
import {
  DEFAULT_BASE_IMAGE,
  DEFAULT_REGISTRY_IMAGE,
  DEFAULT_TRAEFIK_IMAGE,
  LETS_ENCRYPT_PRODUCTION,
  hostNameProblem,
  parseStackConfig,
  primaryAdmin,
} from '../../../src/config/schema.js';
import { VERSION } from '../../../src/common/version.js';

function problemsOf(input: unknown) {
  const result = parseStackConfig(input);
  expect(result.config).toBeUndefined();
  return result.problems;
}

describe('stack config schema', () => {
  test('a bare "version: 1" gets every default', () => {
    const { config } = parseStackConfig({ version: 1 });
    expect(config).toEqual({
      version: 1,
      name: 'regctl',
      host: 'localhost',
      mode: 'dev',
      ports: { http: 80, https: 443, registry: 5000, registryBind: '127.0.0.1', dashboard: 8080 },
      users: { admin: { admin: true, rules: [] } },
      storage: {},
      ui: { enabled: true },
      acme: { caServer: LETS_ENCRYPT_PRODUCTION },
      images: { registry: DEFAULT_REGISTRY_IMAGE, traefik: DEFAULT_TRAEFIK_IMAGE, base: DEFAULT_BASE_IMAGE },
      traefik: {
        dashboard: false,
        readTimeout: '0s',
        writeTimeout: '0s',
        idleTimeout: '180s',
        accessLog: true,
        logLevel: 'INFO',
      },
      registry: { uploadPurgeAge: '168h', minFreeDisk: '1GiB', logLevel: 'info', auth: 'basic' },
      deploy: { mode: 'compose', replicas: 1 },
    });
    expect(DEFAULT_REGISTRY_IMAGE).toBe(`regctl:${VERSION}`);
    expect(DEFAULT_TRAEFIK_IMAGE).toBe('traefik:v3.6');
    expect(DEFAULT_BASE_IMAGE).toBe('node:20-bookworm-slim');
  });

  test('a full config is kept as given', () => {
    const input = {
      version: 1,
      name: 'team-reg',
      host: 'example.com',
      mode: 'prod',
      ports: { http: 8000, https: 8443, registry: 0, registryBind: '0.0.0.0', dashboard: 9090 },
      users: {
        ops: { admin: true },
        ci: { rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] },
        viewer: { rules: [{ repos: '**', actions: ['pull'] }] },
      },
      storage: { volume: 'base_registry_data' },
      ui: { enabled: false },
      acme: {
        email: 'ops@example.com',
        caServer: 'https://pebble.test:14000/dir',
        caCertificates: 'pebble.minica.pem',
      },
      images: { registry: 'regctl:dev', traefik: 'regctl-test/traefik:v3.6', base: 'regctl-test/node:20' },
      traefik: {
        dashboard: true,
        readTimeout: '24h',
        writeTimeout: '1h30m',
        idleTimeout: '300s',
        accessLog: false,
        logLevel: 'DEBUG',
      },
      registry: { uploadPurgeAge: '24h', minFreeDisk: '500MB', logLevel: 'debug', auth: 'token' },
    };
    const { config } = parseStackConfig(input);
    expect(config).toEqual({
      ...input,
      deploy: { mode: 'compose', replicas: 1 },
      users: {
        ops: { admin: true, rules: [] },
        ci: { admin: false, rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] },
        viewer: { admin: false, rules: [{ repos: '**', actions: ['pull'] }] },
      },
    });
    expect(primaryAdmin(config!)).toBe('ops');
  });

  test.each([
    [{ version: 2 }, 'version', 'version must be 1'],
    [{ version: 1, host: 'Example.com' }, 'host', 'host name "Example.com" must be lower case'],
    [{ version: 1, host: 'bad_host.com' }, 'host', 'host name "bad_host.com" has an invalid label "bad_host"'],
    [{ version: 1, host: '-a.com' }, 'host', 'has an invalid label "-a"'],
    [{ version: 1, host: 'a..com' }, 'host', 'has an invalid label ""'],
    [{ version: 1, host: `${'a'.repeat(64)}.com` }, 'host', 'has an invalid label'],
    [{ version: 1, host: 'example.com.' }, 'host', 'must not end with a dot'],
    [{ version: 1, ports: { http: 0 } }, 'ports.http', 'ports.http must be 1 to 65535'],
    [{ version: 1, ports: { https: 65536 } }, 'ports.https', 'ports.https must be 1 to 65535'],
    [{ version: 1, ports: { http: 80.5 } }, 'ports.http', 'ports.http must be a whole number'],
    [{ version: 1, ports: { http: '80' } }, 'ports.http', 'ports.http must be a number'],
    [{ version: 1, ports: { http: 8080, https: 8080 } }, 'ports.https', 'ports.http and ports.https must differ'],
    [{ version: 1, ports: { registry: 80 } }, 'ports.registry', 'must differ from ports.http'],
    [{ version: 1, ports: { registryBind: 'localhost' } }, 'ports.registryBind', 'must be an IP address'],
    [
      { version: 1, ports: { http: 8080 }, traefik: { dashboard: true } },
      'ports.dashboard',
      'ports.dashboard must differ',
    ],
    [{ version: 1, acme: { email: 'not-an-email' } }, 'acme.email', 'must be an email address'],
    [{ version: 1, acme: { caServer: 'ftp://x' } }, 'acme.caServer', 'must be an http(s) URL'],
    [{ version: 1, users: { 'a:b': { admin: true } } }, 'users.a:b', 'user names are letters'],
    [{ version: 1, users: { ci: { rules: [] } } }, 'users', 'at least one user needs admin: true'],
    [
      { version: 1, users: { admin: { admin: true }, ci: { rules: [{ repos: 'x', actions: ['write'] }] } } },
      'users.ci.rules.0.actions.0',
      'actions are pull, push and delete',
    ],
    [{ version: 1, traefik: { readTimeout: '1 hour' } }, 'traefik.readTimeout', 'must be a duration'],
    [{ version: 1, registry: { minFreeDisk: 'lots' } }, 'registry.minFreeDisk', 'must be a size'],
    [{ version: 1, registry: { uploadPurgeAge: '10' } }, 'registry.uploadPurgeAge', 'a number needs a unit'],
    [{ version: 1, registry: { auth: 'oidc' } }, 'registry.auth', 'registry.auth is basic or token'],
    [{ version: 1, traefik: { idleTimeout: '7d' } }, 'traefik.idleTimeout', 'must be a duration'],
    [{ version: 1, name: 'My Stack' }, 'name', 'must be lower-case letters'],
    [{ version: 1, hosts: 'x' }, '', 'unknown field "hosts"'],
  ])('%j is refused at %s', (input, path, message) => {
    const problems = problemsOf(input);
    const problem = problems.find((p) => p.path === path);
    expect(problem, JSON.stringify(problems)).toBeDefined();
    expect(problem!.message).toContain(message);
    expect(problem!.hint.length).toBeGreaterThan(10);
  });

  test('field-specific hints', () => {
    expect(problemsOf({ version: 1, host: 'A' })[0]!.hint).toContain('registry.<host>');
    expect(problemsOf({ version: 1, ports: { http: 0 } })[0]!.hint).toContain('1 to 65535');
    expect(problemsOf({ version: 1, acme: { email: 'x' } })[0]!.hint).toContain('acme.email');
  });

  test('RFC 1123 host names', () => {
    for (const ok of [
      'localhost',
      'example.com',
      'a.b-c.d',
      '1a.2b',
      '0.example',
      'xn--bcher-kva.example',
      `${'a'.repeat(63)}.com`,
    ]) {
      expect(hostNameProblem(ok), ok).toBeUndefined();
    }
    for (const bad of [
      '',
      'a b',
      'a_b',
      '-a',
      'a-',
      'é.com',
      '1.2.3.4',
      '0',
      `${'a.'.repeat(127)}ab`,
      `${'abc.'.repeat(61)}com`,
    ]) {
      expect(hostNameProblem(bad), bad).toBeDefined();
    }
  });
});
