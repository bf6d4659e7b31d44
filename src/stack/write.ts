/**
 * Writing a stack directory safely.
 *
 * Every file is written atomically (temp file in the same directory, fsync, rename, fsync of the directory),
 * with its mode set before the rename, so a reader (or a crash) never sees half a file or a secret with
 * loose permissions.
 *
 * Re-renders go through a plan: each file's new content is compared with what is on disk and with what
 * regctl wrote last time (sha256 recorded in `.regctl/rendered.json`), giving one status per file:
 * - `create`: not on disk;
 * - `unchanged`: on disk with the same content;
 * - `change`: on disk as regctl last wrote it, and the new render differs;
 * - `edited`: on disk with content regctl did not write (a person edited it), and the new render differs;
 * - `keep`: a secret that already exists and is never re-rendered (auth/htpasswd).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir, readIfExists } from '../common/fs.js';

export interface StackFile {
  /** Path relative to the stack directory, with `/` separators. */
  path: string;
  content: string;
  mode: number;
  /** Holds a password or hash: mode 0600, never printed. */
  secret: boolean;
  /** When the file exists, keep it as it is (never re-rendered). */
  keepExisting?: boolean;
}

export type FileStatus = 'create' | 'unchanged' | 'change' | 'edited' | 'keep';

export interface PlannedFile extends StackFile {
  status: FileStatus;
}

export const STATE_FILE = '.regctl/rendered.json';

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Atomically replaces `path` with `content` and gives it `mode`. Parent directories are created. */
export async function atomicWrite(path: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content);
    // The umask may have narrowed the mode given to open; set it exactly before the file becomes visible.
    await handle.chmod(mode);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

async function readState(dir: string): Promise<Record<string, string>> {
  const text = await readIfExists(join(dir, STATE_FILE));
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // A damaged state file only means every differing file counts as edited.
  }
  return {};
}

/** Compares each file's new content with the disk; writes nothing. */
export async function planStack(dir: string, files: StackFile[]): Promise<PlannedFile[]> {
  const state = await readState(dir);
  const planned: PlannedFile[] = [];
  for (const file of files) {
    const current = await readIfExists(join(dir, file.path));
    let status: FileStatus;
    if (current === undefined) status = 'create';
    else if (file.keepExisting) status = 'keep';
    else if (current === file.content) status = 'unchanged';
    else if (state[file.path] === sha256(current)) status = 'change';
    else status = 'edited';
    planned.push({ ...file, status });
  }
  return planned;
}

export interface ApplyResult {
  written: string[];
  /** Edited files replaced under `force`, each saved first as `<path>.bak`. */
  backups: string[];
}

/**
 * Writes a plan: `create` always; `change` and `edited` only with `force` (an edited file is first saved
 * as `<path>.bak`); `keep` and `unchanged` never (secrets among them get their mode re-asserted).
 * Records the hash of every file regctl wrote or found unchanged.
 */
export async function applyPlan(
  dir: string,
  plan: PlannedFile[],
  opts: { force?: boolean } = {},
): Promise<ApplyResult> {
  const state = await readState(dir);
  const result: ApplyResult = { written: [], backups: [] };
  for (const file of plan) {
    const target = join(dir, file.path);
    const write = file.status === 'create' || (opts.force && (file.status === 'change' || file.status === 'edited'));
    if (write) {
      if (file.status === 'edited') {
        const previous = await readFile(target);
        await atomicWrite(`${target}.bak`, previous, file.secret ? 0o600 : 0o644);
        result.backups.push(`${file.path}.bak`);
      }
      await atomicWrite(target, file.content, file.mode);
      result.written.push(file.path);
    } else if (file.secret) {
      await chmod(target, file.mode);
    }
    if (write || file.status === 'unchanged') state[file.path] = sha256(file.content);
  }
  const sorted = Object.fromEntries(Object.entries(state).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await atomicWrite(join(dir, STATE_FILE), JSON.stringify(sorted, null, 2) + '\n', 0o644);
  return result;
}

/** Files a plan would touch without `force`: what a re-run must report and refuse. */
export function conflicts(plan: PlannedFile[]): PlannedFile[] {
  return plan.filter((f) => f.status === 'change' || f.status === 'edited');
}
