/** Uploads across replicas on S3 (versitygw): every test also checks that no multipart upload is left open. */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pMap from 'p-map';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import type { StorageDriver } from '../../../src/registry/storage/driver.js';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
import { RegistryStore } from '../../../src/registry/storage/store.js';
import { describeUploadReplicas } from '../../helpers/upload-replicas.js';
import { startVersitygw, versitygwAvailable, type S3Server } from '../../helpers/versitygw.js';

const MiB = 1024 * 1024;
const available = versitygwAvailable();
let server: S3Server | undefined;

beforeAll(async () => {
  if (available) server = await startVersitygw();
}, 60_000);
afterAll(async () => server?.stop());

describe.skipIf(!available)('S3 uploads on versitygw', () => {
  describeUploadReplicas(
    's3',
    () => {
      let bucket = '';
      const s = () => server as S3Server;
      return {
        make: async () => {
          bucket = await s().createBucket();
          const driver = () => new S3Driver({ client: s().client(), bucket, prefix: 'reg', partSize: 5 * MiB });
          return [driver(), driver()];
        },
        assertNoOrphans: async () => {
          const out = await s()
            .client()
            .send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          expect((out.Uploads ?? []).map((u) => u.Key)).toEqual([]);
        },
        cleanup: async () => undefined,
      };
    },
    120_000,
  );

  it('the upload purge reads a bucket of many repositories in one paged listing, not a walk', async () => {
    const s3 = server as S3Server;
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
    const s3 = server as S3Server;
    const bucket = await s3.createBucket();
    const client = s3.client();
    let inFlight = 0;
    let started = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        started++;
        inFlight++;
        try {
          await new Promise((r) => setTimeout(r, 300));
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: 'initialize', name: 'slowParts' },
    );
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
    expect(inFlight).toBe(0);
    const startedBeforeAnswer = started;
    await new Promise((r) => setTimeout(r, 600));
    expect(started).toBe(startedBeforeAnswer);
    expect(await store.uploads.offset('team/app', id)).toBe(0);
    await store.uploads.append('team/app', id, Readable.from([data]));
    const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    expect((await store.uploads.complete('team/app', id, digest)).size).toBe(data.length);
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(open.Uploads ?? []).toEqual([]);
  }, 60_000);
});
