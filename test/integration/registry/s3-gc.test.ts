/**
 * Garbage collection over the S3 driver (versitygw): the mark walks listings, the sweep deletes blob directories by
 * prefix, so S3's implicit directories and prefix deletes are exercised on real registry data.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GcReport } from '../../../src/common/admin-api.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';
import { writeOciLayout } from './oci-layout.js';

const ready = versitygwAvailable() && peerAvailable('crane');

/** The config digest named by an OCI layout's manifest. */
async function configOf(dir: string, manifestDigest: string): Promise<string> {
  const manifest = JSON.parse(
    await readFile(join(dir, 'blobs/sha256', manifestDigest.slice('sha256:'.length)), 'utf8'),
  ) as { config: { digest: string } };
  return manifest.config.digest;
}

describe.skipIf(!ready)('garbage collection on S3', () => {
  let s3: S3Server;
  let server: RegistryServer;
  let host: string;
  let bucket: string;
  let work: string;
  beforeAll(async () => {
    s3 = await startVersitygw();
    bucket = await s3.createBucket();
    work = await mkdtemp(join(tmpdir(), 'regctl-s3-gc-'));
    const driver = new S3Driver({ client: s3.client(), bucket, prefix: 'gc' });
    server = createRegistryServer({ driver, noAuth: true, port: 0, log: () => undefined });
    host = new URL((await server.listen()).url).host;
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const crane = (args: string[]) =>
    run(peerPath('crane'), [...args, '--insecure'], { env: { DOCKER_CONFIG: join(work, 'crane') }, stdoutOnly: true });
  const blobKey = (digest: string) => {
    const hex = digest.slice('sha256:'.length);
    return `gc/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  };
  const keys = async () => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push(o.Key as string);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  };

  it('removes the blobs of a deleted image and keeps those of a tagged one', async () => {
    const keep = await writeOciLayout(join(work, 'keep'), { tag: 'v1', layers: 2 });
    const drop = await writeOciLayout(join(work, 'drop'), { tag: 'v1', layers: 2 });
    await crane(['push', keep.dir, `${host}/gc/keep:v1`]);
    await crane(['push', drop.dir, `${host}/gc/drop:v1`]);
    for (const d of [...keep.layerDigests, ...drop.layerDigests]) expect(await keys()).toContain(blobKey(d));
    await crane(['delete', `${host}/gc/drop@${drop.manifestDigest}`]);

    const res = await fetch(`http://${host}/admin/v1/gc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graceSeconds: 0 }),
    });
    const report = (await res.json()) as GcReport;
    expect(res.status, JSON.stringify(report)).toBe(200);
    // two layers, the config and the manifest of the dropped image
    expect(report.deleted.map((e) => e.digest).sort()).toEqual(
      [...drop.layerDigests, drop.manifestDigest, await configOf(drop.dir, drop.manifestDigest)].sort(),
    );

    const after = await keys();
    for (const d of drop.layerDigests) expect(after).not.toContain(blobKey(d));
    expect(after).not.toContain(blobKey(drop.manifestDigest));
    for (const d of keep.layerDigests) expect(after).toContain(blobKey(d));
    expect(after).toContain(blobKey(keep.manifestDigest));
    // the kept image still pulls whole
    const pulled = join(work, 'pulled');
    await crane(['pull', '--format', 'oci', `${host}/gc/keep:v1`, pulled]);
    const index = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(keep.manifestDigest);
  });

  it('keeps a blob pushed within the grace window, whose S3 time in whole seconds says it is older', async () => {
    const gc = async (graceSeconds: number) => {
      const res = await fetch(`http://${host}/admin/v1/gc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ graceSeconds }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as GcReport).deleted.map((e) => e.digest);
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Written late in a second, so its LastModified (that second, truncated) is most of a second before the write:
    // only the use its push recorded keeps it.
    while (Date.now() % 1000 < 700) await sleep(10);
    const body = Buffer.from(`standalone ${Date.now()}`);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const put = await fetch(`http://${host}/v2/gc/lone/blobs/uploads/?digest=${digest}`, { method: 'POST', body });
    expect(put.status).toBe(201);
    const written = Date.now();
    // just past the next second: by its truncated time the blob is over a second old, by its write well under
    await sleep(1000 - (written % 1000) + 50);
    expect(Date.now() - written).toBeLessThan(1000);
    expect(await gc(1)).not.toContain(digest);
    expect(await keys()).toContain(blobKey(digest));
    // and once it is older than the window by any measure, it goes
    await sleep(2100);
    expect(await gc(1)).toContain(digest);
  });
});
