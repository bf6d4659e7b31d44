/**
 * What the pages show, computed from the registry API with the session's credentials and cached per session:
 * catalog and tag lists for a short while (they change), manifests and configs by digest for longer (they never
 * change). Fan-out to the registry is bounded so a 2,000-repository list does not flood it.
 */
import pMap from 'p-map';
import type { RepositoryPolicies } from '../common/repository-policies.js';
import type { GcReport, UsageReport } from '../common/admin-api.js';
import { GC_DEFAULTS } from '../common/gc-defaults.js';
import { isAdmin } from './permissions.js';
import {
  isIndex,
  RegistryDeniedError,
  RegistryHttpError,
  RegistryNotFoundError,
  type Descriptor,
  type FetchedManifest,
  type ImageConfig,
  type ImageManifest,
  type RegistryClient,
} from './registry-client.js';
import type { Session } from './sessions.js';

const IMMUTABLE_TTL_MS = 10 * 60_000;
export const FAN_OUT = 8;
/** Without the usage report, a repository's size and date are totalled from its tags only up to this many tags. */
export const DETAIL_TAG_LIMIT = 200;

export interface PlatformInfo {
  platform: string;
  digest: string;
  size: number;
  created: string | undefined;
}

export interface TagInfo {
  tag: string;
  digest: string;
  mediaType: string;
  kind: 'image' | 'index' | 'artifact';
  /** Bytes the tag's content occupies: manifest(s), config(s) and layers, each distinct blob once. */
  size: number;
  created: string | undefined;
  platforms: PlatformInfo[];
}

export interface RepoSummary {
  name: string;
  tags: number | undefined;
  size: number | undefined;
  /** From the admin usage report (`lastPush`) or, without it, the newest image's creation date. */
  updated: string | undefined;
  /** The upstream URL, for a repository of the pull-through cache. */
  cachedFrom?: string;
}

/** A blob (or manifest) a tag needs, with its size. */
type BlobSet = Map<string, number>;

export class RegistryData {
  constructor(
    readonly client: RegistryClient,
    private readonly session: Session,
    private readonly listPageSize = 1000,
  ) {}

  private cached<T>(key: string, compute: () => Promise<T>, ttlMs?: number): Promise<T> {
    return this.session.cache.get(key, compute, ttlMs) as Promise<T>;
  }

  catalog(): Promise<string[]> {
    return this.cached('catalog', () => this.client.catalog(this.listPageSize));
  }

  tags(name: string): Promise<string[]> {
    return this.cached(`tags:${name}`, () => this.client.tags(name, this.listPageSize));
  }

  usage(): Promise<UsageReport> {
    return this.cached('usage', () => this.client.usage());
  }

  /** Under `repo:<name>:`, so a write to the repository drops it (its quota usage changes). */
  repositoryPolicies(name: string): Promise<RepositoryPolicies> {
    return this.cached(`repo:${name}:policies`, () => this.client.repositoryPolicies(name));
  }

  gcDryRun(): Promise<GcReport> {
    return this.cached('gc-dry-run', () => this.client.gcDryRun());
  }

  referrers(name: string, digest: string): Promise<Descriptor[]> {
    return this.cached(`referrers:${name}@${digest}`, () => this.client.referrers(name, digest));
  }

  manifest(name: string, reference: string): Promise<FetchedManifest> {
    if (reference.includes(':'))
      return this.cached(
        `manifest:${name}@${reference}`,
        () => this.client.manifest(name, reference),
        IMMUTABLE_TTL_MS,
      );
    return this.cached(`manifest:${name}:${reference}`, () => this.client.manifest(name, reference));
  }

  config(name: string, digest: string): Promise<{ config: ImageConfig; raw: string }> {
    return this.cached(
      `config:${name}@${digest}`,
      async () => {
        const config = await this.client.blobJson<ImageConfig>(name, digest);
        return { config, raw: JSON.stringify(config, null, 2) };
      },
      IMMUTABLE_TTL_MS,
    );
  }

  /** Drops what a write to `name` makes stale. */
  invalidateRepository(name: string): void {
    this.session.cache.invalidate(
      (key) =>
        key === 'catalog' ||
        key === 'usage' ||
        key === 'gc-dry-run' ||
        key.startsWith(`referrers:${name}@`) ||
        key.startsWith(`repo:${name}:`) ||
        key === `tags:${name}` ||
        key.startsWith(`manifest:${name}:`) ||
        key.startsWith(`tag:${name}:`),
    );
  }

  /** Tag details: digest, kind, size, created, and each platform of an index with its own size and date. */
  tagInfo(name: string, tag: string): Promise<TagInfo> {
    return this.cached(`tag:${name}:${tag}`, async () => {
      const fetched = await this.manifest(name, tag);
      const { kind, size, created, platforms } = await this.describe(name, fetched);
      return { tag, digest: fetched.digest, mediaType: fetched.mediaType, kind, size, created, platforms };
    });
  }

  private async describe(
    name: string,
    fetched: FetchedManifest,
  ): Promise<{ kind: TagInfo['kind']; size: number; created: string | undefined; platforms: PlatformInfo[] }> {
    const blobs = await this.blobSet(name, fetched);
    const size = sum(blobs);
    const m = fetched.manifest;
    if (isIndex(m)) {
      const children = platformChildren(m.manifests);
      const platforms = await pMap(
        children,
        async (d) => {
          const child = await this.manifest(name, d.digest);
          const info = await this.imageInfo(name, child);
          return { platform: platformName(d), digest: d.digest, size: info.size, created: info.created };
        },
        { concurrency: FAN_OUT },
      );
      const created = platforms
        .map((p) => p.created)
        .filter((c): c is string => Boolean(c))
        .sort()
        .at(-1);
      return { kind: 'index', size, created, platforms };
    }
    const info = await this.imageInfo(name, fetched);
    return {
      kind: info.artifact ? 'artifact' : 'image',
      size,
      created: info.created,
      platforms: info.platform
        ? [{ platform: info.platform, digest: fetched.digest, size: info.size, created: info.created }]
        : [],
    };
  }

  private async imageInfo(
    name: string,
    fetched: FetchedManifest,
  ): Promise<{ size: number; created: string | undefined; platform: string | undefined; artifact: boolean }> {
    const m = fetched.manifest as ImageManifest;
    const size = (m.config?.size ?? 0) + (m.layers ?? []).reduce((n, l) => n + (l.size ?? 0), 0);
    if (!isImageConfig(m)) {
      return {
        size,
        created: m.annotations?.['org.opencontainers.image.created'],
        platform: undefined,
        artifact: true,
      };
    }
    try {
      const { config } = await this.config(name, m.config.digest);
      const platform =
        config.os && config.architecture
          ? [config.os, config.architecture, config.variant].filter(Boolean).join('/')
          : undefined;
      return {
        size,
        created: config.created ?? m.annotations?.['org.opencontainers.image.created'],
        platform,
        artifact: false,
      };
    } catch (err) {
      if (err instanceof RegistryNotFoundError || err instanceof RegistryHttpError)
        return { size, created: undefined, platform: undefined, artifact: false };
      throw err;
    }
  }

  /** Every blob and manifest a manifest needs (children of an index included), each counted once. */
  async blobSet(name: string, fetched: FetchedManifest): Promise<BlobSet> {
    const out: BlobSet = new Map();
    out.set(fetched.digest, Buffer.byteLength(fetched.raw));
    const m = fetched.manifest;
    if (isIndex(m)) {
      const children = await pMap(
        m.manifests,
        async (d) => {
          try {
            return await this.manifest(name, d.digest);
          } catch (err) {
            if (err instanceof RegistryNotFoundError) return undefined;
            throw err;
          }
        },
        { concurrency: FAN_OUT },
      );
      for (const child of children) if (child) for (const [d, s] of await this.blobSet(name, child)) out.set(d, s);
    } else {
      if (m.config) out.set(m.config.digest, m.config.size);
      for (const l of m.layers ?? []) out.set(l.digest, l.size);
    }
    return out;
  }

  /** Every tag of a repository with details, fetched with bounded concurrency. */
  async tagInfos(name: string, tags: readonly string[]): Promise<(TagInfo | { tag: string; error: string })[]> {
    return pMap(
      tags,
      async (tag) => {
        try {
          return await this.tagInfo(name, tag);
        } catch (err) {
          if (err instanceof RegistryNotFoundError || err instanceof RegistryDeniedError)
            return { tag, error: err.message };
          throw err;
        }
      },
      { concurrency: FAN_OUT },
    );
  }

  /**
   * Where each repository of the pull-through cache is cached from (its upstream's URL); the registry's own
   * repositories are absent. Admins read it from the usage report; other users from each tags list's header.
   */
  async cachedSources(names: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (isAdmin(this.session.whoami)) {
      const usage = await this.usage().catch((err: unknown) => {
        if (err instanceof RegistryNotFoundError) return undefined;
        throw err;
      });
      if (usage) {
        const wanted = new Set(names);
        for (const r of usage.repositories) if (r.cachedFrom && wanted.has(r.name)) out.set(r.name, r.cachedFrom);
        return out;
      }
    }
    await pMap(
      names,
      async (name) => {
        const from = await this.cached(`cached-from:${name}`, () =>
          this.client.cachedFrom(name).catch((err: unknown) => {
            if (err instanceof RegistryNotFoundError || err instanceof RegistryDeniedError) return undefined;
            throw err;
          }),
        );
        if (from) out.set(name, from);
      },
      { concurrency: FAN_OUT },
    );
    return out;
  }

  /**
   * Summaries for the list page. Admins get everything from one usage report; other users get tag counts for
   * all repositories and sizes/dates for those in `detailed` (the visible page, or all when sorting needs them).
   */
  async summaries(names: readonly string[], detailed: ReadonlySet<string> | 'all'): Promise<Map<string, RepoSummary>> {
    const out = new Map<string, RepoSummary>();
    if (isAdmin(this.session.whoami)) {
      try {
        const usage = await this.usage();
        const byName = new Map(usage.repositories.map((r) => [r.name, r]));
        for (const name of names) {
          const r = byName.get(name);
          out.set(name, {
            name,
            tags: r?.tags,
            size: r ? r.exclusiveBytes + r.sharedBytes : undefined,
            updated: r?.lastPush ?? undefined,
          });
        }
        return out;
      } catch (err) {
        if (!(err instanceof RegistryNotFoundError)) throw err;
      }
    }
    await pMap(
      names,
      async (name) => {
        const tags = await this.tags(name).catch((err: unknown) => {
          if (err instanceof RegistryNotFoundError || err instanceof RegistryDeniedError) return undefined;
          throw err;
        });
        if (!tags || tags.length > DETAIL_TAG_LIMIT || (detailed !== 'all' && !detailed.has(name))) {
          out.set(name, { name, tags: tags?.length, size: undefined, updated: undefined });
          return;
        }
        out.set(name, await this.repoDetails(name, tags));
      },
      { concurrency: FAN_OUT },
    );
    return out;
  }

  private repoDetails(name: string, tags: readonly string[]): Promise<RepoSummary> {
    return this.cached(`repo:${name}:${tags.length}`, async () => {
      const infos = await this.tagInfos(name, tags);
      const blobs: BlobSet = new Map();
      let updated: string | undefined;
      await pMap(
        infos,
        async (info) => {
          if ('error' in info) return;
          if (info.created && (!updated || info.created > updated)) updated = info.created;
          const fetched = await this.manifest(name, info.digest);
          for (const [d, s] of await this.blobSet(name, fetched)) blobs.set(d, s);
        },
        { concurrency: 2 },
      );
      return { name, tags: tags.length, size: sum(blobs), updated };
    });
  }
}

export interface DeletePreview {
  name: string;
  tag: string;
  info: TagInfo;
  /** Other tags pointing at the same digest: they stay, and so does the image. */
  siblings: string[];
  /**
   * Bytes of blobs and manifests that no other tag of this repository needs: a GC that removes untagged manifests
   * (`regctl gc --delete-untagged`) may free up to this much.
   */
  exclusiveBytes: number;
  exclusiveBlobs: number;
  /** What the next GC with the defaults (GC_DEFAULTS) frees because of this delete: 0 while it keeps untagged ones. */
  gcFreesBytes: number;
  /** What a GC with the defaults would free right now, before this delete (admin dry run); undefined without the admin API. */
  reclaimableNow: number | undefined;
}

export async function deletePreview(
  data: RegistryData,
  name: string,
  tag: string,
  admin: boolean,
): Promise<DeletePreview> {
  const info = await data.tagInfo(name, tag);
  const others = (await data.tags(name)).filter((t) => t !== tag);
  const otherInfos = await data.tagInfos(name, others);
  const siblings: string[] = [];
  const keep = new Set<string>();
  await pMap(
    otherInfos,
    async (o) => {
      if ('error' in o) return;
      if (o.digest === info.digest) siblings.push(o.tag);
      for (const d of (await data.blobSet(name, await data.manifest(name, o.digest))).keys()) keep.add(d);
    },
    { concurrency: FAN_OUT },
  );
  siblings.sort();
  let exclusiveBytes = 0;
  let exclusiveBlobs = 0;
  if (siblings.length === 0) {
    for (const [d, s] of await data.blobSet(name, await data.manifest(name, info.digest))) {
      if (keep.has(d)) continue;
      exclusiveBytes += s;
      exclusiveBlobs++;
    }
  }
  let reclaimableNow: number | undefined;
  if (admin) {
    try {
      reclaimableNow = (await data.gcDryRun()).freedBytes;
    } catch (err) {
      if (!(err instanceof RegistryNotFoundError || err instanceof RegistryHttpError)) throw err;
    }
  }
  const gcFreesBytes = GC_DEFAULTS.deleteUntagged ? exclusiveBytes : 0;
  return { name, tag, info, siblings, exclusiveBytes, exclusiveBlobs, gcFreesBytes, reclaimableNow };
}

export function platformName(d: Descriptor): string {
  const p = d.platform;
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** An index's entries that are runnable images (attestations and unknown/unknown entries are not platforms). */
export function platformChildren(manifests: readonly Descriptor[]): Descriptor[] {
  return manifests.filter(
    (d) =>
      d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' &&
      !(d.platform?.os === 'unknown' && d.platform.architecture === 'unknown'),
  );
}

/** Whether a manifest's config is a container image config (an artifact's is anything else). */
export function isImageConfig(m: ImageManifest): boolean {
  const t = m.config?.mediaType;
  return t === 'application/vnd.oci.image.config.v1+json' || t === 'application/vnd.docker.container.image.v1+json';
}

function sum(blobs: BlobSet): number {
  let n = 0;
  for (const s of blobs.values()) n += s;
  return n;
}
