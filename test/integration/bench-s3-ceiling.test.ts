import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import { LargeBlob, randomBuffer } from '../../bench/lib/data.js';
import { CEILING_LAYOUTS, chunkedCeilingProbe, s3ChunkedCeiling } from '../../bench/lib/s3-ceiling.js';
import { fileVersitygw, openUploads, versitygwAvailable } from '../helpers/versitygw.js';

const MiB = 1024 * 1024;

/**
 * The S3 chunked-push ceiling of the bench (a bare client doing a chunked push's S3 work on versitygw): each
 * layout leaves the whole blob at its key (read back and hashed here), then cleans up after itself, and the probe
 * the S3 phase calls reports both layouts and the better one.
 */
const available = versitygwAvailable();
const gateway = fileVersitygw(available);

describe.skipIf(!available)('bench S3 chunked-push ceiling', () => {
  // three 6 MiB chunks (parts must be 5 MiB or more but the last) and a 40 MiB blob (two copy ranges of 32 MiB)
  const blobs = [new LargeBlob(randomBuffer(6 * MiB), 3, 'small'), new LargeBlob(randomBuffer(8 * MiB), 5, 'two')];

  for (const layout of CEILING_LAYOUTS)
    it(`does the work in the ${layout} layout: the blob whole at its key, nothing left after`, async () => {
      const s3 = gateway();
      const client = s3.client();
      const bucket = await s3.createBucket();
      for (const [i, blob] of blobs.entries()) {
        const mbps = await s3ChunkedCeiling(client, bucket, blob, layout, `t${i}`, { verify: true });
        expect(mbps).toBeGreaterThan(0);
      }
      const left = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect(left.KeyCount ?? 0).toBe(0);
      expect(await openUploads(client, bucket)).toEqual([]);
    });

  it('reports each layout and the better of the two as the ceiling', async () => {
    const s3 = gateway();
    const probe = chunkedCeilingProbe(s3.client(), await s3.createBucket());
    const figures = await probe(blobs[0] as LargeBlob);
    const staged = figures['s3ChunkedCeiling.staged'] ?? 0;
    const objects = figures['s3ChunkedCeiling.objects'] ?? 0;
    expect(staged).toBeGreaterThan(0);
    expect(objects).toBeGreaterThan(0);
    expect(figures.s3ChunkedCeilingMBps).toBe(Math.max(staged, objects));
  });
});
