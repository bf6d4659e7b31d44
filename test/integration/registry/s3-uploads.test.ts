/** Uploads across replicas on S3 (versitygw): every test also checks that no multipart upload is left open. */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pMap from 'p-map';
import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import type { StorageDriver } from '../../../src/registry/storage/driver.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { describeUploadReplicas } from '../../helpers/upload-replicas.js';
import { fileVersitygw, openUploads, versitygwAvailable, watchCalls } from '../../helpers/versitygw.js';

const MiB = 1024 * 1024;
const available = versitygwAvailable();
const gateway = fileVersitygw(available);

describe.skipIf(!available)('S3 uploads on versitygw', () => {
  describeUploadReplicas(
    's3',
    () => {
      let bucket = '';
      const s = gateway;
      return {
        make: async () => {
          bucket = await s().createBucket();
          const driver = () => new S3Driver({ client: s().client(), bucket, prefix: 'reg', partSize: 5 * MiB });
          return [driver(), driver()];
        },
        assertNoOrphans: async () => expect(await openUploads(s().client(), bucket)).toEqual([]),
        cleanup: async () => undefined,
      };
    },
    120_000,
  );

  it('the upload purge reads a bucket of many repositories in one paged listing, not a walk', async () => {
    const s3 = gateway();
    const bucket = await s3.createBucket();
    const driver = new S3Driver({ client: s3.client(), bucket, prefix: 'reg', partSize: 5 * MiB });
    const calls = { list: 0, pages: 0 };
    const counted: StorageDriver = Object.assign(Object.create(driver) as S3Driver, {
      list: (path: string) => {
        calls.list++;
        return driver.list(path);
      },
      listFiles: async function* (path: string) {
        for await (const page of driver.listFiles(path)) {
          calls.pages++;
          yield page;
        }
      },
    });
    const repos = Array.from({ length: 1_100 }, (_, i) => `catalog/r${String(i).padStart(4, '0')}`);
    await pMap(repos, (r) => driver.putContent(`docker/registry/v2/repositories/${r}/_layers/sha256/ab/link`, 'x'), {
      concurrency: 32,
    });
    const store = new RegistryStore(counted);
    const ids = [await store.uploads.start('deep/a/b'), await store.uploads.start('catalog/r0007')];
    // Purged as if two minutes had passed: both uploads are then older than the one-minute age.
    expect(await store.uploads.purge(60_000, Date.now() + 120_000)).toBe(2);
    expect(calls.list).toBe(0);
    expect(calls.pages).toBeGreaterThan(1);
    for (const [name, id] of [
      ['deep/a/b', ids[0]],
      ['catalog/r0007', ids[1]],
    ] as const)
      await expect(driver.stat(`docker/registry/v2/repositories/${name}/_uploads/${id}`)).rejects.toThrow();
    expect(await store.uploads.purge(60_000, Date.now() + 120_000)).toBe(0);
  }, 120_000);

  it('a PATCH whose body fails answers once the part it had started is settled, and a retry completes', async () => {
    const s3 = gateway();
    const bucket = await s3.createBucket();
    const client = s3.client();
    const parts = watchCalls(client, 'UploadPartCommand', () => 300);
    const store = new RegistryStore(new S3Driver({ client, bucket, prefix: 'reg', partSize: 5 * MiB }));
    const data = randomBytes(12 * MiB);
    const id = await store.uploads.start('team/app');
    // a full part and one more MiB, then the client goes away while that part is being uploaded
    async function* cut() {
      for (let i = 0; i < 6; i++) yield data.subarray(i * MiB, (i + 1) * MiB);
      throw new Error('client went away');
    }
    await expect(store.uploads.append('team/app', id, Readable.from(cut()))).rejects.toThrow('client went away');
    // nothing in flight when the error is answered, and nothing started after it
    expect(parts.inFlight).toBe(0);
    const startedBeforeAnswer = parts.started;
    await new Promise((r) => setTimeout(r, 600));
    expect(parts.started).toBe(startedBeforeAnswer);
    expect(await store.uploads.offset('team/app', id)).toBe(0);
    await store.uploads.append('team/app', id, Readable.from([data]));
    const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    expect((await store.uploads.complete('team/app', id, digest)).size).toBe(data.length);
    expect(await openUploads(client, bucket)).toEqual([]);
  }, 60_000);
});
