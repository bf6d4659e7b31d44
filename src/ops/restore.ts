/**
 * `regctl restore FILE`: puts a backup back into a stopped stack's storage, compose or swarm (back up, `down
 * --volumes`, restore, `up`).
 *
 * The work happens in a one-off container of the stack's own image (`<project>-restore`) with the archive (and any
 * base archives) bind-mounted read-only, and the target restore-target.ts describes: the data volume mounted
 * read-write (no network), or the stack's bucket through the registry's own S3 flags and credentials file. Its
 * command is `regctl restore --data /var/lib/registry --json-lines …` (`restoreDirectory` below: everything is
 * checked in a staging directory inside the volume before one rename puts it in place; see
 * registry/backup/restore.ts) or `regctl restore --storage s3://… --json-lines …` (`restoreStorage`: the whole
 * archive checked before the first write). A refused restore leaves the target as it was, and removes the volume
 * again if this run created it.
 */
import { createInterface } from 'node:readline';
import { basename, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import type { ContainerSpec, DockerEngine } from '../docker/engine.js';
import {
  readArchiveManifest,
  restoreArchive,
  RestoreRefused,
  type RestoreProgress,
  type RestoreResult,
} from '../registry/backup/restore.js';
import { restoreIntoStorage } from '../registry/backup/restore-storage.js';
import type { StorageDriver } from '../registry/storage/driver.js';
import { REGCTL_BIN } from '../stack/build-model.js';
import { LABELS, type StackModel } from '../stack/model.js';
import { ensureRestoreNetwork, restoreTarget, type RestoreTarget } from './restore-target.js';
import { progressLine } from './backup.js';
import { loadStack, projectLabels } from './stack.js';

export interface RestoreDirectoryOptions {
  archive: string;
  dataDir: string;
  force: boolean;
  bases: string[];
  /** Called as files are checked and written (bytes, files, phase). */
  onProgress?: (p: RestoreProgress) => void;
}

async function assertFiles(paths: string[]): Promise<void> {
  for (const f of paths) {
    const s = await stat(f).catch(() => undefined);
    if (!s?.isFile())
      throw new RegctlError('NOT_FOUND', `${f} is not a file`, {
        hint: 'give the path of a backup archive written by `regctl backup`',
      });
  }
}

function refusal(err: RestoreRefused): RegctlError {
  if (err.reason === 'NOT_EMPTY')
    return new RegctlError('FILE_EXISTS', err.message, { hint: 'add --force to replace the data that is there' });
  if (err.reason === 'BASE_MISSING')
    return new RegctlError('BACKUP_INVALID', err.message, { hint: 'pass the previous backup(s) with --base FILE' });
  return new RegctlError('BACKUP_INVALID', err.message, {
    hint: 'use another copy of the backup; this one cannot be trusted',
  });
}

/** Restores into a data directory on this machine (also what the restore container runs). */
export async function restoreDirectory(opts: RestoreDirectoryOptions): Promise<RestoreResult> {
  return checkedRestore(opts, () =>
    restoreArchive({
      archive: opts.archive,
      dataDir: opts.dataDir,
      force: opts.force,
      bases: opts.bases,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    }),
  );
}

/** Restores into a bucket (`regctl restore --storage s3://…`), the registries on it stopped; see restore-storage.ts. */
export async function restoreStorage(
  opts: Omit<RestoreDirectoryOptions, 'dataDir'> & { driver: StorageDriver; where: string },
): Promise<RestoreResult> {
  return checkedRestore(opts, () =>
    restoreIntoStorage({
      archive: opts.archive,
      driver: opts.driver,
      where: opts.where,
      force: opts.force,
      bases: opts.bases,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    }),
  );
}

/** Runs a restore once its archive and bases are found readable; a refusal becomes the CLI's one-line error. */
async function checkedRestore(
  opts: { archive: string; bases: string[] },
  restore: () => Promise<RestoreResult>,
): Promise<RestoreResult> {
  await assertFiles([opts.archive, ...opts.bases]);
  try {
    return await restore();
  } catch (err) {
    if (err instanceof RestoreRefused) throw refusal(err);
    throw err;
  }
}

export interface RestoreStackOptions {
  dir: string;
  archive: string;
  bases: string[];
  force: boolean;
  out: Output;
  engine: DockerEngine;
}

export interface RestoreStackResult extends RestoreResult {
  /** What was restored into: `volume NAME` or the bucket's `s3://` URL. */
  target: string;
  /** The data volume, when the stack's storage is one. */
  volume?: string;
  volumeCreated: boolean;
  seconds: number;
}

/** One line of the restore container's `--json-lines` output. */
export type RestoreEvent =
  | { event: 'progress'; progress: RestoreProgress }
  | { event: 'done'; result: RestoreResult }
  | { event: 'error'; code: string; message: string; hint?: string };

/** Checks the archive (and that an incremental one has its base) before anything touches the engine. */
async function checkArchive(archive: string, bases: string[], out: Output): Promise<void> {
  await assertFiles([archive, ...bases]);
  let manifest;
  try {
    manifest = await readArchiveManifest(archive);
  } catch (err) {
    if (err instanceof RestoreRefused) throw refusal(err);
    throw err;
  }
  out.ok(
    `Archive ${basename(archive)}: backup ${manifest.id} of ${manifest.createdAt} (regctl ${manifest.regctlVersion}), ${manifest.repositories.length} repositories, ${manifest.files.length} files`,
  );
  if (manifest.base && bases.length === 0) {
    throw new RegctlError(
      'BACKUP_INVALID',
      `${basename(archive)} is incremental (based on backup ${manifest.base.id} of ${manifest.base.createdAt})`,
      { hint: 'pass the previous backup with --base FILE' },
    );
  }
}

/** The one-off restore container: the target (volume, or bucket flags and credentials), the archives read-only. */
function restoreContainerSpec(
  model: StackModel,
  target: RestoreTarget,
  opts: { archive: string; bases: string[]; force: boolean },
): ContainerSpec {
  const { archive, bases } = opts;
  const mounts: ContainerSpec['mounts'] = [
    ...target.mounts,
    { type: 'bind', source: archive, target: `/backup/${basename(archive)}`, readOnly: true },
    ...bases.map((b, i) => ({
      type: 'bind' as const,
      source: b,
      target: `/backup/base-${i}/${basename(b)}`,
      readOnly: true,
    })),
  ];
  const command = [
    ...REGCTL_BIN,
    'restore',
    `/backup/${basename(archive)}`,
    ...target.targetArgs,
    '--json-lines',
    ...(opts.force ? ['--force'] : []),
    ...bases.flatMap((b, i) => ['--base', `/backup/base-${i}/${basename(b)}`]),
  ];
  return {
    name: `${model.project}-restore`,
    image: target.image,
    command,
    env: { ...target.env },
    labels: { ...projectLabels(model), [LABELS.managedBy]: 'regctl', [LABELS.service]: 'restore' },
    ports: [],
    mounts,
    restart: 'no',
    network: target.network?.name ?? 'none',
    aliases: [],
  };
}

type RestoreFailure = Extract<RestoreEvent, { event: 'error' }>;

/**
 * Runs the restore container to its end, showing its progress events; returns its result or its failure (one it
 * reported, or its exit code and last other output lines). The container is removed either way.
 */
async function runRestoreContainer(
  engine: DockerEngine,
  spec: ContainerSpec,
  out: Output,
  started: number,
): Promise<{ result: RestoreResult } | { failure: RestoreFailure }> {
  const { name } = spec;
  let result: RestoreResult | undefined;
  let failure: RestoreFailure | undefined;
  const other: string[] = [];
  try {
    await engine.createContainer(spec);
    await engine.startContainer(name);
    const logs = await engine.logs(name, { follow: true });
    for await (const line of createInterface({ input: logs, crlfDelay: Infinity })) {
      let ev: RestoreEvent | undefined;
      try {
        ev = JSON.parse(line) as RestoreEvent;
      } catch {
        other.push(line);
        continue;
      }
      if (ev.event === 'progress') {
        const p = ev.progress;
        out.progress(
          `${p.phase === 'move' ? 'moving into place' : 'verifying'} ${progressLine(p.bytes, p.totalBytes, started)}, ${p.files}/${p.totalFiles} files`,
        );
      } else if (ev.event === 'done') result = ev.result;
      else if (ev.event === 'error') failure = ev;
    }
    let info = await engine.inspectContainer(name);
    const deadline = Date.now() + 30_000;
    while (info && info.state === 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      info = await engine.inspectContainer(name);
    }
    if (!result && !failure) {
      failure = {
        event: 'error',
        code: 'INTERNAL',
        message: `the restore container exited with code ${info?.exitCode ?? '?'}${other.length ? `: ${other.slice(-5).join(' | ')}` : ''}`,
      };
    }
  } finally {
    await engine.removeContainer(name).catch(() => false);
  }
  return failure || !result ? { failure: failure as RestoreFailure } : { result };
}

export async function restoreStack(opts: RestoreStackOptions): Promise<RestoreStackResult> {
  const { out, engine } = opts;
  const archive = resolve(opts.archive);
  const bases = opts.bases.map((b) => resolve(b));
  await checkArchive(archive, bases, out);

  await engine.ping();
  const stack = await loadStack(opts.dir);
  const target = await restoreTarget(stack, engine);
  const volumeCreated = target.volume ? await engine.ensureVolume(target.volume.name, target.volume.labels) : false;
  const networkCreated = await ensureRestoreNetwork(engine, stack, target);
  const spec = restoreContainerSpec(stack.model, target, { archive, bases, force: opts.force });
  await engine.removeContainer(spec.name);
  out.step(
    `Restoring into ${target.where}${volumeCreated ? ' (created)' : ''} with a one-off ${target.image} container`,
  );
  const started = Date.now();
  let outcome: Awaited<ReturnType<typeof runRestoreContainer>>;
  try {
    outcome = await runRestoreContainer(engine, spec, out, started);
  } finally {
    if (networkCreated && target.network) await engine.removeNetwork(target.network.name).catch(() => false);
  }
  if ('failure' in outcome) {
    if (volumeCreated && target.volume) await engine.removeVolume(target.volume.name).catch(() => false);
    const f = outcome.failure;
    const code = f.code === 'BACKUP_INVALID' || f.code === 'FILE_EXISTS' || f.code === 'USAGE' ? f.code : 'INTERNAL';
    throw new RegctlError(code, f.message, f.hint ? { hint: f.hint } : {});
  }
  const { result } = outcome;
  const seconds = (Date.now() - started) / 1000;
  out.ok(
    `Restored ${result.files} files (${progressLine(result.bytes, undefined, started)}) into ${target.where}${result.replaced ? ', replacing what was there' : ''}`,
  );
  out.line(`  Start the stack: regctl up --dir ${stack.dir}`);
  return {
    ...result,
    target: target.where,
    ...(target.volume ? { volume: target.volume.name } : {}),
    volumeCreated,
    seconds,
  };
}
