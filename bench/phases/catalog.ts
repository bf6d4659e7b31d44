import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VerifyError, expectStatus } from '../lib/http.js';
import { runAll, timed } from '../lib/load.js';
import type { MetricSpec } from '../lib/model.js';
import type { PhaseSpec, Step } from '../lib/phase.js';
import { imageManifest, walkList } from '../lib/registry-ops.js';
import type { Sizes } from '../lib/sizes.js';
import type { Credentials } from './context.js';

export const TAGGED_REPO = 'catalog/r00000';

export function repoNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `catalog/r${String(i).padStart(5, '0')}`);
}

export function tagNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `t${String(i).padStart(4, '0')}`);
}

function hexOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function put(path: string, data: Buffer | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
}

/**
 * Writes a registry volume in distribution's on-disk layout (the layout both registries serve): `count`
 * repositories each holding one tagged image, and {@link TAGGED_REPO} holding `tagCount` more tags of it.
 * With `already`, the first `already` repositories (and the tags) are taken as written, so a volume grows.
 * Writing the files directly stands for `count` pushes, which the reference, paying bcrypt on each request,
 * would take many minutes to accept.
 */
export async function seedVolume(root: string, count: number, tagCount: number, already = 0): Promise<void> {
  const v2 = join(root, 'docker/registry/v2');
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = Buffer.from('seeded layer\n');
  const configHex = hexOf(config);
  const layerHex = hexOf(layer);
  const manifest = imageManifest({ digest: `sha256:${configHex}`, size: config.length }, [
    { digest: `sha256:${layerHex}`, size: layer.length },
  ]);
  const manifestHex = hexOf(manifest);
  for (const [hex, data] of [
    [configHex, config],
    [layerHex, layer],
    [manifestHex, manifest],
  ] as const) {
    await put(join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), data);
  }
  const link = (hex: string): string => `sha256:${hex}`;
  const tagFiles = (repoDir: string, tag: string): Promise<void>[] => [
    put(join(repoDir, '_manifests/tags', tag, 'current/link'), link(manifestHex)),
    put(join(repoDir, '_manifests/tags', tag, 'index/sha256', manifestHex, 'link'), link(manifestHex)),
  ];
  await runAll(32, repoNames(count).slice(already), async (name) => {
    const repoDir = join(v2, 'repositories', name);
    await Promise.all([
      put(join(repoDir, '_layers/sha256', configHex, 'link'), link(configHex)),
      put(join(repoDir, '_layers/sha256', layerHex, 'link'), link(layerHex)),
      put(join(repoDir, '_manifests/revisions/sha256', manifestHex, 'link'), link(manifestHex)),
      ...tagFiles(repoDir, 'latest'),
    ]);
  });
  if (already > 0) return;
  const taggedDir = join(v2, 'repositories', TAGGED_REPO);
  await runAll(32, tagNames(tagCount), (tag) => Promise.all(tagFiles(taggedDir, tag)).then(() => undefined));
}

/**
 * One walk of `_catalog?n=N` through its Link headers, checked against the `count` repositories {@link seedVolume}
 * wrote (in order, none missing or extra); the cold walk first sends one `GET /v2/` (so a first use of a
 * credential is not counted) and also reports whether every page honoured `n` and `last`, and the start time.
 */
export function catalogWalkStep(
  creds: Credentials,
  count: number,
  n: number,
  label: 'cold' | 'warm',
  startSeconds: Partial<Record<'ours' | 'ref', number>>,
): Step {
  const expectedRepos = repoNames(count);
  return async (server) => {
    const c = server.client(creds, 1);
    try {
      if (label === 'cold') {
        const hello = await c.request('GET', '/v2/');
        expectStatus(hello, 200, 'GET /v2/ before the walk');
      }
      const { value, seconds } = await timed(() => walkList(c, `/v2/_catalog?n=${n}`, 'repositories', n));
      if (value.items.join('\n') !== expectedRepos.join('\n')) {
        throw new VerifyError(
          `catalog walk returned ${value.items.length} repositories, expected the ${count} seeded, in order`,
        );
      }
      return {
        [`walk.${label}.seconds`]: seconds,
        [`walk.${label}.pages`]: value.pages,
        ...(label === 'cold'
          ? {
              'catalog.honoursN': value.violations.length === 0 ? 1 : 0,
              startSeconds: startSeconds[server.name] ?? Number.NaN,
            }
          : {}),
      };
    } finally {
      c.close();
    }
  };
}

/**
 * The catalog walked with `n` twice (the first walk right after the server started on the seeded volume), and
 * the tags of {@link TAGGED_REPO} walked with `n`; every page checked against `n` and `last`, the whole list
 * against what was seeded.
 */
export function catalogPhase(
  sizes: Sizes,
  creds: Credentials,
  count: number,
  startSeconds: Partial<Record<'ours' | 'ref', number>>,
): PhaseSpec {
  const expectedTags = [...tagNames(sizes.tagCount), 'latest'].sort();
  const n = sizes.pageSize;
  const walkStep = (label: 'cold' | 'warm'): Step => catalogWalkStep(creds, count, n, label, startSeconds);
  const tagsStep: Step = async (server) => {
    const c = server.client(creds, 1);
    try {
      const { value, seconds } = await timed(() => walkList(c, `/v2/${TAGGED_REPO}/tags/list?n=${n}`, 'tags', n));
      if ([...value.items].sort().join('\n') !== expectedTags.join('\n')) {
        throw new VerifyError(
          `tags walk returned ${value.items.length} tags, expected the ${expectedTags.length} seeded`,
        );
      }
      return {
        'tags.seconds': seconds,
        'tags.pages': value.pages,
        'tags.honoursN': value.violations.length === 0 && value.pages > 1 ? 1 : 0,
        'tags.sorted': value.items.join('\n') === expectedTags.join('\n') ? 1 : 0,
      };
    } finally {
      c.close();
    }
  };
  const label = count.toLocaleString('en-US');
  const metrics: MetricSpec[] = [
    { id: 'startSeconds', label: `Start on the seeded volume to first healthy answer`, unit: 's', better: 'lower' },
    {
      id: 'walk.cold.seconds',
      label: `Walk ${label} repositories, n=${n}, first walk after start`,
      unit: 's',
      better: 'lower',
      targets: [{ kind: 'max', value: 1 }],
    },
    {
      id: 'walk.warm.seconds',
      label: `Walk ${label} repositories, n=${n}, second walk`,
      unit: 's',
      better: 'lower',
      targets: [{ kind: 'max', value: 1 }],
    },
    { id: 'walk.cold.pages', label: 'Pages in the walk', unit: 'pages', better: 'lower' },
    {
      id: 'catalog.honoursN',
      label: 'Catalog pages honour n and last (1 = yes)',
      unit: 'bool',
      better: 'higher',
      targets: [{ kind: 'min', value: 1 }],
    },
    { id: 'tags.seconds', label: `Walk ${expectedTags.length} tags, n=${n}`, unit: 's', better: 'lower' },
    { id: 'tags.pages', label: 'Pages in the tags walk', unit: 'pages', better: 'lower' },
    {
      id: 'tags.honoursN',
      label: 'Tags pages honour n and last (1 = yes)',
      unit: 'bool',
      better: 'higher',
      targets: [{ kind: 'min', value: 1 }],
    },
    { id: 'tags.sorted', label: 'Tags in lexical order across pages (1 = yes)', unit: 'bool', better: 'higher' },
  ];
  return {
    id: `catalog-${count}`,
    title: `Catalog of ${label} repositories, and ${expectedTags.length} tags, walked with n=${n}`,
    description:
      `A volume in distribution's on-disk layout is written with ${label} repositories (one tagged image each; ` +
      `${TAGGED_REPO} also has ${sizes.tagCount} more tags), and each registry is started on that same volume (this ` +
      'phase only reads it). After one authenticated `GET /v2/` (so the first use of a credential is not counted), ' +
      '`_catalog?n=' +
      n +
      '` is walked through its Link headers twice and the tags list once; every ' +
      'page is checked to hold at most n entries and to start after the previous page, and the whole list against ' +
      'what was written (the walk fails on a missing or extra name).',
    steps: [walkStep('cold'), walkStep('warm'), tagsStep],
    metrics,
  };
}
