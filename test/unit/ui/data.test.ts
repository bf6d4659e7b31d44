import { describe, expect, it } from 'vitest';
import { platformChildren, platformName, type RepoSummary } from '../../../src/ui/data.js';
import { matchesQuery, paginate, sortSummaries } from '../../../src/ui/listing.js';
import { compareTags } from '../../../src/ui/routes/repository.js';

const repos: RepoSummary[] = [
  { name: 'team/web', tags: 3, size: 11_000_000, updated: '2026-11-03T00:00:00Z' },
  { name: 'docs/site', tags: 1, size: 350_000, updated: '2026-11-28T00:00:00Z' },
  { name: 'ml/trainer', tags: 1, size: undefined, updated: undefined },
  { name: 'team/api', tags: 2, size: 10_000_000, updated: '2026-11-21T00:00:00Z' },
];

describe('sorting and searching repositories', () => {
  it('sorts by each key in both directions, unknown values last, names breaking ties', () => {
    expect(sortSummaries(repos, 'name', false).map((r) => r.name)).toEqual([
      'docs/site',
      'ml/trainer',
      'team/api',
      'team/web',
    ]);
    expect(sortSummaries(repos, 'size', true).map((r) => r.name)).toEqual([
      'team/web',
      'team/api',
      'docs/site',
      'ml/trainer',
    ]);
    expect(sortSummaries(repos, 'size', false).map((r) => r.name)).toEqual([
      'docs/site',
      'team/api',
      'team/web',
      'ml/trainer',
    ]);
    expect(sortSummaries(repos, 'updated', true).map((r) => r.name)).toEqual([
      'docs/site',
      'team/api',
      'team/web',
      'ml/trainer',
    ]);
    expect(sortSummaries(repos, 'tags', true).map((r) => r.name)).toEqual([
      'team/web',
      'team/api',
      'docs/site',
      'ml/trainer',
    ]);
  });

  it('matches every word of the query, ignoring case', () => {
    expect(matchesQuery('team/web', 'TEAM')).toBe(true);
    expect(matchesQuery('team/web', 'web team')).toBe(true);
    expect(matchesQuery('team/web', 'team api')).toBe(false);
    expect(matchesQuery('team/web', '   ')).toBe(true);
  });

  it('paginates with clamping', () => {
    const items = Array.from({ length: 120 }, (_, i) => i);
    expect(paginate(items, 1, 50)).toMatchObject({ page: 1, pages: 3, total: 120, items: items.slice(0, 50) });
    expect(paginate(items, 3, 50).items).toEqual(items.slice(100));
    expect(paginate(items, 99, 50).page).toBe(3);
    expect(paginate(items, Number.NaN, 50).page).toBe(1);
    expect(paginate([], 1, 50)).toMatchObject({ page: 1, pages: 1, total: 0, items: [] });
  });
});

describe('platforms of an index', () => {
  it('names platforms and leaves out attestations', () => {
    const manifests = [
      { mediaType: 'm', digest: 'sha256:a', size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      {
        mediaType: 'm',
        digest: 'sha256:b',
        size: 1,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
      },
      { mediaType: 'm', digest: 'sha256:c', size: 1 },
    ];
    expect(platformChildren(manifests).map(platformName)).toEqual(['linux/arm64/v8', 'unknown']);
  });
});

describe('tag order', () => {
  it('puts latest first, then newest-looking versions', () => {
    expect(['1.9', 'latest', '1.10', '0.9', 'dev'].sort(compareTags)).toEqual(['latest', 'dev', '1.10', '1.9', '0.9']);
  });
});
