/** Uploads across replicas on S3 (versitygw): every test also checks that no multipart upload is left open. */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { S3Driver } from '../../../src/registry/storage/s3/s3-driver.js';
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
});
