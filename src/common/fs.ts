/**
 * Small file-system helpers every layer needs. "Absent" means ENOENT or ENOTDIR (a path under a file); any other
 * error (permissions, I/O) is thrown, so a file that exists but cannot be read is never mistaken for a missing one.
 */
import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';

export function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isAbsent(err)) return undefined;
    throw err;
  }
}

/** Whether anything (file, directory, ...) exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isAbsent(err)) return false;
    throw err;
  }
}

/**
 * Flushes a directory's entries (after a rename or create in it) so the change survives a crash. Filesystems that
 * refuse fsync on directories (EINVAL, EISDIR, ENOTSUP) are tolerated: the rename itself is still atomic there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'ENOTSUP') throw err;
  } finally {
    await handle.close();
  }
}
