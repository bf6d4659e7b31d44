import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { VerifyError, expectStatus } from '../lib/http.js';
import type { HttpClient } from '../lib/http.js';
import { runAll } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { PhaseSpec, Step } from '../lib/phase.js';
import { OCI_MANIFEST, imageManifest } from '../lib/registry-ops.js';
import { percentile } from '../lib/stats.js';
import type { Credentials } from './context.js';

const MiB = 1024 * 1024;

/** What the start-up-at-scale phase seeds: `repositories` with `tagsPerRepository` tags each. */
export interface ScaleCounts {
  repositories: number;
  tagsPerRepository: number;
  /** Repositories (the first ones by name) also written to storage; the rest exist in the metadata store only. */
  storageSample: number;
  /** Timed tries of each page. */
  tries: number;
}

export type ScaleStoreKind = 'sqlite' | 'postgres';

/** Where the marker naming the import that described storage lives (`metadataMarker` in src/registry/storage/paths.ts). */
export const MARKER_PATH = 'docker/registry/regctl/metadata-id';

export function scaleRepoNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `scale/r${String(i).padStart(6, '0')}`);
}

export function scaleTagNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `v${String(i).padStart(3, '0')}`);
}

/** The part of the metadata store (src/registry/metadata/store.ts) seeding uses. */
interface SeedStore {
  importRepository(
    name: string,
    record: { tags: ReadonlyMap<string, string>; revisions: ReadonlySet<string>; lastPush: number },
    facts: ReadonlyMap<string, SeedFacts>,
  ): Promise<void>;
  setMeta(key: string, value: string): Promise<void>;
  catalogPage(after: string | undefined, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

interface SeedFacts {
  mediaType: string;
  size: number;
  configDigest?: string;
  references: { digest: string; size: number }[];
}

/** How to reach the store to seed: the embedded file of a volume, or a PostgreSQL database. */
export type SeedTarget = { kind: 'sqlite'; volume: string } | { kind: 'postgres'; url: string; password: string };

async function distModule<T>(oursRoot: string, rel: string): Promise<T> {
  return (await import(pathToFileURL(join(oursRoot, 'dist/registry/metadata', rel)).href)) as T;
}

/** Opens the store `regctl serve` would open for `target`, from the build of the checkout under test. */
async function openStore(oursRoot: string, target: SeedTarget): Promise<SeedStore> {
  if (target.kind === 'sqlite') {
    const m = await distModule<{ openSqliteStore(path: string): Promise<SeedStore> }>(oursRoot, 'sqlite-store.js');
    return m.openSqliteStore(join(target.volume, 'regctl/metadata.sqlite'));
  }
  const m = await distModule<{ openPostgresStore(o: { url: string; password: string }): Promise<SeedStore> }>(
    oursRoot,
    'postgres-store.js',
  );
  return m.openPostgresStore({ url: target.url, password: target.password });
}

/** The one image every seeded tag points at: its blobs, manifest and the facts an import records of it. */
function seededImage(): { blobs: [string, Buffer][]; digest: string; facts: SeedFacts } {
  const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = Buffer.from('seeded layer at scale\n');
  const configRef = { digest: `sha256:${hex(config)}`, size: config.length };
  const layerRef = { digest: `sha256:${hex(layer)}`, size: layer.length };
  const manifest = imageManifest(configRef, [layerRef]);
  return {
    blobs: [
      [hex(config), config],
      [hex(layer), layer],
      [hex(manifest), manifest],
    ],
    digest: `sha256:${hex(manifest)}`,
    facts: {
      mediaType: OCI_MANIFEST,
      size: manifest.length,
      configDigest: configRef.digest,
      references: [configRef, layerRef],
    },
  };
}

async function put(path: string, data: Buffer | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
}

/**
 * Writes the storage of the first `counts.storageSample` repositories in distribution's layout (the same image and
 * tags the store holds for them), and the marker with `id`. Storage holding every repository would be millions of
 * small files; the server must not read them at start anyway.
 */
async function writeStorageSample(volume: string, counts: ScaleCounts, id: string): Promise<void> {
  const v2 = join(volume, 'docker/registry/v2');
  const image = seededImage();
  for (const [hex, data] of image.blobs) await put(join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), data);
  const manifestHex = image.digest.slice('sha256:'.length);
  const tags = scaleTagNames(counts.tagsPerRepository);
  await runAll(16, scaleRepoNames(counts.storageSample), async (name) => {
    const repo = join(v2, 'repositories', name);
    const files: [string, string][] = [
      ...image.facts.references.map((r): [string, string] => [
        join(repo, '_layers', r.digest.replace(':', '/'), 'link'),
        r.digest,
      ]),
      [join(repo, '_manifests/revisions/sha256', manifestHex, 'link'), image.digest],
      ...tags.flatMap((t): [string, string][] => [
        [join(repo, '_manifests/tags', t, 'current/link'), image.digest],
        [join(repo, '_manifests/tags', t, 'index/sha256', manifestHex, 'link'), image.digest],
      ]),
    ];
    await Promise.all(files.map(([path, text]) => put(path, text)));
  });
  await put(join(volume, MARKER_PATH), `${id}\n`);
}

/**
 * Seeds the metadata store of `target` through the store's own import (`importRepository`, what start-up and
 * `regctl fsck --rebuild-metadata` call for each repository of storage), then records the import as done for the
 * storage of `volume` (the `meta` keys start-up reads, and the marker on storage), so `regctl serve` on that
 * volume and store starts without importing. Returns the marker's id and the seconds seeding took.
 */
export async function seedScale(
  oursRoot: string,
  volume: string,
  target: SeedTarget,
  counts: ScaleCounts,
): Promise<{ id: string; seconds: number }> {
  const t0 = performance.now();
  const { IMPORT_STATE_KEY } = await distModule<{ IMPORT_STATE_KEY: string }>(oursRoot, 'store.js');
  const { STORAGE_ID_KEY } = await distModule<{ STORAGE_ID_KEY: string }>(oursRoot, 'startup.js');
  const image = seededImage();
  const facts = new Map([[image.digest, image.facts]]);
  const tags = new Map(scaleTagNames(counts.tagsPerRepository).map((t) => [t, image.digest]));
  const revisions = new Set([image.digest]);
  const lastPush = Date.now();
  const id = randomUUID();
  await mkdir(volume, { recursive: true });
  const store = await openStore(oursRoot, target);
  try {
    await store.setMeta(IMPORT_STATE_KEY, 'running');
    await runAll(32, scaleRepoNames(counts.repositories), (name) =>
      store.importRepository(name, { tags, revisions, lastPush }, facts),
    );
    // Counted from the rows: a shared store's repositoryCount() is a cache it re-counts every 30 s, and a recount
    // between another transaction's insert and its commit leaves it short until the next one.
    const stored = await store.catalogPage(undefined, -1);
    if (stored.length !== counts.repositories)
      throw new VerifyError(`seeded store holds ${stored.length} repositories, not ${counts.repositories}`);
    await writeStorageSample(volume, counts, id);
    await store.setMeta(STORAGE_ID_KEY, id);
    await store.setMeta(IMPORT_STATE_KEY, 'done');
  } finally {
    await store.close();
  }
  return { id, seconds: (performance.now() - t0) / 1000 };
}

async function timedPage(
  c: HttpClient,
  path: string,
  key: 'repositories' | 'tags',
): Promise<{ ms: number; list: string[] }> {
  const t0 = performance.now();
  const res = await c.request('GET', path);
  const ms = performance.now() - t0;
  expectStatus(res, 200, `GET ${path}`);
  const list = (JSON.parse(res.body.toString('utf8')) as Record<string, unknown>)[key];
  if (!Array.isArray(list)) throw new VerifyError(`GET ${path}: no ${key} array`);
  return { ms, list: list as string[] };
}

function samePage(path: string, got: string[], want: string[]): void {
  if (got.join('\n') !== want.join('\n'))
    throw new VerifyError(
      `GET ${path}: ${got.length} entries from ${got[0] ?? '(none)'}, expected ${want.length} from ${want[0] ?? '(none)'}`,
    );
}

/**
 * Ours started on a metadata store seeded with `counts` (see {@link seedScale}): time to healthy, a `_catalog` page
 * at the start and in the middle, one repository's tags page, and the process's peak resident set after them.
 */
export function scalePhase(
  kind: ScaleStoreKind,
  counts: ScaleCounts,
  creds: Credentials,
  seeded: { volume: string; id: string; healthySeconds: number; seedSeconds: number },
): PhaseSpec {
  const n = 100;
  const names = scaleRepoNames(counts.repositories);
  const half = Math.floor(counts.repositories / 2);
  const middleAfter = names[half - 1] as string;
  const tagged = names[half] as string;
  const tags = scaleTagNames(counts.tagsPerRepository);
  const pages = [
    { id: 'catalog.first', path: `/v2/_catalog?n=${n}`, key: 'repositories' as const, want: names.slice(0, n) },
    {
      id: 'catalog.middle',
      path: `/v2/_catalog?n=${n}&last=${encodeURIComponent(middleAfter)}`,
      key: 'repositories' as const,
      want: names.slice(half, half + n),
    },
    { id: 'tags', path: `/v2/${tagged}/tags/list?n=${n}`, key: 'tags' as const, want: tags.slice(0, n) },
  ];
  const noImport: Step = async () => {
    const marker = (await readFile(join(seeded.volume, MARKER_PATH), 'utf8')).trim();
    if (marker !== seeded.id)
      throw new VerifyError(
        `the storage marker changed at start (${marker}, seeded ${seeded.id}): the server imported storage`,
      );
    return { healthySeconds: seeded.healthySeconds };
  };
  const pageStep: Step = async (server) => {
    const c = server.client(creds, 1);
    try {
      expectStatus(await c.request('GET', '/v2/'), 200, 'GET /v2/ before the pages');
      const times = new Map(pages.map((p) => [p.id, [] as number[]]));
      for (let i = 0; i < counts.tries; i++)
        for (const p of pages) {
          const { ms, list } = await timedPage(c, p.path, p.key);
          samePage(p.path, list, p.want);
          times.get(p.id)?.push(ms);
        }
      const out: Record<string, number> = {};
      for (const [id, ms] of times) {
        out[`${id}.median.ms`] = percentile(ms, 50);
        out[`${id}.max.ms`] = Math.max(...ms);
      }
      return out;
    } finally {
      c.close();
    }
  };
  const peakStep: Step = async (server) => ({ vmHwmMiB: (await server.lifetimePeakBytes()) / MiB });
  const label = `${counts.repositories.toLocaleString('en-US')} repositories`;
  const totalTags = (counts.repositories * counts.tagsPerRepository).toLocaleString('en-US');
  const store = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  const ms = (id: string, what: string): MetricSpec[] => [
    {
      id: `${id}.median.ms`,
      label: `${what}, median of ${counts.tries}`,
      unit: 'ms',
      better: 'lower',
      targets: [{ kind: 'max', value: 50 }],
    },
    {
      id: `${id}.max.ms`,
      label: `${what}, slowest of ${counts.tries}`,
      unit: 'ms',
      better: 'lower',
      targets: [{ kind: 'max', value: 50 }],
    },
  ];
  const metrics: MetricSpec[] = [
    {
      id: 'healthySeconds',
      label: `Start to the first 200 of /healthz on ${label} (${store} store)`,
      unit: 's',
      better: 'lower',
      targets: [{ kind: 'max', value: 1 }],
      note: 'ours only: the reference keeps no index to start from',
    },
    ...ms('catalog.first', `\`_catalog?n=${n}\`, first page`),
    ...ms('catalog.middle', `\`_catalog?n=${n}&last=\`, a page in the middle`),
    ...ms('tags', `\`tags/list?n=${n}\` of one repository (${counts.tagsPerRepository} tags)`),
    {
      id: 'vmHwmMiB',
      label: 'Peak RSS since start, read after the pages (VmHWM)',
      unit: 'MiB',
      better: 'lower',
      targets: [{ kind: 'max', value: 120 }],
    },
  ];
  return {
    id: `scale-${kind}`,
    title: `Start-up at scale (${store} store, ours only): ${label}, ${totalTags} tags`,
    description:
      `Ours only (the reference keeps no index: it would walk storage). A ${store} metadata store is seeded, ` +
      `untimed (${seeded.seedSeconds.toFixed(1)} s here), through the store's own import (\`importRepository\`, what ` +
      `start-up and \`fsck --rebuild-metadata\` call) with ${label} of ${counts.tagsPerRepository} tags each, and ` +
      'marked as describing the volume (the import state and storage id in `meta`, the marker on storage). Storage ' +
      `holds only the first ${counts.storageSample} of those repositories (the rest would be millions of files); ` +
      "the server's start is checked, untimed, to leave the marker as seeded (an import writes a new one). Ours is " +
      'started as deployed; the start is timed from launching its process to the first 200 of `/healthz` (polled every 50 ms). ' +
      `After one authenticated \`GET /v2/\`, each page is fetched ${counts.tries} times and checked against what was ` +
      'seeded; the middle catalog page and the tags page are of repositories that are not in storage. The peak ' +
      'resident set (VmHWM since start) is read after the pages. The store was written just before the start, so ' +
      'its pages are in the page cache (and, for PostgreSQL, its shared buffers): a start after a reboot reads them ' +
      'from disk.',
    steps: [noImport, pageStep, peakStep],
    metrics,
  };
}
