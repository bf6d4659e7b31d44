import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { parseStackConfigText } from '../../../src/config/load.js';
import { hostNameProblem, parseStackConfig, type StackConfig } from '../../../src/config/schema.js';
import { renderStack } from '../../../src/stack/render.js';

function config(input: Record<string, unknown> = {}): StackConfig {
  const result = parseStackConfig({ version: 1, ...input });
  if (!result.config) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

const secrets = {
  username: 'admin',
  password: 'Very-Secret-Password-123',
  htpasswd: 'admin:$2y$10$SECRETHASHSECRETHASHSECRETHASHSECRETHASHSECRETHASHSEC\n',
};

describe('renderStack', () => {
  test('the stack layout, with modes and secret flags', () => {
    const files = renderStack(config(), { secrets, packageDir: '/pkg' });
    expect(files.map((f) => [f.path, f.mode.toString(8), f.secret, f.keepExisting ?? false])).toEqual([
      ['regctl.yaml', '644', false, false],
      ['compose.yaml', '644', false, false],
      ['compose.prod.yaml', '644', false, false],
      ['traefik/traefik.yml', '644', false, false],
      ['traefik/traefik.prod.yml', '644', false, false],
      ['traefik/tls.yml', '644', false, false],
      ['auth/access.yaml', '644', false, false],
      ['.gitignore', '644', false, false],
      ['.env', '600', true, false],
      ['auth/htpasswd', '600', true, true],
    ]);
  });

  test('dev TLS: tls.yml serves the leaf Traefik mounts; .gitignore covers the CA key and the leaf key', () => {
    const files = renderStack(config({ host: 'example.test' }), { secrets, packageDir: '/pkg' });
    const tls = parse(files.find((f) => f.path === 'traefik/tls.yml')!.content) as Record<string, unknown>;
    const leaf = { certFile: '/etc/traefik/certs/example.test.crt', keyFile: '/etc/traefik/certs/example.test.key' };
    expect(tls).toEqual({ tls: { certificates: [leaf], stores: { default: { defaultCertificate: leaf } } } });
    const ignored = files.find((f) => f.path === '.gitignore')!.content.split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['certs/ca.key', 'certs/traefik/*.key']));
    const devStatic = parse(files.find((f) => f.path === 'traefik/traefik.yml')!.content) as {
      providers: Record<string, unknown>;
    };
    expect(devStatic.providers.file).toEqual({ filename: '/etc/traefik/tls.yml' });
    const prodStatic = parse(files.find((f) => f.path === 'traefik/traefik.prod.yml')!.content) as {
      providers: Record<string, unknown>;
    };
    expect(prodStatic.providers).not.toHaveProperty('file');
  });

  test('secrets appear only in the secret files', () => {
    const files = renderStack(config(), { secrets, packageDir: '/pkg' });
    for (const f of files.filter((x) => !x.secret)) {
      expect(f.content, f.path).not.toContain(secrets.password);
      expect(f.content, f.path).not.toContain('SECRETHASH');
    }
    expect(files.find((f) => f.path === '.env')!.content).toContain(`REGISTRY_PASSWORD=${secrets.password}`);
    expect(files.find((f) => f.path === 'auth/htpasswd')!.content).toBe(secrets.htpasswd);
  });

  test('without secrets: .env.example instead of .env, no htpasswd', () => {
    const paths = renderStack(config(), { packageDir: '/pkg' }).map((f) => f.path);
    expect(paths).toContain('.env.example');
    expect(paths).not.toContain('.env');
    expect(paths).not.toContain('auth/htpasswd');
  });

  test('auth/access.yaml follows the access file contract', () => {
    const files = renderStack(
      config({
        users: { root: { admin: true }, ci: { rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] }, nobody: {} },
      }),
      { secrets, packageDir: '/pkg' },
    );
    expect(parse(files.find((f) => f.path === 'auth/access.yaml')!.content)).toEqual({
      users: {
        root: { admin: true },
        ci: { rules: [{ repos: 'apps/**', actions: ['pull', 'push'] }] },
        nobody: { rules: [] },
      },
    });
  });

  test('the Traefik static files are the static config objects', () => {
    const files = renderStack(config({ traefik: { readTimeout: '24h' } }), { secrets, packageDir: '/pkg' });
    const dev = parse(files.find((f) => f.path === 'traefik/traefik.yml')!.content) as {
      entryPoints: { web: { transport: unknown } };
    };
    expect(dev.entryPoints.web.transport).toEqual({
      respondingTimeouts: { readTimeout: '24h', writeTimeout: '0s', idleTimeout: '180s' },
    });
    const prod = parse(files.find((f) => f.path === 'traefik/traefik.prod.yml')!.content) as Record<string, unknown>;
    expect(prod).toHaveProperty('certificatesResolvers.le.acme.storage', '/letsencrypt/acme.json');
  });

  test('regctl.yaml reads back as the same config, for any valid config', () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
    const port = fc.integer({ min: 1, max: 65535 });
    fc.assert(
      fc.property(
        fc.record({
          host: fc
            .array(label, { minLength: 1, maxLength: 3 })
            .map((l) => l.join('.'))
            .filter((h) => hostNameProblem(h) === undefined),
          http: port,
          https: port,
          registry: fc.oneof(fc.constant(0), port),
          ui: fc.boolean(),
          email: fc.option(fc.constantFrom('ops@example.com', 'a.b+c@d.example'), { nil: undefined }),
          users: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9._-]{0,8}$/), { minLength: 1, maxLength: 4 }),
        }),
        (input) => {
          fc.pre(input.http !== input.https && input.registry !== input.http && input.registry !== input.https);
          fc.pre(![input.http, input.https, input.registry].includes(8080));
          const [first, ...rest] = input.users;
          const c = config({
            host: input.host,
            ports: { http: input.http, https: input.https, registry: input.registry },
            ui: { enabled: input.ui },
            ...(input.email ? { acme: { email: input.email } } : {}),
            users: Object.fromEntries([
              [first!, { admin: true }],
              ...rest.map((u) => [u, { rules: [{ repos: `${u}/**`, actions: ['pull'] }] }]),
            ]),
          });
          const text = renderStack(c, { secrets, packageDir: '/pkg' }).find((f) => f.path === 'regctl.yaml')!.content;
          expect(parseStackConfigText(text)).toEqual(c);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('a non-default registry image is written; the default one is left to follow the package', () => {
    const text = (c: StackConfig) =>
      renderStack(c, { secrets, packageDir: '/pkg' }).find((f) => f.path === 'regctl.yaml')!.content;
    expect(text(config())).not.toContain('registry: regctl:');
    expect(text(config({ images: { registry: 'mine/regctl:1' } }))).toContain('registry: mine/regctl:1');
  });
});
