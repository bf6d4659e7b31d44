/**
 * A client of the real engine behind the real Traefik: `regctl login` with a real docker client (no password in
 * the process list), and generated Jenkins, GitHub and GitLab pipelines parsed by real tools and replayed with a
 * real shell against the stack (their push-only user can push and cannot delete).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { requirePeer } from '../helpers/peers.js';
import { E2E_BASE_IMAGE, ROOT, buildMultiLayerImage, stackTestsReady, regctl, type E2eStack } from './helpers.js';
import { startClientStack, stopClientStack, viaTraefik, type ClientStack } from './client-stack.js';

const ready = stackTestsReady();

describe.skipIf(!ready)('client side: login and ci pipelines', () => {
  let client: ClientStack | undefined;
  let stack: E2eStack;
  let dockerConfig: string;
  let docker: ClientStack['docker'];
  let registry: string;
  let work: string;

  beforeAll(async () => {
    client = await startClientStack();
    ({ stack, dockerConfig, docker, registry, work } = client);
  });

  afterAll(async () => {
    if (client) await stopClientStack(client);
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
});
