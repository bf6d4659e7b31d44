/**
 * The client side on the real engine behind the real Traefik: `regctl doctor` on a healthy dev stack and on
 * faults injected on purpose, `regctl login` with a real docker client (no password in the process list),
 * generated Jenkins and GitHub pipelines parsed by real tools and replayed with a real shell against the
 * stack (their push-only user can push and cannot delete), and adoption of a volume written by Debian's
 * docker-registry (distribution 2.8.2), served in place with the old credentials and digests.
 */
import { basicAuth } from '../helpers/auth.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { requirePeer } from '../helpers/peers.js';
import { startReferenceRegistry } from '../helpers/reference-registry.js';
import { probe } from '../../src/ops/http-probe.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  ROOT,
  addHostsLine,
  buildMultiLayerImage,
  stackTestsReady,
  dockerCli,
  forceRemoveProject,
  initStack,
  regctl,
  type E2eStack,
} from './helpers.js';

const ready = stackTestsReady();

interface Check {
  id: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  checks: Check[];
}

async function doctorJson(
  dir: string,
  extra: string[] = [],
): Promise<{ exitCode: number; report: Report; all: string }> {
  const res = await regctl(['doctor', '--dir', dir, '--json', ...extra]);
  const start = res.stdout.indexOf('{');
  return { exitCode: res.exitCode, report: JSON.parse(res.stdout.slice(start)) as Report, all: res.all };
}

function check(report: Report, id: string): Check {
  const c = report.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${JSON.stringify(report.checks.map((x) => x.id))}`);
  return c;
}

const DISK_VOLUME = 'regctl-e2e-small-disk';
// A project and host of its own, so that nothing here touches another stack's containers or names.
const PROJECT = 'regctl-client';
const CLIENT_HOST = 'client.test';
const REGISTRY_HOST = `registry.${CLIENT_HOST}`;
const UI_HOST = `registry-ui.${CLIENT_HOST}`;

async function manifestDigest(base: string, repo: string, tag: string, auth: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: auth,
      accept:
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json',
    },
  });
  if (res.status !== 200) throw new Error(`HEAD ${repo}:${tag} → ${res.status}`);
  return res.headers.get('docker-content-digest') ?? '';
}

/** A request through Traefik with the registry's Host header (fetch cannot set Host). */
async function viaTraefik(
  port: number,
  host: string,
  method: string,
  path: string,
  auth: { username: string; password: string },
) {
  return probe({ port, host, method, path, auth });
}

describe.skipIf(!ready)('client side: doctor, login, ci pipelines, adoption', () => {
  let stack: E2eStack;
  let removeHosts: () => Promise<void> = async () => undefined;
  let dockerConfig: string;
  let docker: ReturnType<typeof dockerCli>;
  let registry: string;
  let work: string;

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    await execa('docker', ['volume', 'rm', '-f', DISK_VOLUME], { reject: false });
    // The data volume is a 256 MiB tmpfs, so that a nearly full disk can be made for real.
    await execa('docker', [
      'volume',
      'create',
      '--driver',
      'local',
      '--opt',
      'type=tmpfs',
      '--opt',
      'device=tmpfs',
      '--opt',
      'o=size=256m',
      DISK_VOLUME,
    ]);
    stack = await initStack(['--name', PROJECT, '--host', CLIENT_HOST]);
    const configPath = join(stack.dir, 'regctl.yaml');
    const config = parseYaml(await readFile(configPath, 'utf8')) as Record<string, Record<string, unknown>>;
    config.storage = { volume: DISK_VOLUME };
    config.registry = { ...(config.registry ?? {}), minFreeDisk: '64MiB' };
    await writeFile(configPath, stringify(config));
    registry = `${REGISTRY_HOST}:${stack.ports.http}`;
    work = await mkdtemp(join(tmpdir(), 'regctl-e2e-client-'));
    dockerConfig = join(work, 'docker-config');
    await mkdir(dockerConfig);
    docker = dockerCli(dockerConfig);
  });

  afterAll(async () => {
    if (stack) await regctl(['down', '--dir', stack.dir, '--yes']);
    await forceRemoveProject(PROJECT);
    await execa('docker', ['volume', 'rm', '-f', DISK_VOLUME], { reject: false });
    await removeHosts();
    await execa('docker', ['rm', '-f', 'e2e-ci-app'], { reject: false });
    if (work) await rm(work, { recursive: true, force: true });
    if (stack) await stack.cleanup();
  });

  it('doctor names a taken port and the process holding it, before up', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(stack.ports.registry, '0.0.0.0', () => r()));
    try {
      const { exitCode, report } = await doctorJson(stack.dir);
      expect(exitCode).not.toBe(0);
      const ports = check(report, 'ports');
      expect(ports.status).toBe('fail');
      expect(ports.detail).toContain(`port ${stack.ports.registry} (registry) is taken by process`);
      expect(ports.fix).toContain('change ports in regctl.yaml');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('doctor says a name does not resolve and offers the hosts line', async () => {
    const { report } = await doctorJson(stack.dir);
    const dns = check(report, 'dns');
    expect(dns.status).toBe('fail');
    expect(dns.fix).toContain(`127.0.0.1 ${REGISTRY_HOST} ${UI_HOST}`);
    expect(dns.fix).toContain('/etc/hosts');
  });

  it('doctor passes on the healthy dev stack', async () => {
    const up = await regctl(['up', '--dir', stack.dir]);
    expect(up.exitCode, up.all).toBe(0);
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e client-side');
    const { exitCode, report, all } = await doctorJson(stack.dir);
    expect(exitCode, all).toBe(0);
    expect(report.ok).toBe(true);
    for (const id of [
      'engine',
      'config',
      'ports',
      'dns',
      'trust',
      'stack',
      'traefik-timeout',
      'location',
      'disk',
      'clock',
    ]) {
      expect(check(report, id).status, `${id}: ${check(report, id).detail}`).toBe('pass');
    }
    expect(check(report, 'disk').detail).toContain("registry's data volume");
  });

  it('doctor --upload-test pushes a large upload slower than 60 s through Traefik', async () => {
    const { exitCode, report, all } = await doctorJson(stack.dir, ['--upload-test']);
    expect(exitCode, all).toBe(0);
    const upload = check(report, 'upload');
    expect(upload.status).toBe('pass');
    const seconds = Number(/over (\d+) s accepted/.exec(upload.detail)?.[1]);
    expect(seconds).toBeGreaterThan(60);
    expect(upload.detail).toContain('128.0 MiB');
  });

  it("doctor catches Traefik's 60 s default read timeout", async () => {
    const file = join(stack.dir, 'traefik/traefik.yml');
    const original = await readFile(file, 'utf8');
    const config = parseYaml(original) as { entryPoints: Record<string, { transport?: unknown }> };
    delete config.entryPoints.web!.transport;
    await writeFile(file, stringify(config));
    try {
      const { exitCode, report } = await doctorJson(stack.dir);
      expect(exitCode).not.toBe(0);
      const t = check(report, 'traefik-timeout');
      expect(t.status).toBe('fail');
      expect(t.detail).toContain('web: 60s (Traefik default)');
      expect(t.fix).toContain('traefik.readTimeout: 0s');
    } finally {
      await writeFile(file, original);
    }
  });

  it('doctor reports a nearly full data volume with its fix', async () => {
    // 200 MiB into the 256 MiB volume leaves less than the 64 MiB floor.
    const fill = await execa(
      'docker',
      [
        'run',
        '--rm',
        '-v',
        `${DISK_VOLUME}:/data`,
        E2E_BASE_IMAGE,
        'node',
        '-e',
        "require('fs').writeFileSync('/data/filler', Buffer.alloc(200 * 1024 * 1024))",
      ],
      { reject: false },
    );
    expect(fill.exitCode, fill.stderr).toBe(0);
    try {
      const { exitCode, report } = await doctorJson(stack.dir);
      expect(exitCode).not.toBe(0);
      const d = check(report, 'disk');
      expect(d.status).toBe('fail');
      expect(d.detail).toMatch(/MiB free of 256\.0 MiB .*under the 64MiB floor/);
      expect(d.fix).toContain('regctl gc');
    } finally {
      await execa('docker', [
        'run',
        '--rm',
        '-v',
        `${DISK_VOLUME}:/data`,
        E2E_BASE_IMAGE,
        'node',
        '-e',
        "require('fs').rmSync('/data/filler', { force: true })",
      ]);
    }
  });

  it('doctor --prod reports an acme.json Traefik would refuse, and accepts mode 600', async () => {
    const volume = `${PROJECT}_letsencrypt`;
    await execa('docker', ['volume', 'create', '--label', `com.docker.compose.project=${PROJECT}`, volume]);
    const write = (mode: string) =>
      execa('docker', [
        'run',
        '--rm',
        '-v',
        `${volume}:/le`,
        E2E_BASE_IMAGE,
        'node',
        '-e',
        `const fs=require('fs');fs.writeFileSync('/le/acme.json','{}');fs.chmodSync('/le/acme.json',0o${mode})`,
      ]);
    await write('644');
    let { report } = await doctorJson(stack.dir, ['--prod']);
    const bad = check(report, 'acme-json');
    expect(bad.status).toBe('fail');
    expect(bad.detail).toContain('mode 644');
    expect(bad.fix).toContain('chmod 600');
    await write('600');
    ({ report } = await doctorJson(stack.dir, ['--prod']));
    expect(check(report, 'acme-json').status).toBe('pass');
  });

  it('regctl login logs a real docker client in without the password on any command line', async () => {
    // A shim ahead of the real docker on PATH records every argv it is called with, so the check does not
    // depend on catching a short-lived process in `ps`; the process list is still sampled meanwhile.
    const shimDir = await mkdtemp(join(tmpdir(), 'regctl-docker-shim-'));
    const argvLog = join(shimDir, 'argv.log');
    const realDocker = (await execa('sh', ['-c', 'command -v docker'])).stdout.trim();
    await writeFile(
      join(shimDir, 'docker'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${realDocker}' "$@"\n`,
      { mode: 0o755 },
    );
    try {
      const seen: string[] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const ps = await execa('ps', ['-eo', 'args'], { reject: false });
          seen.push(ps.stdout);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const res = await regctl(['login', '--dir', stack.dir], {
        env: { DOCKER_CONFIG: dockerConfig, PATH: `${shimDir}:${process.env.PATH ?? ''}` },
      });
      watching = false;
      await watcher;
      expect(res.exitCode, res.all).toBe(0);
      expect(res.stdout).toContain(`docker is logged in to ${registry} as admin`);
      const calls = (await readFile(argvLog, 'utf8')).trim().split('\n');
      const login = calls.find((c) => c.startsWith('login'));
      expect(login, calls.join('\n')).toBeDefined();
      expect(login).toContain('--password-stdin');
      expect(login).toContain(registry);
      expect(calls.join('\n')).not.toContain(stack.password);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.join('\n')).not.toContain(stack.password);
      expect(res.all).not.toContain(stack.password);
    } finally {
      await rm(shimDir, { recursive: true, force: true });
    }
    const auths = JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')) as {
      auths: Record<string, unknown>;
    };
    expect(Object.keys(auths.auths)).toContain(registry);
    await buildMultiLayerImage(`${registry}/e2e/logged-in:1`, 2, docker);
    const push = await docker(['push', `${registry}/e2e/logged-in:1`]);
    expect(push.exitCode, push.all).toBe(0);
  });

  it('the Jenkins pipeline parses, replays against the stack, and its user can push but not delete', async () => {
    const groovy = requirePeer('groovy');
    const res = await regctl([
      'ci',
      'jenkins',
      '--dir',
      stack.dir,
      '--image',
      'e2e/ci-app',
      '--context',
      './app',
      '--json',
    ]);
    expect(res.exitCode, res.all).toBe(0);
    const out = JSON.parse(res.stdout) as { pipeline: string; user: string; password: string; registry: string };
    expect(out.registry).toBe(registry);
    expect(out.user).toBe('ci-e2e-ci-app');
    expect(out.pipeline).toContain("credentialsId: 'docker-registry-creds'");
    const project = join(work, 'jenkins-project');
    await mkdir(join(project, 'app'), { recursive: true });
    await writeFile(join(project, 'Jenkinsfile'), out.pipeline);
    await writeFile(join(project, 'app', 'hello.txt'), `built by jenkins ${Date.now()}\n`);
    await writeFile(join(project, 'app', 'Dockerfile'), `FROM ${E2E_BASE_IMAGE}\nCOPY hello.txt /hello.txt\n`);

    const dry = await execa(
      groovy,
      [join(ROOT, 'test/helpers/jenkins-dry-run.groovy'), join(project, 'Jenkinsfile'), '7'],
      {
        env: { JAVA_HOME: process.env.JAVA_HOME ?? '/usr/lib/jvm/java-17-openjdk-amd64' },
        reject: false,
      },
    );
    expect(dry.exitCode, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as {
      env: Record<string, string>;
      steps: {
        stage: string;
        sh: string;
        credentials: { usernameVariable: string; passwordVariable: string; credentialsId: string } | null;
      }[];
    };
    expect(plan.env.IMAGE_TAG).toBe('7');
    expect(plan.steps.map((s) => s.stage)).toEqual([
      'Build',
      'Build',
      'Push to Registry',
      'Push to Registry',
      'Push to Registry',
      'Deploy',
      'Deploy',
      'Deploy',
      'Deploy',
      'post',
    ]);

    // Replay every sh step as Jenkins would: the recorded environment, the credentials bound around the push steps.
    for (const step of plan.steps) {
      const env: Record<string, string> = {
        ...plan.env,
        CONTAINER_NAME: 'e2e-ci-app',
        DOCKER_CONFIG: dockerConfig,
        DOCKER_BUILDKIT: '0',
        PATH: process.env.PATH ?? '',
      };
      if (step.credentials) {
        expect(step.credentials.credentialsId).toBe('docker-registry-creds');
        env[step.credentials.usernameVariable] = out.user;
        env[step.credentials.passwordVariable] = out.password;
      }
      const r = await execa('sh', ['-c', step.sh], { cwd: project, env, extendEnv: false, reject: false, all: true });
      expect(r.exitCode, `${step.stage}: ${step.sh}\n${r.all}`).toBe(0);
    }
    const creds = { username: out.user, password: out.password };
    const tags = await viaTraefik(stack.ports.http, registry, 'GET', '/v2/e2e/ci-app/tags/list', creds);
    expect(tags.status).toBe(200);
    expect(JSON.parse(tags.body)).toMatchObject({ tags: expect.arrayContaining(['7', 'latest']) });
    const del = await viaTraefik(stack.ports.http, registry, 'DELETE', '/v2/e2e/ci-app/manifests/latest', creds);
    expect(del.status).toBe(403);
    expect((JSON.parse(del.body) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    const other = await viaTraefik(stack.ports.http, registry, 'GET', '/v2/e2e/logged-in/tags/list', creds);
    expect(other.status).toBe(403);
  });

  it('the GitHub workflow passes actionlint and its steps push with the secrets given', async () => {
    const actionlint = requirePeer('actionlint');
    const res = await regctl([
      'ci',
      'github',
      '--dir',
      stack.dir,
      '--image',
      'e2e/gh-app',
      '--context',
      'app',
      '--json',
    ]);
    expect(res.exitCode, res.all).toBe(0);
    const out = JSON.parse(res.stdout) as { pipeline: string; user: string; password: string };
    const project = join(work, 'gh-project');
    await mkdir(join(project, '.github/workflows'), { recursive: true });
    await mkdir(join(project, 'app'));
    await writeFile(join(project, '.github/workflows/regctl-push.yml'), out.pipeline);
    await writeFile(join(project, 'app', 'Dockerfile'), `FROM ${E2E_BASE_IMAGE}\nCOPY Dockerfile /built-by-actions\n`);
    const lint = await execa(actionlint, ['-no-color', '.github/workflows/regctl-push.yml'], {
      cwd: project,
      reject: false,
      all: true,
    });
    expect(lint.exitCode, lint.all).toBe(0);

    const wf = parseYaml(out.pipeline) as {
      env: Record<string, string>;
      jobs: { build: { steps: { run?: string; env?: Record<string, string> }[] } };
    };
    const secrets: Record<string, string> = {
      REGISTRY_CREDS_USER: out.user,
      DOCKER_REGISTRY_CREDS_USER: out.user,
      DOCKER_REGISTRY_CREDS_PASSWORD: out.password,
    };
    const expand = (v: string) =>
      v
        .replace(/\$\{\{\s*secrets\.([A-Z0-9_]+)\s*\}\}/g, (_m, name: string) => secrets[name] ?? '')
        .replace(/\$\{\{\s*github\.run_number\s*\}\}/g, '12');
    for (const step of wf.jobs.build.steps) {
      if (!step.run) continue;
      const env: Record<string, string> = {
        DOCKER_CONFIG: dockerConfig,
        DOCKER_BUILDKIT: '0',
        PATH: process.env.PATH ?? '',
      };
      for (const [k, v] of Object.entries({ ...wf.env, ...step.env })) env[k] = expand(String(v));
      const r = await execa('bash', ['-e', '-c', step.run], {
        cwd: project,
        env,
        extendEnv: false,
        reject: false,
        all: true,
      });
      expect(r.exitCode, `${step.run}\n${r.all}`).toBe(0);
    }
    const tags = await viaTraefik(stack.ports.http, registry, 'GET', '/v2/e2e/gh-app/tags/list', {
      username: out.user,
      password: out.password,
    });
    expect(JSON.parse(tags.body)).toMatchObject({ tags: expect.arrayContaining(['12', 'latest']) });
  });

  it('the GitLab pipeline is valid YAML with the build, tag, push and logout steps', async () => {
    const res = await regctl([
      'ci',
      'gitlab',
      '--dir',
      stack.dir,
      '--image',
      'e2e/gl-app',
      '--no-create-user',
      '--json',
    ]);
    expect(res.exitCode, res.all).toBe(0);
    const out = JSON.parse(res.stdout) as { pipeline: string };
    const doc = parseYaml(out.pipeline) as {
      variables: Record<string, string>;
      publish: { script: string[]; after_script: string[] };
    };
    expect(doc.variables.REGISTRY).toBe(registry);
    expect(doc.publish.script.some((l) => l.includes('--password-stdin'))).toBe(true);
    expect(doc.publish.script.filter((l) => l.startsWith('docker push'))).toHaveLength(2);
    expect(doc.publish.after_script).toEqual(['docker logout "$REGISTRY"']);
  });

  it('adopts a volume written by the reference registry: same images, same digests, old credentials', async () => {
    await regctl(['down', '--dir', stack.dir, '--yes']);
    const seedVolume = 'seed_registry_data';
    await execa('docker', ['volume', 'rm', '-f', seedVolume], { reject: false });
    await execa('docker', ['volume', 'create', seedVolume]);
    const mountpoint = (
      await execa('docker', ['volume', 'inspect', '--format', '{{.Mountpoint}}', seedVolume])
    ).stdout.trim();
    const ref = await startReferenceRegistry({ dataDir: mountpoint });
    const pushed: { repo: string; tag: string; digest: string }[] = [];
    try {
      const login = await docker(['login', ref.host, '-u', ref.username, '--password-stdin'], { input: ref.password });
      expect(login.exitCode, login.all).toBe(0);
      for (const [repo, tag, layers] of [
        ['minio', 'latest', 3],
        ['apps/api', '1.0', 2],
        ['apps/api', '1.1', 4],
      ] as const) {
        await buildMultiLayerImage(`${ref.host}/${repo}:${tag}`, layers, docker);
        const push = await docker(['push', `${ref.host}/${repo}:${tag}`]);
        expect(push.exitCode, push.all).toBe(0);
        pushed.push({
          repo,
          tag,
          digest: await manifestDigest(ref.url, repo, tag, basicAuth(ref.username, ref.password)),
        });
      }
    } finally {
      await ref.stop();
    }
    const seed = join(work, 'seed');
    await mkdir(seed);
    await writeFile(
      join(seed, '.env'),
      `COMPOSE_PROJECT_NAME=seed\nREGISTRY_USERNAME=${ref.username}\nREGISTRY_PASSWORD=${ref.password}\nREGISTRY_STORAGE_DELETE_ENABLED=true\nHOST=${CLIENT_HOST}\n`,
    );
    await chmod(join(seed, '.env'), 0o600);
    await writeFile(
      join(seed, '01-docker-compose.Infra.dev.yml'),
      stringify({
        services: {
          registry: {
            build: { context: './server/registry' },
            image: 'registry-custom:latest',
            container_name: 'registry',
            ports: ['5000:5000'],
            volumes: ['registry_data:/var/lib/registry'],
          },
        },
        volumes: { registry_data: null },
      }),
    );
    const target = join(work, 'adopted');
    const common = [
      '--from',
      seed,
      '--dir',
      target,
      '--name',
      PROJECT,
      '--traefik-image',
      E2E_TRAEFIK_IMAGE,
      '--base-image',
      E2E_BASE_IMAGE,
      '--http-port',
      String(stack.ports.http),
      '--registry-port',
      String(stack.ports.registry),
    ];
    const dry = await regctl(['adopt', ...common, '--dry-run', '--json']);
    expect(dry.exitCode, dry.all).toBe(0);
    const found = JSON.parse(dry.stdout) as {
      volume: string;
      users: string[];
      repositories: number;
      actions: string[];
    };
    expect(found.volume).toBe(seedVolume);
    expect(found.users).toEqual([ref.username]);
    expect(found.repositories).toBe(2);
    await expect(readFile(join(target, 'regctl.yaml'), 'utf8')).rejects.toThrow();

    const adopt = await regctl(['adopt', ...common]);
    expect(adopt.exitCode, adopt.all).toBe(0);
    expect(adopt.all).not.toContain(ref.password);
    try {
      const up = await regctl(['up', '--dir', target]);
      expect(up.exitCode, up.all).toBe(0);
      for (const p of pushed) {
        const res = await viaTraefik(stack.ports.http, registry, 'HEAD', `/v2/${p.repo}/manifests/${p.tag}`, {
          username: ref.username,
          password: ref.password,
        });
        expect(res.status).toBe(200);
        expect(res.headers['docker-content-digest']).toBe(p.digest);
      }
      const gate = await docker(['login', registry, '-u', ref.username, '--password-stdin'], { input: ref.password });
      expect(gate.exitCode, gate.all).toBe(0);
      await docker(['rmi', '-f', `${registry}/apps/api:1.1`]);
      const pull = await docker(['pull', `${registry}/apps/api:1.1`]);
      expect(pull.exitCode, pull.all).toBe(0);
      const digests = await docker([
        'image',
        'inspect',
        '--format',
        '{{json .RepoDigests}}',
        `${registry}/apps/api:1.1`,
      ]);
      expect(digests.stdout).toContain(pushed.find((p) => p.tag === '1.1')!.digest);
    } finally {
      await regctl(['down', '--dir', target, '--yes']);
      const left = await execa('docker', ['volume', 'inspect', seedVolume], { reject: false });
      expect(left.exitCode).toBe(0);
      await execa('docker', ['volume', 'rm', '-f', seedVolume], { reject: false });
    }
  });
});
