/**
 * `regctl doctor` on the real engine behind the real Traefik: on a healthy dev stack and on faults injected on
 * purpose (a taken port, a name that does not resolve, Traefik's default read timeout, a nearly full data
 * volume, an acme.json Traefik would refuse), and its upload test, slower than Traefik's default 60 s read timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import {
  E2E_BASE_IMAGE,
  addHostsLine,
  stackTestsReady,
  forceRemoveProject,
  initStack,
  regctl,
  type E2eStack,
} from './helpers.js';
import { CLIENT_HOST, PROJECT, REGISTRY_HOST, UI_HOST } from './client-stack.js';

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

describe.skipIf(!ready)('client side: doctor', () => {
  let stack: E2eStack;
  let removeHosts: () => Promise<void> = async () => undefined;

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
  });

  afterAll(async () => {
    if (stack) await regctl(['down', '--dir', stack.dir, '--yes']);
    await forceRemoveProject(PROJECT);
    await execa('docker', ['volume', 'rm', '-f', DISK_VOLUME], { reject: false });
    await removeHosts();
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
    expect(upload.detail).toContain('128 MiB');
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
      expect(d.detail).toMatch(/MiB free of 256 MiB .*under the 64MiB floor/);
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
});
