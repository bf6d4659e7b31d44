import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { scriptedPrompts } from '../../../src/cli/prompts.js';
import { loadStackConfig } from '../../../src/config/load.js';
import { parseEnv } from '../../../src/stack/env.js';
import { checkHtpasswd, parseHtpasswd } from '../../../src/stack/htpasswd.js';
import { freePort, runCli } from './cli-harness.js';

let root: string;
let dir: string;
let httpPort: number;
let registryPort: number;
let httpsPort: number;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'regctl-init-'));
  dir = join(root, 'stack');
  httpPort = await freePort();
  registryPort = await freePort();
  httpsPort = await freePort();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const portFlags = () => [
  '--http-port',
  String(httpPort),
  '--https-port',
  String(httpsPort),
  '--registry-port',
  String(registryPort),
];
const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
const exists = async (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const init = (args: string[], opts: Parameters<typeof runCli>[1] = { cwd: root }) =>
  runCli(['init', '--dir', dir, ...args], opts);

async function envOf(): Promise<Record<string, string>> {
  return parseEnv(await readFile(join(dir, '.env'), 'utf8'));
}

describe('regctl init --yes', () => {
  test('renders the whole stack; secrets 0600; the generated password is shown once and matches htpasswd', async () => {
    const run = await init(['--yes', '--host', 'example.test', ...portFlags()]);
    expect(run.code, run.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual([
      '.env',
      '.gitignore',
      '.regctl',
      'auth',
      'certs',
      'compose.prod.yaml',
      'compose.yaml',
      'regctl.yaml',
      'traefik',
    ]);
    expect((await readdir(join(dir, 'auth'))).sort()).toEqual(['access.yaml', 'htpasswd', 'token-key.pem']);
    expect((await readdir(join(dir, 'certs'))).sort()).toEqual(['ca.crt', 'ca.key', 'traefik']);
    expect((await readdir(join(dir, 'certs/traefik'))).sort()).toEqual(['example.test.crt', 'example.test.key']);
    expect(await modeOf(join(dir, 'certs/ca.key'))).toBe(0o600);
    expect(await modeOf(join(dir, 'certs/traefik/example.test.key'))).toBe(0o600);
    expect(await modeOf(join(dir, 'certs/ca.crt'))).toBe(0o644);
    expect(run.stdout).toMatch(/created\s+certs\/ca\.key \(0600\)/);
    expect(await modeOf(join(dir, 'auth/token-key.pem'))).toBe(0o600);
    expect(await readFile(join(dir, 'auth/token-key.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect((await readdir(join(dir, 'traefik'))).sort()).toEqual(['tls.yml', 'traefik.prod.yml', 'traefik.yml']);
    expect(await modeOf(join(dir, '.env'))).toBe(0o600);
    expect(await modeOf(join(dir, 'auth/htpasswd'))).toBe(0o600);
    expect(await modeOf(join(dir, 'compose.yaml'))).toBe(0o644);

    const env = await envOf();
    expect(env.REGISTRY_USERNAME).toBe('admin');
    expect(env.REGISTRY_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(env.COMPOSE_PROJECT_NAME).toBe('regctl');
    const htpasswd = await readFile(join(dir, 'auth/htpasswd'), 'utf8');
    expect(parseHtpasswd(htpasswd).map((e) => e.user)).toEqual(['admin']);
    expect(htpasswd).toMatch(/^admin:\$2y\$10\$/);
    expect(checkHtpasswd(htpasswd, 'admin', env.REGISTRY_PASSWORD!)).toBe(true);
    expect(run.stdout.split(env.REGISTRY_PASSWORD!).length - 1).toBe(1);
    expect(run.stderr).not.toContain(env.REGISTRY_PASSWORD!);

    const config = await loadStackConfig(dir);
    expect(config.host).toBe('example.test');
    expect(config.ports).toEqual({
      http: httpPort,
      https: httpsPort,
      registry: registryPort,
      registryBind: '127.0.0.1',
      dashboard: 8080,
    });
    expect(config.users).toEqual({ admin: { admin: true, rules: [] } });
    expect(parse(await readFile(join(dir, 'auth/access.yaml'), 'utf8'))).toEqual({ users: { admin: { admin: true } } });
    expect(await readFile(join(dir, '.gitignore'), 'utf8')).toMatch(
      /^\.env$[\s\S]*^auth\/htpasswd$[\s\S]*^auth\/htpasswd\.grace$[\s\S]*^auth\/robots\.yaml$[\s\S]*^auth\/token-key\.pem$[\s\S]*^letsencrypt\/$/m,
    );
    expect(run.stdout).toContain(`regctl up --dir ${dir}`);
  });

  test('--json prints the files, the user and the generated password', async () => {
    const run = await init(['--yes', '--json', ...portFlags()]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      files: { path: string; status: string }[];
      username: string;
      password: string;
    };
    expect(result.username).toBe('admin');
    expect(result.password).toBe((await envOf()).REGISTRY_PASSWORD);
    expect(result.files.every((f) => f.status === 'create')).toBe(true);
    expect(result.files.map((f) => f.path)).toContain('auth/htpasswd');
  });

  test('flags and env defaults reach regctl.yaml and the compose files', async () => {
    await writeFile(join(root, 'pebble.pem'), 'not checked here\n');
    const run = await init(
      [
        '--yes',
        '--host',
        'reg.example.org',
        '--user',
        'ops',
        '--email',
        'ops@example.org',
        '--acme-ca-server',
        'https://pebble.test:14000/dir',
        '--acme-ca-certificates',
        'pebble.pem',
        '--no-ui',
        // After portFlags(), whose free --https-port this one overrides (commander keeps the last).
        ...portFlags(),
        '--https-port',
        '8443',
        '--name',
        'team-reg',
      ],
      {
        cwd: root,
        env: { REGCTL_TRAEFIK_IMAGE: 'regctl-test/traefik:v3.6', REGCTL_BASE_IMAGE: 'regctl-test/node:20' },
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const config = await loadStackConfig(dir);
    expect(config.users).toEqual({ ops: { admin: true, rules: [] } });
    expect(config.name).toBe('team-reg');
    expect((await envOf()).COMPOSE_PROJECT_NAME).toBe('team-reg');
    expect(config.acme).toEqual({
      email: 'ops@example.org',
      caServer: 'https://pebble.test:14000/dir',
      caCertificates: join(root, 'pebble.pem'),
    });
    expect(config.images.traefik).toBe('regctl-test/traefik:v3.6');
    expect(config.images.base).toBe('regctl-test/node:20');
    expect(config.ui.enabled).toBe(false);
    expect(config.ports.https).toBe(8443);
    const compose = parse(await readFile(join(dir, 'compose.prod.yaml'), 'utf8')) as {
      services: Record<string, { image: string; build?: { args: Record<string, string> } }>;
    };
    expect(Object.keys(compose.services)).toEqual(['traefik', 'registry']);
    expect(compose.services.traefik!.image).toBe('regctl-test/traefik:v3.6');
    expect(compose.services.registry!.build!.args).toEqual({ BASE_IMAGE: 'regctl-test/node:20' });
    expect((await envOf()).REGISTRY_USERNAME).toBe('ops');
  });

  test('--password-stdin sets the admin password; it is never printed', async () => {
    const run = await init(['--yes', '--password-stdin', ...portFlags()], {
      cwd: root,
      stdin: 'correct-horse-battery\n',
    });
    expect(run.code, run.stderr).toBe(0);
    expect((await envOf()).REGISTRY_PASSWORD).toBe('correct-horse-battery');
    expect(checkHtpasswd(await readFile(join(dir, 'auth/htpasswd'), 'utf8'), 'admin', 'correct-horse-battery')).toBe(
      true,
    );
    expect(run.stdout + run.stderr).not.toContain('correct-horse-battery');
  });
});

describe('regctl init refuses bad input and writes nothing', () => {
  test.each([
    [['--host', 'Bad_Host'], 3, '--host: host name "Bad_Host" must be lower case'],
    [['--host', 'a..b'], 3, '--host: host name "a..b" has an invalid label'],
    [['--email', 'not-an-email'], 3, '--email: must be an email address'],
    [['--acme-ca-server', 'nope'], 3, '--acme-ca-server: must be an http(s) URL'],
    [['--name', 'My Stack'], 3, '--name: must be lower-case letters'],
    [['--user', 'a:b'], 2, '--user: "a:b" is not a valid user name'],
    [['--http-port', 'abc'], 2, '--http-port must be a port number'],
    [['--https-port', '70000'], 2, '--https-port must be a port number'],
    [['--frobnicate'], 2, "unknown option '--frobnicate'"],
    [['--acme-ca-certificates', 'missing.pem'], 2, '--acme-ca-certificates: no file at'],
  ])('%j → exit %i', async (flags, code, message) => {
    const run = await init(['--yes', ...portFlags(), ...flags]);
    expect(run.code).toBe(code);
    expect(run.stderr).toContain(message);
    expect(await exists(dir)).toBe(false);
  });

  test('a port in use on this machine', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(httpPort, '0.0.0.0', resolve));
    try {
      const run = await init(['--yes', ...portFlags()]);
      expect(run.code).toBe(5);
      expect(run.stderr).toContain(`port ${httpPort} is already in use on this machine`);
      expect(await exists(dir)).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a short password on stdin', async () => {
    const run = await init(['--yes', '--password-stdin', ...portFlags()], { cwd: root, stdin: 'short\n' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('shorter than 8 characters');
    expect(await exists(dir)).toBe(false);
  });

  test('a broken regctl.yaml in the directory', async () => {
    await init(['--yes', ...portFlags()]);
    await writeFile(join(dir, 'regctl.yaml'), 'version: 1\nports: { http: -1 }\n');
    const run = await init(['--yes']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('ports.http: ports.http must be 1 to 65535');
  });
});

describe('re-running regctl init', () => {
  test('with nothing changed: exit 0, nothing rewritten, no password shown', async () => {
    await init(['--yes', '--host', 'example.test', ...portFlags()]);
    const password = (await envOf()).REGISTRY_PASSWORD!;
    const before = await readFile(join(dir, 'auth/htpasswd'), 'utf8');
    const certs = ['certs/ca.crt', 'certs/ca.key', 'certs/traefik/example.test.crt', 'certs/traefik/example.test.key'];
    const certsBefore = await Promise.all(certs.map((p) => readFile(join(dir, p), 'utf8')));
    const run = await init(['--yes', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as {
      files: { path: string; status: string; written: boolean }[];
      certificates: { path: string; status: string }[];
      password?: string;
    };
    expect(result.password).toBeUndefined();
    expect(result.files.filter((f) => f.written)).toEqual([]);
    // The CA and the leaf are kept as they are: engines and browsers that trust the CA keep trusting the stack.
    expect(result.certificates.map((c) => [c.path, c.status])).toEqual(certs.map((p) => [p, 'kept']));
    expect(await Promise.all(certs.map((p) => readFile(join(dir, p), 'utf8')))).toEqual(certsBefore);
    expect(result.files.find((f) => f.path === 'auth/htpasswd')!.status).toBe('keep');
    expect((await envOf()).REGISTRY_PASSWORD).toBe(password);
    expect(await readFile(join(dir, 'auth/htpasswd'), 'utf8')).toBe(before);
  });

  test('a change is listed and refused without --force; --force applies it and keeps the password', async () => {
    await init(['--yes', '--host', 'example.test', ...portFlags()]);
    const password = (await envOf()).REGISTRY_PASSWORD!;
    const compose = await readFile(join(dir, 'compose.yaml'), 'utf8');
    const refused = await init(['--yes', '--host', 'other.test']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain(
      'would change: regctl.yaml, compose.yaml, compose.prod.yaml, traefik/tls.yml, .env',
    );
    expect(refused.stderr).toContain('--force');
    expect(await readFile(join(dir, 'compose.yaml'), 'utf8')).toBe(compose);
    expect((await loadStackConfig(dir)).host).toBe('example.test');

    const ca = await readFile(join(dir, 'certs/ca.crt'), 'utf8');
    const forced = await init(['--yes', '--host', 'other.test', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await loadStackConfig(dir)).host).toBe('other.test');
    // The old CA may only sign names under example.test: a new one replaces it, and the person is told to re-trust.
    expect(await readFile(join(dir, 'certs/ca.crt'), 'utf8')).not.toBe(ca);
    expect(forced.stderr + forced.stdout).toContain(
      'a new local CA replaced the old one (ca.crt may only sign names under example.test, not registry.other.test',
    );
    expect(await exists(join(dir, 'certs/traefik/other.test.crt'))).toBe(true);
    expect(await readFile(join(dir, 'compose.yaml'), 'utf8')).toContain('registry.other.test');
    const env = await envOf();
    expect(env.REGISTRY_PASSWORD).toBe(password);
    expect(env.HOST).toBe('other.test');
    expect(await modeOf(join(dir, '.env'))).toBe(0o600);
    expect(checkHtpasswd(await readFile(join(dir, 'auth/htpasswd'), 'utf8'), 'admin', password)).toBe(true);
  });

  test('a hand-edited file is reported; --force saves it as .bak', async () => {
    await init(['--yes', ...portFlags()]);
    const edited = (await readFile(join(dir, 'traefik/traefik.yml'), 'utf8')) + '# my note\n';
    await writeFile(join(dir, 'traefik/traefik.yml'), edited);
    const refused = await init(['--yes']);
    expect(refused.code).toBe(6);
    expect(refused.stdout).toMatch(/edited by hand, would be replaced\s+traefik\/traefik\.yml/);
    const forced = await init(['--yes', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(dir, 'traefik/traefik.yml.bak'), 'utf8')).toBe(edited);
    expect(await readFile(join(dir, 'traefik/traefik.yml'), 'utf8')).not.toContain('# my note');
  });

  test('a hand-edited regctl.yaml is the source: its own text is kept, the other files follow it', async () => {
    await init(['--yes', ...portFlags()]);
    const text = (await readFile(join(dir, 'regctl.yaml'), 'utf8')).replace(
      'host: localhost',
      'host: edited.test  # moved',
    );
    await writeFile(join(dir, 'regctl.yaml'), text);
    const refused = await init(['--yes']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).not.toContain('regctl.yaml,');
    const forced = await init(['--yes', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(dir, 'regctl.yaml'), 'utf8')).toBe(text);
    expect(await readFile(join(dir, 'compose.yaml'), 'utf8')).toContain('registry.edited.test');
  });

  test('a CA file inside the stack directory is stored relative to it', async () => {
    await init(['--yes', ...portFlags()]);
    await writeFile(join(dir, 'ca.pem'), 'pem\n');
    const run = await runCli(['init', '--dir', 'stack', '--yes', '--force', '--acme-ca-certificates', 'stack/ca.pem'], {
      cwd: root,
    });
    expect(run.code, run.stderr).toBe(0);
    expect((await loadStackConfig(dir)).acme.caCertificates).toBe('ca.pem');
    expect(await readFile(join(dir, 'compose.prod.yaml'), 'utf8')).toContain('- ./ca.pem:/etc/traefik/acme-ca.pem:ro');
  });

  test('a deleted secret file comes back; --password-stdin on an existing stack is ignored with a warning', async () => {
    await init(['--yes', ...portFlags()]);
    const password = (await envOf()).REGISTRY_PASSWORD!;
    await rm(join(dir, 'auth/htpasswd'));
    const run = await init(['--yes', '--password-stdin'], { cwd: root, stdin: 'another-password\n' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('--password-stdin ignored');
    expect(checkHtpasswd(await readFile(join(dir, 'auth/htpasswd'), 'utf8'), 'admin', password)).toBe(true);
    expect(await modeOf(join(dir, 'auth/htpasswd'))).toBe(0o600);
  });
});

describe('regctl init with prompts', () => {
  test('asks host, user, email, UI and password when a terminal is attached', async () => {
    const prompts = scriptedPrompts(['example.test', 'alice', 'alice@example.test', false, 'typed-password-1']);
    const run = await init([...portFlags()], { cwd: root, prompts });
    expect(run.code, run.stderr).toBe(0);
    const config = await loadStackConfig(dir);
    expect(config.host).toBe('example.test');
    expect(config.users).toEqual({ alice: { admin: true, rules: [] } });
    expect(config.acme.email).toBe('alice@example.test');
    expect(config.ui.enabled).toBe(false);
    expect(await envOf()).toMatchObject({ REGISTRY_USERNAME: 'alice', REGISTRY_PASSWORD: 'typed-password-1' });
    expect(run.stdout).not.toContain('typed-password-1');
  });

  test('an empty password answer generates one; flags given are not asked again', async () => {
    const prompts = scriptedPrompts(['', true, '']);
    const run = await init(['--host', 'example.test', '--user', 'bob', ...portFlags()], { cwd: root, prompts });
    expect(run.code, run.stderr).toBe(0);
    const env = await envOf();
    expect(env.REGISTRY_USERNAME).toBe('bob');
    expect(env.REGISTRY_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(run.stdout).toContain(env.REGISTRY_PASSWORD!);
    expect((await loadStackConfig(dir)).acme.email).toBeUndefined();
  });

  test('--yes asks nothing even with a terminal', async () => {
    const run = await init(['--yes', ...portFlags()], { cwd: root, prompts: scriptedPrompts([]) });
    expect(run.code, run.stderr).toBe(0);
  });
});
