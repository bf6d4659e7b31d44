/**
 * `regctl repo delete NAME` (a whole repository, with a preview first) and `regctl maintenance on|off|status` (the
 * registry's read-only fence, raised for maintenance), both through the admin API.
 */
import { RegctlError } from '../common/errors.js';
import type { Output, Prompts } from '../common/io.js';
import { formatBytes, formatDuration } from '../common/units.js';
import { AdminClient, stackEndpoint } from './admin-client.js';

export interface RepoDeletePreview {
  name: string;
  dryRun: boolean;
  tags: string[];
  manifests: number;
  bytes: number;
  protectedTags: string[];
  deleted: boolean;
}

export interface RepoDeleteOptions {
  dir: string;
  name: string;
  /** Only show what would go. */
  dryRun: boolean;
  /** Delete without asking (needed when no one can be asked). */
  yes: boolean;
  overrideImmutable: boolean;
  out: Output;
  prompts: Prompts;
  env?: NodeJS.ProcessEnv;
}

export function printRepoPreview(p: RepoDeletePreview, out: Output): void {
  const shown = p.tags.slice(0, 20).join(', ') + (p.tags.length > 20 ? `, … (${p.tags.length - 20} more)` : '');
  out.line(`  ${p.name}: ${p.tags.length} tag${p.tags.length === 1 ? '' : 's'}${p.tags.length ? ` (${shown})` : ''}`);
  out.line(`  ${p.manifests} manifest${p.manifests === 1 ? '' : 's'} referencing ${formatBytes(p.bytes)}`);
  out.line('  Blobs are freed by the next regctl gc, except those another repository also uses.');
  if (p.protectedTags.length > 0) out.warn(`immutable tags: ${p.protectedTags.join(', ')} (--override-immutable)`);
}

export async function repoDelete(opts: RepoDeleteOptions): Promise<RepoDeletePreview> {
  const client = new AdminClient(await stackEndpoint(opts.dir, opts.env));
  const ask = (dryRun: boolean) =>
    client.json<RepoDeletePreview>('repository delete', 'POST', '/admin/v1/repository-delete', {
      name: opts.name,
      dryRun,
      overrideImmutable: opts.overrideImmutable,
    });
  const preview = await ask(true);
  opts.out.step(`Repository ${opts.name} would lose:`);
  printRepoPreview(preview, opts.out);
  if (opts.dryRun) return preview;
  // The registry refuses it too (403); said here in the registry's words, before asking anything.
  if (preview.protectedTags.length > 0 && !opts.overrideImmutable)
    throw new RegctlError(
      'USAGE',
      `${opts.name} holds immutable tags (${preview.protectedTags.join(', ')}): pass overrideImmutable to delete it`,
      { hint: 'regctl repo delete NAME --override-immutable, if these tags are really to go' },
    );
  if (!opts.yes) {
    if (!opts.prompts.interactive)
      throw new RegctlError('USAGE', `not deleting ${opts.name} without confirmation`, {
        hint: 'pass --yes to delete without being asked, or --dry-run for the preview only',
      });
    if (!(await opts.prompts.confirm(`Delete the whole repository ${opts.name}?`, { default: false })))
      throw new RegctlError('USAGE', `${opts.name} was not deleted`, { hint: 'nothing was changed' });
  }
  const done = await ask(false);
  opts.out.ok(
    `Deleted ${opts.name}: ${done.tags.length} tags, ${done.manifests} manifests; run regctl gc to free blobs`,
  );
  return done;
}

export interface FenceStatus {
  active: boolean;
  until: string | null;
}

/** Turns maintenance (read-only) mode on for `forMs` (at most 24 h, the fence's limit), off, or reports it. */
export async function maintenance(opts: {
  dir: string;
  action: 'on' | 'off' | 'status';
  forMs?: number;
  out: Output;
  env?: NodeJS.ProcessEnv;
}): Promise<FenceStatus> {
  const client = new AdminClient(await stackEndpoint(opts.dir, opts.env));
  const forMs = opts.forMs ?? 24 * 3600_000;
  if (opts.action === 'on' && (forMs < 1000 || forMs > 24 * 3600_000))
    throw new RegctlError('USAGE', `--for ${formatDuration(forMs)} is outside 1s to 24h`, {
      hint: 'maintenance mode lifts by itself at the end; run it again to extend',
    });
  const status =
    opts.action === 'on'
      ? await client.json<FenceStatus>('maintenance on', 'POST', '/admin/v1/fence', { ttlSeconds: forMs / 1000 })
      : opts.action === 'off'
        ? await client.json<FenceStatus>('maintenance off', 'DELETE', '/admin/v1/fence')
        : await client.json<FenceStatus>('maintenance status', 'GET', '/admin/v1/fence');
  if (status.active)
    opts.out.ok(`Maintenance mode is on until ${status.until}: pulls work, pushes and deletes wait then get 503`);
  else opts.out.ok('Maintenance mode is off: the registry accepts writes');
  return status;
}
