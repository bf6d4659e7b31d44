/**
 * The rendered compose files are accepted by a real compose implementation (Debian's docker-compose), and
 * bringing compose.yaml up with it gives the same containers, labels, health checks, mounts and ports as
 * `regctl up`: both come from one StackModel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { dockerAvailable, imageAvailable, peerAvailable } from '../helpers/peers.js';
import {
  E2E_BASE_IMAGE,
  E2E_TRAEFIK_IMAGE,
  builtCliPresent,
  forceRemoveProject,
  initStack,
  projectResources,
  regctl,
  removePackageSnapshot,
  type E2eStack,
} from './helpers.js';

/** This file's own compose project, so that it never touches another test's stack. */
const PROJECT = 'e2eparity';
const IMAGE = `regctl-e2e/${PROJECT}:test`;
const ready =
  builtCliPresent() &&
  dockerAvailable() &&
  imageAvailable(E2E_TRAEFIK_IMAGE) &&
  imageAvailable(E2E_BASE_IMAGE) &&
  peerAvailable('docker-compose');
const CONTAINERS = [`${PROJECT}-traefik`, `${PROJECT}-registry`, `${PROJECT}-ui`];
/** Labels only one side sets: compose's bookkeeping, and regctl's record of what it applied. */
const OWN_LABEL = /^(com\.docker\.compose\.(?!project$|service$)|dev\.regctl\.(applied-hash|mode)$)/;

interface Inspected {
  Name: string;
  Config: {
    Image: string;
    Cmd: string[] | null;
    Entrypoint: string[] | null;
    Env: string[];
    Labels: Record<string, string>;
    Healthcheck?: unknown;
    ExposedPorts?: Record<string, unknown>;
  };
  HostConfig: {
    RestartPolicy: { Name: string };
    PortBindings: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
  };
  Mounts: { Type: string; Source: string; Name?: string; Destination: string; RW: boolean }[];
  NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }> };
  State: { Status: string; Health?: { Status: string } };
}

async function inspect(): Promise<Record<string, unknown>> {
  const res = await execa('docker', ['inspect', ...CONTAINERS]);
  const list = JSON.parse(res.stdout) as Inspected[];
  const out: Record<string, unknown> = {};
  for (const c of list) {
    out[c.Name.replace(/^\//, '')] = {
      image: c.Config.Image,
      cmd: c.Config.Cmd,
      entrypoint: c.Config.Entrypoint,
      env: [...c.Config.Env].sort(),
      labels: Object.fromEntries(
        Object.entries(c.Config.Labels)
          .filter(([k]) => !OWN_LABEL.test(k))
          .sort(([a], [b]) => a.localeCompare(b)),
      ),
      healthcheck: c.Config.Healthcheck,
      restart: c.HostConfig.RestartPolicy.Name,
      ports: Object.fromEntries(
        Object.entries(c.HostConfig.PortBindings ?? {}).map(([k, v]) => [
          k,
          (v ?? []).map((b) => `${b.HostIp || '*'}:${b.HostPort}`).sort(),
        ]),
      ),
      mounts: c.Mounts.map((m) => `${m.Type} ${m.Name ?? m.Source} ${m.Destination} ${m.RW ? 'rw' : 'ro'}`).sort(),
      networks: Object.keys(c.NetworkSettings.Networks).sort(),
      serviceAlias: Object.values(c.NetworkSettings.Networks).every((n) =>
        (n.Aliases ?? []).includes(c.Config.Labels['com.docker.compose.service'] ?? '?'),
      ),
      health: c.State.Health?.Status,
    };
  }
  return out;
}

async function waitHealthy(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await execa('docker', ['inspect', '--format', '{{.State.Health.Status}}', ...CONTAINERS], {
      reject: false,
    });
    if (res.exitCode === 0 && res.stdout.split('\n').every((s) => s.trim() === 'healthy')) return;
    if (Date.now() > deadline) throw new Error(`not healthy after ${timeoutMs} ms: ${res.stdout} ${res.stderr}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

describe.skipIf(!ready)('compose parity', () => {
  let stack: E2eStack;

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    stack = await initStack(['--name', PROJECT], { registryImage: IMAGE });
  });

  afterAll(async () => {
    await execa('docker-compose', ['down', '-v'], { cwd: stack.dir, reject: false });
    await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    await forceRemoveProject(PROJECT, { image: IMAGE });
    await stack.cleanup();
    await removePackageSnapshot();
  });

  it('docker-compose accepts compose.yaml and compose.prod.yaml', async () => {
    for (const file of ['compose.yaml', 'compose.prod.yaml']) {
      const res = await execa('docker-compose', ['-f', file, 'config', '-q'], {
        cwd: stack.dir,
        reject: false,
        all: true,
      });
      expect(res.exitCode, `${file}: ${res.all}`).toBe(0);
    }
  });

  it('docker-compose up gives the same containers, labels, health checks, mounts and ports as regctl up', async () => {
    const up = await regctl(['up', '--dir', stack.dir]);
    expect(up.exitCode, up.all).toBe(0);
    const viaRegctl = await inspect();
    expect(Object.keys(viaRegctl).sort()).toEqual([...CONTAINERS].sort());
    expect(viaRegctl[`${PROJECT}-registry`]).toMatchObject({
      labels: expect.objectContaining({
        'traefik.http.routers.registry.rule': 'Host(`registry.example.test`)',
        'com.docker.compose.service': 'registry',
      }),
      mounts: ['bind ' + stack.dir + '/auth /auth ro', `volume ${PROJECT}_registry-data /var/lib/registry rw`],
      ports: { '5000/tcp': [`127.0.0.1:${stack.ports.registry}`] },
      restart: 'unless-stopped',
      health: 'healthy',
      serviceAlias: true,
      env: expect.arrayContaining([
        'MALLOC_ARENA_MAX=2',
        'MALLOC_MMAP_THRESHOLD_=262144',
        'MALLOC_TRIM_THRESHOLD_=1048576',
      ]),
    });
    // node takes its V8 options before the script; a container that came up healthy accepted them.
    const registryCmd = (viaRegctl[`${PROJECT}-registry`] as { cmd: string[] }).cmd;
    expect(registryCmd.slice(0, 5)).toEqual([
      'node',
      '--max-semi-space-size=1',
      '--heap-growing-percent=30',
      '/opt/regctl/bin/regctl.js',
      'serve',
    ]);
    const down = await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    expect(down.exitCode, down.all).toBe(0);
    expect((await projectResources(PROJECT)).containers).toEqual([]);

    const composeUp = await execa('docker-compose', ['up', '-d', '--no-build'], {
      cwd: stack.dir,
      reject: false,
      all: true,
    });
    expect(composeUp.exitCode, composeUp.all).toBe(0);
    await waitHealthy(180_000);
    const viaCompose = await inspect();
    expect(viaCompose).toEqual(viaRegctl);
  });
});
