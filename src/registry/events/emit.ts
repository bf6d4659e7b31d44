/**
 * The events of each kind of change, built from what is known BEFORE the change is made (so that they can be
 * recorded pending ahead of it: outbox.ts): the manifest's digest is the hash of the body, and a tag's old target
 * is read from the index.
 */
import { createHash } from 'node:crypto';
import type { Ctx } from '../http/context.js';
import type { ManifestRef } from '../storage/manifest-store.js';
import type { EventInput, RegistryEvent } from './outbox.js';

function requestOf(ctx: Ctx): NonNullable<RegistryEvent['request']> {
  const h = ctx.req.headers;
  return {
    addr: ctx.req.socket.remoteAddress,
    host: typeof h.host === 'string' ? h.host : undefined,
    method: ctx.req.method,
    useragent: typeof h['user-agent'] === 'string' ? h['user-agent'] : undefined,
  };
}

function common(ctx: Ctx): Pick<EventInput, 'request' | 'actor'> {
  return { request: requestOf(ctx), actor: ctx.state.user !== undefined ? { name: ctx.state.user } : {} };
}

function mediaTypeOf(body: Buffer, header: string | undefined): string | undefined {
  if (header) return header.split(';')[0]?.trim();
  try {
    const t = (JSON.parse(body.toString()) as { mediaType?: unknown }).mediaType;
    return typeof t === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A manifest PUT: `push` for the manifest (once per tag it sets), and `tag-move` for each tag that pointed elsewhere. */
export async function pushEvents(
  ctx: Ctx,
  name: string,
  ref: ManifestRef,
  body: Buffer,
  contentType: string | undefined,
  extraTags: readonly string[],
): Promise<EventInput[]> {
  const digest = 'digest' in ref ? ref.digest.value : `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const base = {
    mediaType: mediaTypeOf(body, contentType),
    size: body.length,
    length: body.length,
    digest,
    repository: name,
    url: `/v2/${name}/manifests/${digest}`,
  };
  const tags = 'tag' in ref ? [ref.tag] : [...new Set(extraTags)];
  if (tags.length === 0) return [{ action: 'push', target: base, ...common(ctx) }];
  const out: EventInput[] = [];
  for (const tag of tags) {
    out.push({ action: 'push', target: { ...base, tag }, ...common(ctx) });
    const previous = await ctx.store.index.tagTarget(name, tag);
    if (previous !== undefined && previous !== digest)
      out.push({ action: 'tag-move', target: { ...base, tag, previousDigest: previous }, ...common(ctx) });
  }
  return out;
}

/** A manifest or tag DELETE: one `delete` for the manifest (by digest), and one for each tag that goes. */
export function deleteEvents(
  ctx: Ctx,
  name: string,
  digest: string | undefined,
  tags: readonly string[],
  manifest: boolean,
): EventInput[] {
  const target = { repository: name, digest, url: digest && `/v2/${name}/manifests/${digest}` };
  const out: EventInput[] = tags.map((tag) => ({ action: 'delete', target: { ...target, tag }, ...common(ctx) }));
  if (manifest) out.unshift({ action: 'delete', target, ...common(ctx) });
  return out;
}

/** A blob DELETE (its link in one repository). */
export function blobDeleteEvent(ctx: Ctx, name: string, digest: string): EventInput {
  return {
    action: 'delete',
    target: { repository: name, digest, mediaType: 'application/octet-stream', url: `/v2/${name}/blobs/${digest}` },
    ...common(ctx),
  };
}

/** A manifest GET (a pull), recorded after the fact: a pull changes nothing a crash could lose half of. */
export function pullEvent(
  ctx: Ctx,
  name: string,
  tag: string | undefined,
  m: { digest: string; mediaType: string; body: Buffer },
): EventInput {
  const target = {
    repository: name,
    digest: m.digest,
    mediaType: m.mediaType,
    size: m.body.length,
    length: m.body.length,
    url: `/v2/${name}/manifests/${m.digest}`,
    ...(tag !== undefined ? { tag } : {}),
  };
  return { action: 'pull', target, ...common(ctx) };
}
