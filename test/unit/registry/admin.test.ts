import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { pushBlob, pushImage, sha256, startRegistry, USERS, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeEach(async () => {
  reg = await startRegistry();
});
afterEach(() => reg.stop());

const json = (body: unknown) => ({
  method: 'POST',
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ages files and waits past a 1 s grace window: GC judges age by file time and by the last use it saw. */
async function ageAll(root: string, seconds: number): Promise<void> {
  await sleep(1200);
  const t = new Date(Date.now() - seconds * 1000);
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      await utimes(p, t, t);
    }
  };
  await walk(root);
}

describe('usage', () => {
  it('splits exclusive and shared bytes over deduplicated blobs', async () => {
    const shared = 'shared layer bytes';
    await pushImage(reg, 'u/one', 'one', { layers: [shared, 'only in one'] });
    await pushImage(reg, 'u/two', 'two', { layers: [shared] });
    const res = await reg.fetch('/admin/v1/usage');
    expect(res.status).toBe(200);
    const usage = (await res.json()) as {
      totalBytes: number;
      blobCount: number;
      repositories: {
        name: string;
        tags: number;
        manifests: number;
        exclusiveBytes: number;
        sharedBytes: number;
        lastPush: string | null;
      }[];
    };
    const one = usage.repositories.find((r) => r.name === 'u/one');
    const two = usage.repositories.find((r) => r.name === 'u/two');
    expect(one).toMatchObject({ tags: 1, manifests: 1, sharedBytes: shared.length });
    expect(two).toMatchObject({ tags: 1, manifests: 1, sharedBytes: shared.length });
    expect(one!.exclusiveBytes).toBeGreaterThan('only in one'.length);
    expect(typeof one!.lastPush).toBe('string');
    const files = await readdir(join(reg.data, 'docker/registry/v2/blobs/sha256'), { recursive: true });
    expect(usage.blobCount).toBe(files.filter((f) => String(f).endsWith('/data')).length);
  });
});

describe('gc', () => {
  it('sweeps unreferenced blobs past the grace window, keeps referenced and young ones, removes empty repositories', async () => {
    const kept = await pushImage(reg, 'g/app', 'v1', { layers: ['kept layer'] });
    const gone = await pushImage(reg, 'g/old', 'old', { layers: ['orphan layer'] });
    await reg.fetch(`/v2/g/old/manifests/${gone.digest}`, { method: 'DELETE' });
    await ageAll(reg.data, 7200);
    const young = await pushBlob(reg, 'g/app', 'young unreferenced blob');

    const dry = (await (await reg.fetch('/admin/v1/gc', json({ dryRun: true, graceSeconds: 1 }))).json()) as {
      deleted: { digest: string }[];
      dryRun: boolean;
    };
    expect(dry.dryRun).toBe(true);
    // Checked on disk: a GET would count as a use and protect the blob for the grace window.
    const layerFile = join(reg.data, pathFor({ kind: 'blobData', digest: parseDigest(gone.layers[0] as string) }));
    expect((await readdir(join(layerFile, '..'))).includes('data')).toBe(true);

    const res = await reg.fetch('/admin/v1/gc', json({ graceSeconds: 1 }));
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      deleted: { digest: string; reason: string }[];
      kept: { digest: string; reason: string }[];
      freedBytes: number;
      repositoriesRemoved: string[];
    };
    const deleted = report.deleted.map((d) => d.digest).sort();
    expect(deleted).toEqual([gone.digest, gone.config, ...gone.layers].sort());
    expect(dry.deleted.map((d) => d.digest).sort()).toEqual(deleted);
    expect(report.kept.find((k) => k.digest === young)?.reason).toBe('within grace window');
    for (const d of [kept.digest, kept.config, ...kept.layers])
      expect(report.kept.find((k) => k.digest === d)?.reason).toBe('referenced');
    expect(report.freedBytes).toBeGreaterThan(0);
    await expect(readdir(join(layerFile, '..'))).rejects.toThrow();
    expect(report.repositoriesRemoved).toEqual(['g/old']);
    await expect(readdir(join(reg.data, 'docker/registry/v2/repositories/g/old'))).rejects.toThrow();
    const pull = await reg.fetch(`/v2/g/app/manifests/v1`);
    expect(pull.status).toBe(200);
    for (const d of [kept.config, ...kept.layers]) expect((await reg.fetch(`/v2/g/app/blobs/${d}`)).status).toBe(200);
  });

  it('deleteUntagged removes untagged manifests but keeps index children and referrers of kept ones', async () => {
    const child = await pushImage(reg, 'g/idx', 'child');
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.digest, size: child.manifest.length },
      ],
    });
    await reg.fetch('/v2/g/idx/manifests/list', {
      method: 'PUT',
      body: index,
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
    });
    await reg.fetch('/v2/g/idx/manifests/child', { method: 'DELETE' });
    const ref = await pushImage(reg, 'g/idx', 'sig', {
      layers: ['signature'],
      extra: {
        subject: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length },
      },
    });
    await reg.fetch('/v2/g/idx/manifests/sig', { method: 'DELETE' });
    const untagged = await pushImage(reg, 'g/idx', 'tmp', { layers: ['untagged layer'] });
    await reg.fetch('/v2/g/idx/manifests/tmp', { method: 'DELETE' });
    await ageAll(reg.data, 7200);
    const report = (await (
      await reg.fetch('/admin/v1/gc', json({ deleteUntagged: true, graceSeconds: 1 }))
    ).json()) as { manifestsRemoved: { repository: string; digest: string }[] };
    expect(report.manifestsRemoved).toEqual([{ repository: 'g/idx', digest: untagged.digest }]);
    expect((await reg.fetch(`/v2/g/idx/manifests/${child.digest}`)).status).toBe(200);
    expect((await reg.fetch(`/v2/g/idx/manifests/${ref.digest}`)).status).toBe(200);
    expect((await reg.fetch(`/v2/g/idx/manifests/${untagged.digest}`)).status).toBe(404);
  });

  it('runs as a job with wait: false: 202 at once, progress and then the report through GET, one job at a time', async () => {
    expect(await (await reg.fetch('/admin/v1/gc')).json()).toEqual({ state: 'idle' });
    const images: { repo: string; tag: string; img: Awaited<ReturnType<typeof pushImage>> }[] = [];
    for (let i = 0; i < 12; i++)
      images.push({
        repo: `job/r${i % 3}`,
        tag: `t${i}`,
        img: await pushImage(reg, `job/r${i % 3}`, `t${i}`, { layers: [`layer ${i}`] }),
      });
    for (const { repo, img } of images.slice(0, 6))
      await reg.fetch(`/v2/${repo}/manifests/${img.digest}`, { method: 'DELETE' });
    await ageAll(reg.data, 7200);

    // Two at once: one job starts, the other is refused with 409 naming it, and Retry-After, while it runs.
    const answers = await Promise.all([
      reg.fetch('/admin/v1/gc', json({ graceSeconds: 1, wait: false })),
      reg.fetch('/admin/v1/gc', json({ graceSeconds: 1, wait: false })),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const start = answers.find((a) => a.status === 202)!;
    const refused = answers.find((a) => a.status === 409)!;
    expect(refused.headers.get('retry-after')).toBe('30');
    const refusal = (await refused.json()) as { errors: { code: string; detail: { runningGc?: string } }[] };
    expect(refusal.errors[0]?.code).toBe('GC_RUNNING');
    expect(refusal.errors[0]?.detail.runningGc).toMatch(
      new RegExp(`^job \\d+ on .+ \\(pid ${process.pid}\\), started `),
    );
    expect(start.headers.get('location')).toBe('/admin/v1/gc');
    const started = (await start.json()) as { id: number; state: string; dryRun: boolean; progress: { phase: string } };
    expect(started).toMatchObject({ state: 'running', dryRun: false, progress: { phase: 'mark' } });
    expect((await reg.fetch('/admin/v1/gc', { auth: ['viewer', USERS.viewer as string] })).status).toBe(403);

    const phases = new Set<string>();
    let job: {
      id: number;
      state: string;
      progress: { phase: string; done: number; total: number };
      report?: { deleted: { digest: string }[]; freedBytes: number };
      finishedAt?: string;
    };
    for (;;) {
      job = (await (await reg.fetch('/admin/v1/gc')).json()) as typeof job;
      phases.add(job.progress.phase);
      if (job.state !== 'running') break;
      await sleep(5);
    }
    expect(job).toMatchObject({ id: started.id, state: 'done', progress: { phase: 'done' } });
    expect(typeof job.finishedAt).toBe('string');
    const expected = images
      .slice(0, 6)
      .flatMap(({ img }) => [img.digest, img.config, ...img.layers])
      .sort();
    expect(job.report?.deleted.map((d) => d.digest).sort()).toEqual(expected);
    expect(job.report?.freedBytes).toBeGreaterThan(0);
    expect(phases.has('done')).toBe(true);
    for (const { repo, tag } of images.slice(6))
      expect((await reg.fetch(`/v2/${repo}/manifests/${tag}`)).status).toBe(200);
  });

  it('refuses bad parameters and non-admins', async () => {
    expect((await reg.fetch('/admin/v1/gc', json({ wait: 'no' }))).status).toBe(400);
    expect((await reg.fetch('/admin/v1/gc', json({ graceSeconds: -1 }))).status).toBe(400);
    expect((await reg.fetch('/admin/v1/gc', { method: 'POST', body: '{nope' })).status).toBe(400);
    expect((await reg.fetch('/admin/v1/gc', { ...json({}), auth: ['viewer', USERS.viewer as string] })).status).toBe(
      403,
    );
    expect((await reg.fetch('/admin/v1/gc', { ...json({}), auth: null })).status).toBe(401);
  });
});

describe('fsck', () => {
  it('finds corrupt blobs, dangling links and tags, temp leftovers; repair removes them', async () => {
    const img = await pushImage(reg, 'k/app', 'v1', { layers: ['will be corrupted'] });
    const healthy = await pushImage(reg, 'k/ok', 'v1', { layers: ['healthy'] });
    const root = reg.data;
    const layer = parseDigest(img.layers[0] as string);
    await writeFile(join(root, pathFor({ kind: 'blobData', digest: layer })), 'tampered');
    await rm(join(root, pathFor({ kind: 'blobDir', digest: parseDigest(img.digest) })), { recursive: true });
    await writeFile(join(root, 'docker/registry/v2/.leftover.tmp-abcdef'), 'x');
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(join(root, 'docker/registry/v2/.leftover.tmp-abcdef'), hourAgo, hourAgo);
    await writeFile(join(root, 'docker/registry/v2/.in-flight.tmp-123456'), 'x');
    const clean = (await (await reg.fetch('/admin/v1/fsck')).json()) as { problems: { kind: string; path: string }[] };
    const kinds = clean.problems.map((p) => p.kind).sort();
    expect(kinds).toEqual(['blob-corrupt', 'link-dangling', 'link-dangling', 'tag-dangling', 'temp-file']);
    expect(clean.problems.every((p) => !p.path.includes('k/ok'))).toBe(true);
    const repaired = (await (await reg.fetch('/admin/v1/fsck?repair=1')).json()) as { repaired: unknown[] };
    expect(repaired.repaired).toHaveLength(5);
    const after = (await (await reg.fetch('/admin/v1/fsck')).json()) as { problems: unknown[] };
    expect(after.problems).toEqual([]);
    expect((await reg.fetch('/v2/k/app/manifests/v1')).status).toBe(404);
    expect((await reg.fetch(`/v2/k/ok/manifests/${healthy.digest}`)).status).toBe(200);
  });
});

describe('fsck and the referrers index', () => {
  it('reports a manifest with subject missing from the referrers index and repair adds it back', async () => {
    const subject = await pushImage(reg, 'k/ref', 'v1');
    const sig = await pushImage(reg, 'k/ref', 'sig', {
      layers: ['sig'],
      extra: {
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.manifest.length,
        },
      },
    });
    // As a data dir written by another registry would be: the manifest is there, our referrer links are not.
    const links = join(reg.data, 'docker/registry/v2/repositories/k/ref/_manifests/referrers');
    await rm(links, { recursive: true });
    const list = async () =>
      (
        (await (await reg.fetch(`/v2/k/ref/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] }
      ).manifests.map((m) => m.digest);
    // The metadata store knows the referrer from the manifest's own subject, so the API answers without the link.
    expect(await list()).toEqual([sig.digest]);
    const report = (await (await reg.fetch('/admin/v1/fsck?repair=1')).json()) as {
      problems: { kind: string }[];
      repaired: unknown[];
    };
    expect(report.problems.map((p) => p.kind)).toEqual(['referrer-missing']);
    expect(report.repaired).toHaveLength(1);
    // The link is back in storage, for registries that read the layout (and for a rebuild).
    const [alg, hex] = sig.digest.split(':') as [string, string];
    const [salg, shex] = subject.digest.split(':') as [string, string];
    expect((await readFile(join(links, salg, shex, alg, hex, 'link'), 'utf8')).trim()).toBe(sig.digest);
    expect(await list()).toEqual([sig.digest]);
  });
});

describe('reload', () => {
  it('re-reads htpasswd and access files on demand', async () => {
    const bcrypt = (await import('bcryptjs')).default;
    await writeFile(
      join(reg.dir, 'htpasswd'),
      `admin:${bcrypt.hashSync(USERS.admin as string, 4)}\nnewbie:${bcrypt.hashSync('fresh', 4)}\n`,
    );
    await writeFile(
      join(reg.dir, 'access.yaml'),
      'users:\n  admin: { admin: true }\n  newbie: { rules: [ { repos: "n/*", actions: [pull] } ] }\n',
    );
    const res = await reg.fetch('/admin/v1/reload', { method: 'POST' });
    expect(res.status).toBe(200);
    const who = await reg.fetch('/admin/v1/whoami', { auth: ['newbie', 'fresh'] });
    expect(await who.json()).toEqual({ user: 'newbie', admin: false, rules: [{ repos: 'n/*', actions: ['pull'] }] });
    expect((await reg.fetch('/v2/', { auth: ['ci', USERS.ci as string] })).status).toBe(401);
  });
});
