import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  githubWorkflow,
  gitlabPipeline,
  jenkinsPipeline,
  secretNames,
  type PipelineOptions,
} from '../../../src/ops/ci.js';
import { daemonJsonAdvice, hostsAdvice } from '../../../src/ops/doctor.js';
import { parseDuration, UnitError } from '../../../src/common/units.js';
import { applyTrust, planTrust } from '../../../src/ops/login.js';

const options: PipelineOptions = {
  registry: 'registry.example.com',
  image: 'apps/api',
  context: './server/api',
  credentialsId: 'docker-registry-creds',
  user: 'ci-apps-api',
  deploy: true,
};

describe('pipelines', () => {
  it('Jenkins: the stages of the original pipeline, credentials by id, secrets expanded by the shell only', () => {
    const text = jenkinsPipeline(options);
    expect(text).toContain("REGISTRY = 'registry.example.com'");
    expect(text).toContain('IMAGE_TAG = "${BUILD_NUMBER}"');
    expect([...text.matchAll(/stage\('([^']+)'\)/g)].map((m) => m[1])).toEqual(['Build', 'Push to Registry', 'Deploy']);
    expect(text).toContain("credentialsId: 'docker-registry-creds'");
    // Every sh step is single-quoted: Groovy never interpolates $REGISTRY_PASS into the script.
    const shSteps = [...text.matchAll(/^\s*sh (.)/gm)].map((m) => m[1]);
    expect(shSteps.length).toBeGreaterThan(5);
    expect(new Set(shSteps)).toEqual(new Set(["'"]));
    expect(text).toMatch(/post \{\s*always \{\s*sh 'docker logout "\$REGISTRY"'/);
    expect(jenkinsPipeline({ ...options, deploy: false })).not.toContain("stage('Deploy')");
  });

  it('Jenkins: quotes that would break a Groovy string are escaped', () => {
    const text = jenkinsPipeline({ ...options, context: "it's/here" });
    expect(text).toContain("BUILD_CONTEXT = 'it\\'s/here'");
  });

  it('GitHub: a workflow that logs in with secrets from the store, pushes both tags and always logs out', () => {
    const wf = parseYaml(githubWorkflow(options)) as {
      on: Record<string, unknown>;
      env: Record<string, string>;
      jobs: {
        build: { steps: { name?: string; uses?: string; run?: string; if?: string; env?: Record<string, string> }[] };
      };
    };
    expect(Object.keys(wf.on)).toEqual(['push', 'workflow_dispatch']);
    expect(wf.env).toMatchObject({
      REGISTRY: 'registry.example.com',
      IMAGE_NAME: 'apps/api',
      IMAGE_TAG: '${{ github.run_number }}',
    });
    const steps = wf.jobs.build.steps;
    expect(steps[0]?.uses).toBe('actions/checkout@v4');
    const loginStep = steps.find((s) => s.run?.includes('docker login'));
    expect(loginStep?.env).toEqual({
      REGISTRY_USER: '${{ secrets.DOCKER_REGISTRY_CREDS_USER }}',
      REGISTRY_PASS: '${{ secrets.DOCKER_REGISTRY_CREDS_PASSWORD }}',
    });
    expect(loginStep?.run).toContain('--password-stdin');
    expect(steps.find((s) => s.name === 'Push')?.run?.match(/docker push/g)).toHaveLength(2);
    expect(steps.at(-1)).toMatchObject({ if: 'always()', run: 'docker logout "$REGISTRY"\n' });
  });

  it('GitLab: one publish job with login on stdin and logout in after_script', () => {
    const doc = parseYaml(gitlabPipeline(options)) as {
      stages: string[];
      publish: { script: string[]; after_script: string[] };
    };
    expect(doc.stages).toEqual(['publish']);
    expect(doc.publish.script[0]).toBe(
      'printf "%s" "$DOCKER_REGISTRY_CREDS_PASSWORD" | docker login "$REGISTRY" -u "$DOCKER_REGISTRY_CREDS_USER" --password-stdin',
    );
    expect(doc.publish.after_script).toEqual(['docker logout "$REGISTRY"']);
  });

  it('secret names derive from the credentials id', () => {
    expect(secretNames('docker-registry-creds')).toEqual({
      user: 'DOCKER_REGISTRY_CREDS_USER',
      password: 'DOCKER_REGISTRY_CREDS_PASSWORD',
    });
    expect(secretNames('--')).toEqual({ user: 'REGISTRY_USER', password: 'REGISTRY_PASSWORD' });
  });
});

describe('doctor helpers', () => {
  it('parses Go durations the way Traefik writes them', () => {
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('10 minutes')).toThrow(UnitError);
    expect(() => parseDuration('')).toThrow(UnitError);
  });

  it('gives the daemon.json fix for the platform', () => {
    expect(daemonJsonAdvice('linux', 'registry.example.test')).toContain('/etc/docker/daemon.json');
    expect(daemonJsonAdvice('linux', 'registry.example.test')).toContain(
      '{"insecure-registries":["registry.example.test"]}',
    );
    expect(daemonJsonAdvice('darwin', 'r.test')).toContain('Docker Desktop');
    expect(daemonJsonAdvice('win32', 'r.test')).toContain('Docker Desktop');
  });

  it('gives the hosts line for the platform', () => {
    expect(hostsAdvice('linux', ['registry.a.test', 'registry-ui.a.test'])).toBe(
      'add the line "127.0.0.1 registry.a.test registry-ui.a.test" to /etc/hosts (or create DNS records pointing at this machine)',
    );
    expect(hostsAdvice('win32', ['r'])).toContain('C:\\Windows\\System32\\drivers\\etc\\hosts');
  });
});

describe('login --trust: the daemon.json change', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('adds the registry, keeps every other setting, shows a diff, and writes atomically', async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-trust-'));
    const path = join(dir, 'daemon.json');
    await writeFile(path, JSON.stringify({ 'log-driver': 'json-file', 'insecure-registries': ['other:5000'] }));
    const plan = await planTrust('registry.example.test', path);
    expect(plan.unchanged).toBe(false);
    expect(plan.diff).toContain('+    "registry.example.test"');
    expect(await readFile(path, 'utf8')).toBe(plan.before);
    await applyTrust(plan);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      'log-driver': 'json-file',
      'insecure-registries': ['other:5000', 'registry.example.test'],
    });
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await planTrust('registry.example.test', path)).unchanged).toBe(true);
  });

  it('creates the file when there is none, and refuses a file that is not JSON', async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-trust-'));
    const fresh = await planTrust('r.test', join(dir, 'none.json'));
    expect(JSON.parse(fresh.after)).toEqual({ 'insecure-registries': ['r.test'] });
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ not json');
    await expect(planTrust('r.test', broken)).rejects.toThrow(/is not valid JSON/);
    expect(await readFile(broken, 'utf8')).toBe('{ not json');
  });
});
