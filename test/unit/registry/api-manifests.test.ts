/** The registry API for manifests: media types, indexes, tags and their deletion, listing with pagination, and referrers. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, pushBlob, pushImage, sha256, snapshot, startRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startRegistry({ corsOrigins: ['https://ui.example'], fenceWaitMs: 100 });
});
afterAll(() => reg.stop());

describe('manifests and tags', () => {
  it('PUT by tag, GET/HEAD by tag and digest with the stored media type', async () => {
    const img = await pushImage(reg, 'm/app', 'v1');
    for (const ref of ['v1', img.digest]) {
      const get = await reg.fetch(`/v2/m/app/manifests/${ref}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(get.headers.get('docker-content-digest')).toBe(img.digest);
      expect(Buffer.from(await get.arrayBuffer()).equals(img.manifest)).toBe(true);
      const head = await reg.fetch(`/v2/m/app/manifests/${ref}`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(img.manifest.length));
    }
    const missing = await reg.fetch('/v2/m/app/manifests/nope');
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('MANIFEST_UNKNOWN');
    const unknownRepo = await reg.fetch('/v2/m/none/manifests/v1');
    expect(await errorCode(unknownRepo)).toBe('NAME_UNKNOWN');
  });

  it('docker schema2 manifest and manifest list; a client accepting neither index type gets the amd64 image', async () => {
    const amd = await pushImage(reg, 'm/multi', 'amd64', {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      layers: ['amd'],
    });
    const arm = await pushImage(reg, 'm/multi', 'arm64', {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      layers: ['arm'],
    });
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: arm.digest,
            size: arm.manifest.length,
            platform: { os: 'linux', architecture: 'arm64' },
          },
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: amd.digest,
            size: amd.manifest.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    const put = await reg.fetch('/v2/m/multi/manifests/latest', {
      method: 'PUT',
      body: list,
      headers: { 'content-type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
    });
    expect(put.status).toBe(201);
    const both = await reg.fetch('/v2/m/multi/manifests/latest', {
      headers: {
        accept:
          'application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    expect(both.headers.get('docker-content-digest')).toBe(sha256(list));
    const old = await reg.fetch('/v2/m/multi/manifests/latest', {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(old.headers.get('docker-content-digest')).toBe(amd.digest);
  });

  it('an index whose child is missing is MANIFEST_BLOB_UNKNOWN', async () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('not pushed'), size: 10 }],
    });
    const res = await reg.fetch('/v2/m/idx/manifests/v1', {
      method: 'PUT',
      body: index,
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('DELETE of a tag removes only that tag', async () => {
    const img = await pushImage(reg, 'm/tagdel', 'a');
    await reg.fetch('/v2/m/tagdel/manifests/b', {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    const del = await reg.fetch('/v2/m/tagdel/manifests/a', { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect((await reg.fetch('/v2/m/tagdel/manifests/a')).status).toBe(404);
    expect((await reg.fetch('/v2/m/tagdel/manifests/b')).status).toBe(200);
    expect((await reg.fetch(`/v2/m/tagdel/manifests/${img.digest}`)).status).toBe(200);
    expect(await (await reg.fetch('/v2/m/tagdel/tags/list')).json()).toEqual({ name: 'm/tagdel', tags: ['b'] });
  });

  it('DELETE by digest removes the manifest and reports the removed tags; the empty repository leaves the catalog', async () => {
    const img = await pushImage(reg, 'm/digdel', 'one');
    await reg.fetch('/v2/m/digdel/manifests/two', {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(
      ((await (await reg.fetch('/v2/_catalog?n=10000')).json()) as { repositories: string[] }).repositories,
    ).toContain('m/digdel');
    const del = await reg.fetch(`/v2/m/digdel/manifests/${img.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(del.headers.get('oci-deleted-tags')).toBe('one,two');
    expect(await del.json()).toEqual({ deletedTags: ['one', 'two'] });
    expect((await reg.fetch(`/v2/m/digdel/manifests/${img.digest}`)).status).toBe(404);
    expect(
      ((await (await reg.fetch('/v2/_catalog?n=10000')).json()) as { repositories: string[] }).repositories,
    ).not.toContain('m/digdel');
  });

  it('PUT by digest with ?tag= tags it and lists the tags in OCI-Tag', async () => {
    const img = await pushImage(reg, 'm/tagparam', 'base');
    const res = await reg.fetch(`/v2/m/tagparam/manifests/${img.digest}?tag=x&tag=y`, {
      method: 'PUT',
      body: img.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('oci-tag')).toBe('x, y');
    expect(await (await reg.fetch('/v2/m/tagparam/tags/list')).json()).toEqual({
      name: 'm/tagparam',
      tags: ['base', 'x', 'y'],
    });
  });

  it('concurrent pushes of different manifests to one tag leave the tag on one of them, whole', async () => {
    const images = await Promise.all(
      Array.from({ length: 6 }, (_, i) => pushImage(reg, 'm/race', `base${i}`, { layers: [`race layer ${i}`] })),
    );
    const results = await Promise.all(
      images.map((img) =>
        reg.fetch('/v2/m/race/manifests/shared', {
          method: 'PUT',
          body: img.manifest,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(images.map(() => 201));
    const got = await reg.fetch('/v2/m/race/manifests/shared');
    const digest = got.headers.get('docker-content-digest');
    expect(images.map((i) => i.digest)).toContain(digest);
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(digest);
    expect(Object.keys(await snapshot(reg.data)).filter((p) => p.includes('.tmp-'))).toEqual([]);
  });

  it('concurrent PUTs naming the same tags in opposite orders all complete, each tag on one of them', async () => {
    const images = await Promise.all(
      Array.from({ length: 6 }, (_, i) => pushImage(reg, 'm/cross', `base${i}`, { layers: [`cross layer ${i}`] })),
    );
    const results = await Promise.all(
      images.map((img, i) =>
        reg.fetch(`/v2/m/cross/manifests/${img.digest}?${i % 2 ? 'tag=a&tag=b' : 'tag=b&tag=a'}`, {
          method: 'PUT',
          body: img.manifest,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
          signal: AbortSignal.timeout(5000),
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(images.map(() => 201));
    for (const tag of ['a', 'b']) {
      const got = await reg.fetch(`/v2/m/cross/manifests/${tag}`, { method: 'HEAD' });
      expect(images.map((i) => i.digest)).toContain(got.headers.get('docker-content-digest'));
    }
  });

  it('tags list and catalog paginate with n, last and Link; a huge n is clamped', async () => {
    const img = await pushImage(reg, 'p/page', 't0');
    for (const t of ['t1', 't2', 't3', 't4']) {
      await reg.fetch(`/v2/p/page/manifests/${t}`, {
        method: 'PUT',
        body: img.manifest,
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
    }
    const first = await reg.fetch('/v2/p/page/tags/list?n=2');
    expect(await first.json()).toEqual({ name: 'p/page', tags: ['t0', 't1'] });
    expect(first.headers.get('link')).toBe('</v2/p/page/tags/list?n=2&last=t1>; rel="next"');
    const second = await reg.fetch('/v2/p/page/tags/list?n=2&last=t1');
    expect(await second.json()).toEqual({ name: 'p/page', tags: ['t2', 't3'] });
    const last = await reg.fetch('/v2/p/page/tags/list?n=2&last=t3');
    expect(await last.json()).toEqual({ name: 'p/page', tags: ['t4'] });
    expect(last.headers.get('link')).toBeNull();
    const huge = await reg.fetch('/v2/p/page/tags/list?n=999999999');
    expect(huge.status).toBe(200);
    expect(((await huge.json()) as { tags: string[] }).tags).toHaveLength(5);
    const cat = await reg.fetch('/v2/_catalog?n=1');
    expect(cat.status).toBe(200);
    const link = cat.headers.get('link') as string;
    const firstRepo = ((await cat.json()) as { repositories: string[] }).repositories[0] as string;
    expect(link).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(firstRepo)}>; rel="next"`);
    const next = await reg.fetch(link.slice(1, link.indexOf('>')));
    const nextRepo = ((await next.json()) as { repositories: string[] }).repositories[0] as string;
    expect(nextRepo > firstRepo).toBe(true);
    expect(await errorCode(await reg.fetch('/v2/p/none/tags/list'))).toBe('NAME_UNKNOWN');
  });
});

describe('referrers', () => {
  it('a manifest with subject gets OCI-Subject; referrers lists it with artifactType and annotations; filter applies', async () => {
    const subject = await pushImage(reg, 'r/app', 'v1');
    const empty = await pushBlob(reg, 'r/app', '{}');
    const sbom = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }],
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.manifest.length,
        },
        annotations: { 'org.example.kind': 'sbom' },
      }),
    );
    const put = await reg.fetch(`/v2/r/app/manifests/${sha256(sbom)}`, {
      method: 'PUT',
      body: sbom,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
    const sig = await pushImage(reg, 'r/app', 'sig', {
      extra: {
        subject: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: subject.digest,
          size: subject.manifest.length,
        },
      },
    });
    const list = await reg.fetch(`/v2/r/app/referrers/${subject.digest}`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    const body = (await list.json()) as {
      manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
    };
    expect(body.manifests.map((m) => m.digest).sort()).toEqual([sha256(sbom), sig.digest].sort());
    const sbomDesc = body.manifests.find((m) => m.digest === sha256(sbom));
    expect(sbomDesc?.artifactType).toBe('application/spdx+json');
    expect(sbomDesc?.annotations).toEqual({ 'org.example.kind': 'sbom' });
    expect(body.manifests.find((m) => m.digest === sig.digest)?.artifactType).toBe(
      'application/vnd.oci.image.config.v1+json',
    );
    const filtered = await reg.fetch(`/v2/r/app/referrers/${subject.digest}?artifactType=application/spdx%2Bjson`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: unknown[] }).manifests).toHaveLength(1);
    const none = await reg.fetch(`/v2/r/app/referrers/${sha256('no such subject')}`);
    expect(none.status).toBe(200);
    expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    await reg.fetch(`/v2/r/app/manifests/${sha256(sbom)}`, { method: 'DELETE' });
    const after = (await (await reg.fetch(`/v2/r/app/referrers/${subject.digest}`)).json()) as {
      manifests: { digest: string }[];
    };
    expect(after.manifests.map((m) => m.digest)).toEqual([sig.digest]);
  });
});
