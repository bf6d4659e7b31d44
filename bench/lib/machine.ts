import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import type { MachineInfo, Versions } from './model.js';

const exec = promisify(execFile);

/** Runs a command and returns its trimmed stdout, or undefined when it cannot run. */
export async function tryCommand(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await exec(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

export async function which(cmd: string): Promise<string | undefined> {
  return tryCommand('sh', ['-c', `command -v ${cmd}`]);
}

export async function describeDisk(path: string): Promise<string> {
  const mount = await tryCommand('findmnt', ['-no', 'SOURCE,FSTYPE', '--target', path]);
  const [source, fstype] = mount?.split(/\s+/) ?? [];
  const device = source?.replace(/^\/dev\//, '').replace(/\d+$/, '');
  const blk = device ? await tryCommand('lsblk', ['-dno', 'NAME,SIZE,ROTA', `/dev/${device}`]) : undefined;
  const [name, size, rota] = blk?.split(/\s+/) ?? [];
  const kind = rota === '0' ? 'non-rotational' : rota === '1' ? 'reported rotational' : 'kind unknown';
  return `${source ?? 'unknown'} (${fstype ?? '?'}), ${name ?? '?'} ${size ?? '?'}, ${kind}`;
}

export async function machineInfo(dataPath: string, otherWork: string): Promise<MachineInfo> {
  const lscpu = await tryCommand('lscpu', []);
  const hypervisor = lscpu ? /Hypervisor vendor:\s+(.+)/.exec(lscpu)?.[1] : undefined;
  const model = cpus()[0]?.model.trim() ?? 'unknown';
  return {
    cpuModel: hypervisor ? `${model} (${hypervisor} guest)` : model,
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    disk: await describeDisk(dataPath),
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    otherWork,
  };
}

export async function versions(repoRoot: string): Promise<Versions> {
  const pkg = JSON.parse(await readFile(`${repoRoot}/package.json`, 'utf8')) as { version: string };
  const fio = await tryCommand('fio', ['--version']);
  const hyperfine = await tryCommand('hyperfine', ['--version']);
  return {
    node: process.version,
    regctl: pkg.version,
    gitCommit: (await tryCommand('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'])) ?? 'unknown',
    dockerRegistry: (await tryCommand('dpkg-query', ['-W', '-f=${Version}', 'docker-registry'])) ?? 'not installed',
    skopeo: (await tryCommand('skopeo', ['--version'])) ?? 'not installed',
    ...(fio ? { fio } : {}),
    ...(hyperfine ? { hyperfine } : {}),
  };
}
