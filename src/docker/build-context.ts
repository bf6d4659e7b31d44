/**
 * The build context of the `regctl:<version>` image: this package as installed, nothing else.
 *
 * Included: package.json, package-lock.json, bin/, dist/, templates/ and the production part of
 * node_modules/ (packages the lock marks `dev: true` are left out, as are caches). Excluded everywhere:
 * src/, test/, .git, source maps of tests, editor and cache directories. The host's node_modules are
 * copied rather than installed in the build, because a build may have no network.
 *
 * `contextHash` covers every included path, mode and byte, so an image labelled with it can be reused
 * as long as nothing in the package changed.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, readlink, lstat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { pack } from 'tar-fs';

export const CONTEXT_HASH_LABEL = 'dev.regctl.context-hash';
export const DOCKERFILE_PATH = 'templates/Dockerfile';

const TOP_LEVEL = ['package.json', 'package-lock.json', 'bin', 'dist', 'templates', 'node_modules'];
const SKIP_NAMES = new Set([
  '.git',
  '.cache',
  '.vite',
  '.vitest',
  'coverage',
  '.DS_Store',
  'node_modules/.package-lock.json',
  'dist/test',
  'dist/src',
  'dist/bench',
  'dist/vitest.config.js',
]);

/** The root of this package (two levels above both `src/docker` and `dist/docker`). */
export function packageRoot(): string {
  return fileURLToPath(new URL('../..', import.meta.url)).replace(/[\\/]$/, '');
}

/** Directories under node_modules that only development needs, per the lockfile. */
export function devOnlyPackages(root: string): Set<string> {
  const lockPath = join(root, 'package-lock.json');
  const dev = new Set<string>();
  if (!existsSync(lockPath)) return dev;
  const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { packages?: Record<string, { dev?: boolean }> };
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (path && entry.dev === true) dev.add(path);
  }
  return dev;
}

export interface ContextFiles {
  root: string;
  /** Paths relative to root, '/'-separated, sorted. */
  files: string[];
}

/** Lists what goes into the image; `dist/` must exist (run `npm run build`). */
export async function collectContextFiles(root: string = packageRoot()): Promise<ContextFiles> {
  const dev = devOnlyPackages(root);
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const abs = join(root, rel);
    const st = await lstat(abs);
    if (st.isDirectory()) {
      if (rel.startsWith('node_modules/') && dev.has(rel)) return;
      const names = (await readdir(abs)).sort();
      for (const name of names) {
        const child = `${rel}/${name}`;
        if (SKIP_NAMES.has(name) || SKIP_NAMES.has(child)) continue;
        await walk(child);
      }
      return;
    }
    if (st.isFile() || st.isSymbolicLink()) files.push(rel);
  };
  for (const top of TOP_LEVEL) {
    if (existsSync(join(root, top))) await walk(top);
  }
  files.sort();
  return { root, files: files.map((f) => f.split(sep).join('/')) };
}

/** sha256 over every file's path, kind, executable bit and content (or symlink target). */
export async function contextHash(ctx: ContextFiles, extra: Record<string, string> = {}): Promise<string> {
  const hash = createHash('sha256');
  for (const [k, v] of Object.entries(extra).sort(([a], [b]) => a.localeCompare(b))) hash.update(`arg\0${k}\0${v}\0`);
  for (const rel of ctx.files) {
    const abs = join(ctx.root, rel);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) {
      hash.update(`link\0${rel}\0${await readlink(abs)}\0`);
      continue;
    }
    hash.update(`file\0${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`);
    hash.update(await readFile(abs));
  }
  return hash.digest('hex');
}

/** The context as a tar stream, owned by root inside the image. */
export function contextTar(ctx: ContextFiles): Readable {
  return pack(ctx.root, {
    entries: ctx.files,
    map: (header) => ({ ...header, uid: 0, gid: 0 }),
  }) as unknown as Readable;
}
