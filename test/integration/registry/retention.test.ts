/**
 * Retention on a repository of 800 tags, through the admin API as `regctl retention` drives it, against a real
 * registry over HTTP (filesystem storage, SQLite metadata): the dry run explains each decision, the run keeps exactly
 * what the rules say, the GC frees the space, and recently pulled tags survive. Push times are planted by setting
 * the tag and revision links' modification times (storage is what the registry reads them from).
 */
import { randomBytes } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicies, type Policies } from '../../../src/common/policies.js';
import type { RetentionReport } from '../../../src/common/retention-api.js';
import { gc } from '../../../src/ops/gc.js';
import { printRetention, retention } from '../../../src/ops/retention.js';
import {
  authHeaders,
  captureOutput,
  OCI_MANIFEST,
  pushBlob,
  putManifest,
  startFixture,
  type Fixture,
} from '../../helpers/day-two-fixture.js';

const H = 3600_000;
const N = 800;
const REPO = 'ci/app';
const LAYER_BYTES = 4096;
const tagName = (i: number): string => `t${String(i).padStart(3, '0')}`;

function policies(): Policies {
  const r = parsePolicies({
    immutableTags: [{ repos: 'ci/**', tags: 'stable' }],
    retention: {
      rules: [
        {
          repos: 'ci/**',
          keepLast: 50,
          keepTags: 'release-*',
          removeOlderThan: '1d',
          untaggedOlderThan: '1d',
          keepPulledWithin: '1h',
        },
      ],
    },
  });
  if (!r.policies) throw new Error(JSON.stringify(r.problems));
  return r.policies;
}

let fx: Fixture;
const digests: string[] = [];
const layers: string[] = [];
let config: { digest: string; size: number };
let untaggedOld = '';
let untaggedYoung = '';
let referrerOfRemoved = '';
let referrerOfKept = '';

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${fx.url}${path}`, { ...init, headers: { ...authHeaders(fx.admin), ...init.headers } });
const tagLink = (tag: string) =>
  join(fx.dataDir, 'docker/registry/v2/repositories', REPO, '_manifests/tags', tag, 'current/link');
const revisionLink = (digest: string) =>
  join(fx.dataDir, 'docker/registry/v2/repositories', REPO, '_manifests/revisions/sha256', digest.slice(7), 'link');
const age = async (path: string, hours: number) => {
  const t = new Date(Date.now() - hours * H);
  await utimes(path, t, t);
};

function manifest(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layers[i], size: LAYER_BYTES }],
    ...extra,
  };
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

beforeAll(async () => {
  fx = await startFixture({ policies: policies() });
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }));
  config = { digest: (await pushBlob(fx.url, REPO, cfg, fx.admin)).digest, size: cfg.length };
  const indexes = Array.from({ length: N + 2 }, (_, i) => i);
  // One small layer per manifest (what the GC frees), 800 tags by manifest PUTs, 16 at a time.
  await pool(indexes, 16, async (i) => {
    const r = await pushBlob(fx.url, REPO, randomBytes(LAYER_BYTES), fx.admin);
    if (r.status !== 201) throw new Error(`layer ${i}: ${r.status}`);
    layers[i] = r.digest;
  });
  await pool(indexes.slice(0, N), 16, async (i) => {
    const m = await putManifest(fx.url, REPO, tagName(i), manifest(i), OCI_MANIFEST, fx.admin);
    if (m.status !== 201) throw new Error(`manifest ${i}: ${m.status} ${m.body}`);
    digests[i] = m.digest;
  });
  // Second tags on two old manifests: one kept by keepTags, one by the immutable rule.
  for (const [tag, i] of [
    ['release-a', 3],
    ['stable', 4],
  ] as const)
    expect((await putManifest(fx.url, REPO, tag, manifest(i), OCI_MANIFEST, fx.admin)).status).toBe(201);
  // Untagged manifests (PUT by digest), and referrers of a removed and of a kept manifest.
  const put = async (body: Record<string, unknown>) => {
    const text = JSON.stringify(body);
    const { createHash } = await import('node:crypto');
    const d = `sha256:${createHash('sha256').update(text).digest('hex')}`;
    const res = await api(`/v2/${REPO}/manifests/${d}`, {
      method: 'PUT',
      body: text,
      headers: { 'content-type': OCI_MANIFEST },
    });
    expect(res.status).toBe(201);
    return d;
  };
  untaggedOld = await put(manifest(N));
  untaggedYoung = await put(manifest(N + 1));
  const subject = (i: number) => ({ mediaType: OCI_MANIFEST, digest: digests[i], size: 1 });
  referrerOfRemoved = await put(manifest(N, { subject: subject(0), artifactType: 'application/x-sig' }));
  referrerOfKept = await put(manifest(N + 1, { subject: subject(N - 1), artifactType: 'application/x-sig' }));
  // Planted push times: t(i) was pushed (800 - i) hours ago, so t799 is the newest.
  for (let i = 0; i < N; i++) {
    await age(tagLink(tagName(i)), N - i);
    await age(revisionLink(digests[i] as string), N - i);
  }
  await age(tagLink('release-a'), 700);
  await age(tagLink('stable'), 600);
  await age(revisionLink(untaggedOld), 72);
  // Pulls: t010 by tag, t020 by digest (GET); t030 only checked (HEAD does not count).
  expect((await api(`/v2/${REPO}/manifests/t010`)).status).toBe(200);
  expect((await api(`/v2/${REPO}/manifests/${digests[20]}`)).status).toBe(200);
  expect((await api(`/v2/${REPO}/manifests/t030`, { method: 'HEAD' })).status).toBe(200);
}, 240_000);

afterAll(async () => {
  await fx?.close();
});

/** The tags the rules keep, worked out by hand from the plan above. */
function expectedTags(): string[] {
  const kept = ['release-a', 'stable', 't010', 't020'];
  for (let i = N - 50; i < N; i++) kept.push(tagName(i));
  return kept.sort();
}

async function tagList(): Promise<string[]> {
  const res = await api(`/v2/${REPO}/tags/list?n=10000`);
  return ((await res.json()) as { tags: string[] }).tags.sort();
}

describe('retention on 800 tags', () => {
  it('the dry run explains every decision and removes nothing; a second run meanwhile is refused', async () => {
    const [a, b] = await Promise.all([
      api('/admin/v1/retention', { method: 'POST', body: '{"dryRun":true}' }),
      api('/admin/v1/retention', { method: 'POST', body: '{"dryRun":true}' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const busy = (await (a.status === 409 ? a : b).json()) as { errors: { code: string }[] };
    expect(busy.errors[0]?.code).toBe('RETENTION_RUNNING');
    const out = captureOutput();
    const s = await retention({ dir: fx.stackDir, dryRun: true, out, env: fx.env });
    const report: RetentionReport = s.report;
    const decisions = report.repositories[0]?.decisions ?? [];
    const tags = decisions.filter((d) => d.kind === 'tag');
    expect(tags).toHaveLength(N + 2);
    const keptTags = tags.filter((d) => d.action === 'keep').map((d) => d.ref);
    expect(keptTags.sort()).toEqual(expectedTags());
    const reason = (ref: string) => tags.find((d) => d.ref === ref)?.reason;
    expect(reason('t799')).toBe('among the newest 50 (#1)');
    expect(reason('t750')).toBe('among the newest 50 (#50)');
    expect(reason('t010')).toMatch(/^pulled \d+m?s ago, within keepPulledWithin 1h$/);
    expect(reason('t020')).toMatch(/^pulled \d+m?s ago, within keepPulledWithin 1h$/);
    expect(reason('release-a')).toBe('matches keepTags release-*');
    expect(reason('stable')).toBe('immutable (policies.immutableTags[0])');
    expect(reason('t030')).toMatch(
      /^beyond the newest 50 \(#\d+\), pushed 32d2h\d*m?\d*s? ago, older than removeOlderThan 1d$/,
    );
    for (const d of tags.filter((x) => x.action === 'remove'))
      expect(d.reason).toMatch(/^beyond the newest 50 \(#\d+\), pushed .* ago, older than removeOlderThan 1d$/);
    const manifests = new Map(decisions.filter((d) => d.kind === 'manifest').map((d) => [d.ref, d]));
    expect(manifests.size).toBe(N + 4);
    expect(manifests.get(digests[3] as string)?.reason).toBe('tagged release-a');
    expect(manifests.get(untaggedOld)?.reason).toMatch(/^untagged, pushed 3d ago, older than untaggedOlderThan 1d$/);
    expect(manifests.get(untaggedYoung)?.action).toBe('keep');
    expect(manifests.get(referrerOfRemoved)?.reason).toBe(`goes with its subject ${digests[0]}`);
    expect(manifests.get(referrerOfKept)?.reason).toBe(`a referrer of the kept manifest ${digests[N - 1]}`);
    expect(report.removed).toEqual({ tags: N + 2 - expectedTags().length, manifests: N - 54 + 2 });
    printRetention(s, out);
    expect(out.lines).toContain(`    would remove tag t000${' '.repeat(28)} ${reason('t000')}`);
    expect(out.lines.filter((l) => l.startsWith('    would remove ') || l.startsWith('    keep '))).toHaveLength(
      N + 2 + N + 4,
    );
    expect(await tagList()).toHaveLength(N + 2);
  }, 120_000);

  it('the run keeps exactly what the rules say, the GC frees the space, a pulled tag survives', async () => {
    const out = captureOutput();
    const s = await retention({ dir: fx.stackDir, dryRun: false, out, env: fx.env });
    expect(s.report.skipped).toEqual([]);
    expect(s.report.removed).toEqual({ tags: N + 2 - expectedTags().length, manifests: N - 54 + 2 });
    expect(await tagList()).toEqual(expectedTags());
    const present = async (d: string) => (await api(`/v2/${REPO}/manifests/${d}`, { method: 'HEAD' })).status;
    expect(await present(digests[0] as string)).toBe(404);
    expect(await present(referrerOfRemoved)).toBe(404);
    expect(await present(untaggedOld)).toBe(404);
    expect(await present(referrerOfKept)).toBe(200);
    expect(await present(untaggedYoung)).toBe(200);
    expect(await present(digests[3] as string)).toBe(200);

    const collected = await gc({
      dir: fx.stackDir,
      dryRun: false,
      deleteUntagged: false,
      graceMs: 0,
      out,
      env: fx.env,
    });
    // 746 manifests' own layers and the old untagged one's, plus the manifests themselves.
    expect(collected.freedBytes).toBeGreaterThanOrEqual((N - 54 + 1) * LAYER_BYTES);
    const blob = async (d: string) => (await api(`/v2/${REPO}/blobs/${d}`, { method: 'HEAD' })).status;
    expect(await blob(layers[0] as string)).toBe(404);
    expect(await blob(layers[30] as string)).toBe(404);
    expect(await blob(layers[10] as string)).toBe(200);
    const pulled = await api(`/v2/${REPO}/manifests/t010`);
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('docker-content-digest')).toBe(digests[10]);
  }, 120_000);
});
