/**
 * `regctl login --mirror`: the daemon.json merge and diff, the write and dockerd's reload (a child process of the
 * test's own stands in for dockerd: it only has to receive SIGHUP), and containerd's hosts.toml.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { createOutput } from '../../../src/cli/output.js';
import { RegctlError } from '../../../src/common/errors.js';
import { applyMirror, containerdHostsToml, mergeMirror, planMirror } from '../../../src/ops/mirror.js';
import { stackFixture, type StackFixture } from './fixture.js';

const URL_ = 'http://registry.example.test:8080';
const other = { 'log-driver': 'json-file', 'insecure-registries': ['other:5000'], features: { buildkit: true } };

let dir: string | undefined;
let fx: StackFixture | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  await fx?.cleanup();
  dir = undefined;
  fx = undefined;
});

describe('login --mirror: the daemon.json change', () => {
  it('adds the mirror after those there, keeps every other key, and is idempotent', () => {
    const before = JSON.stringify({ ...other, 'registry-mirrors': ['https://mirror.gcr.io'] }, null, 2);
    const plan = mergeMirror('/etc/docker/daemon.json', before, URL_);
    expect(plan.unchanged).toBe(false);
    expect(JSON.parse(plan.after)).toEqual({ ...other, 'registry-mirrors': ['https://mirror.gcr.io', URL_] });
    expect(plan.diff).toContain(`+    "${URL_}"`);
    expect(plan.diff).toContain('--- /etc/docker/daemon.json');
    const again = mergeMirror('/etc/docker/daemon.json', plan.after, URL_);
    expect(again).toMatchObject({ unchanged: true, after: plan.after, diff: '' });
    expect(mergeMirror('/etc/docker/daemon.json', plan.after, `${URL_}/`).unchanged).toBe(true);
    expect(JSON.parse(mergeMirror('/x', '', URL_).after)).toEqual({ 'registry-mirrors': [URL_] });
  });

  it('refuses a file that is not a JSON object, or whose registry-mirrors is not a list, in one line', () => {
    for (const [text, why] of [
      ['{ not json', /^\/x is not valid JSON \(.+\)$/],
      ['[1, 2]', /^\/x is not valid JSON \(not a JSON object\)$/],
      ['{"registry-mirrors": "http://a"}', /^\/x: "registry-mirrors" is not a list of URLs$/],
    ] as const) {
      let err: unknown;
      try {
        mergeMirror('/x', text, URL_);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RegctlError);
      expect((err as RegctlError).message).toMatch(why);
      expect((err as RegctlError).message).not.toContain('\n');
      expect((err as RegctlError).hint).toMatch(/fix \/x by hand first/);
    }
  });

  it('writes atomically at 0644 and sends SIGHUP to the pid in dockerd\'s pid file (daemon.json\'s "pidfile" first)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'regctl-mirror-'));
    const path = join(dir, 'daemon.json');
    const pidfile = join(dir, 'custom.pid');
    await writeFile(pidfile, '4242\n');
    await writeFile(path, JSON.stringify({ pidfile }));
    const plan = await planMirror(URL_, path);
    const sent: [number, string][] = [];
    expect(await applyMirror(plan, { kill: (pid, sig) => void sent.push([pid, sig]) })).toBe(4242);
    expect(sent).toEqual([[4242, 'SIGHUP']]);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ pidfile, 'registry-mirrors': [URL_] });
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await readdir(dir)).sort()).toEqual(['custom.pid', 'daemon.json']);

    await rm(pidfile);
    await expect(applyMirror(await planMirror(URL_, path), { kill: () => undefined })).rejects.toThrow(
      /cannot read dockerd's pid from .*custom\.pid/,
    );
  });

  it("prints containerd's hosts.toml: the registry as server, ours as a pull-and-resolve mirror", () => {
    expect(containerdHostsToml('docker.io', URL_)).toBe(
      [
        `# /etc/containerd/certs.d/docker.io/hosts.toml: pull docker.io images through ${URL_}`,
        'server = "https://registry-1.docker.io"',
        '',
        `[host."${URL_}"]`,
        '  capabilities = ["pull", "resolve"]',
        '',
      ].join('\n'),
    );
    expect(containerdHostsToml('ghcr.io', URL_)).toContain('server = "https://ghcr.io"');
  });
});

async function regctl(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const sink = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
  const code = await main(['node', 'regctl', ...argv], { out: createOutput({ stdout: sink, stderr: sink }), env });
  return { code, out: chunks.join('') };
}

/** A process that stands in for dockerd: prints "ready", then "hup" and exits on SIGHUP. */
async function fakeDockerd(): Promise<{ pid: number; hup: Promise<boolean> }> {
  const script =
    "process.on('SIGHUP', () => { console.log('hup'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);";
  child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const proc = child;
  let text = '';
  proc.stdout?.on('data', (c: Buffer) => (text += String(c)));
  await new Promise<void>((r) => proc.stdout?.on('data', () => text.includes('ready') && r()));
  const hup = new Promise<boolean>((r) => {
    proc.on('exit', () => r(text.includes('hup')));
    setTimeout(() => r(false), 5000).unref();
  });
  return { pid: proc.pid as number, hup };
}

describe('regctl login --mirror', () => {
  it('shows the diff, writes with --yes, reloads dockerd and prints the hosts.toml', async () => {
    fx = await stackFixture('mirror');
    const path = join(fx.dir, 'daemon.json');
    await writeFile(path, JSON.stringify(other, null, 2) + '\n');
    const dockerd = await fakeDockerd();
    const pidfile = join(fx.dir, 'docker.pid');
    await writeFile(pidfile, `${dockerd.pid}\n`);
    const env = { ...process.env, REGCTL_DAEMON_JSON: path, REGCTL_DOCKERD_PIDFILE: pidfile };
    const { code, out } = await regctl(['login', '--mirror', '--yes', '--dir', fx.dir], env);
    expect(code).toBe(0);
    const url = `http://registry.example.test:${fx.ports.http}`;
    expect(out).toContain(`+    "${url}"`);
    expect(out).toContain(`dockerd (pid ${dockerd.pid}) reloaded with SIGHUP`);
    expect(out).toMatch(/registry-mirrors for Docker Hub images only/);
    expect(out).toContain(`[host."${url}"]`);
    expect(await dockerd.hup).toBe(true);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ ...other, 'registry-mirrors': [url] });

    // Run again: nothing to change, nothing signalled.
    const second = await regctl(['login', '--mirror', '--dir', fx.dir], env);
    expect(second.code).toBe(0);
    expect(second.out).toContain(`already lists ${url} in registry-mirrors`);
    expect(second.out).not.toContain('SIGHUP');
  });

  it('bad JSON: one line saying what is wrong, exit non-zero, nothing written, nobody signalled', async () => {
    fx = await stackFixture('mirror');
    const path = join(fx.dir, 'daemon.json');
    await writeFile(path, '{ "debug": true,, }');
    const { code, out } = await regctl(['login', '--mirror', '--yes', '--dir', fx.dir], {
      ...process.env,
      REGCTL_DAEMON_JSON: path,
      REGCTL_DOCKERD_PIDFILE: join(fx.dir, 'no.pid'),
    });
    expect(code).not.toBe(0);
    expect(out.trim().split('\n')[0]).toMatch(
      new RegExp(`${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid JSON`),
    );
    expect(await readFile(path, 'utf8')).toBe('{ "debug": true,, }');
    expect((await readdir(fx.dir)).filter((f) => f.startsWith('daemon.json'))).toEqual(['daemon.json']);
  });
});
