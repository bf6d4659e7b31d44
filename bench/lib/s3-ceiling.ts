/**
 * The S3 chunked-push ceiling: how fast the gateway itself does the S3 work that a chunked push needs from any
 * registry that keeps distribution's key layout and lets the upload go on from another replica, done by a bare
 * client with no registry in between. Such a registry must stage each chunk in S3 as it arrives (another replica
 * may receive the next one), and only at the closing PUT learns the blob's key (its digest); S3 has no rename, so
 * the staged bytes are then written again under that key. The two ways known to do it with the least writing:
 *
 * - `staged`, what both registries in the bench do: the chunks are the parts of one multipart upload, completed
 *   at the end (the gateway writes the bytes again as one object), then copied in 32 MiB ranges, four at a time,
 *   into a multipart upload at the blob's key, and that upload completed;
 * - `objects`: each chunk is an object of its own; at the end each is copied whole as one part of a multipart
 *   upload at the blob's key (four at a time), and that upload completed.
 *
 * The client does nothing a registry must also do besides the S3 calls: it does not hash the blob, it reads the
 * body from memory, and it does not wait for the staged data to be deleted (done after the clock stops). So the
 * ceiling is an upper bound for any registry on this gateway, ours and the reference alike.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';

import pMap from 'p-map';

import type { LargeBlob } from './data.js';
import { timed } from './load.js';
import type { Figures } from './phase.js';
import { mbPerSecond } from './stats.js';

const MiB = 1024 * 1024;
/** The chunks staged at once: a writer of ours keeps two part uploads in flight. */
const STAGE_CONCURRENCY = 2;
/** Copies at once, and the range each copies in `staged`: as ours does (and distribution's S3 driver by default). */
const COPY_CONCURRENCY = 4;
const COPY_RANGE = 32 * MiB;

export type CeilingLayout = 'staged' | 'objects';
export const CEILING_LAYOUTS: CeilingLayout[] = ['staged', 'objects'];

/** One chunked push's S3 work in `layout`, timed from the first staged chunk to the completed blob: MB/s. */
export async function s3ChunkedCeiling(
  client: S3Client,
  bucket: string,
  blob: LargeBlob,
  layout: CeilingLayout,
  id: string,
  opts: { verify?: boolean } = {},
): Promise<number> {
  const blobKey = `ceiling/${id}/data`;
  const staged: string[] = [];
  try {
    const { seconds } = await timed(async () => {
      const copies =
        layout === 'staged'
          ? await stageAsUpload(client, bucket, blob, `ceiling/${id}/upload`, staged)
          : await stageAsObjects(client, bucket, blob, `ceiling/${id}/chunk`, staged);
      await multipart(client, bucket, blobKey, copies, COPY_CONCURRENCY, async (c, part) => {
        const out = await client.send(
          new UploadPartCopyCommand({
            ...part,
            CopySource: `${bucket}/${c.key}`,
            ...(c.range ? { CopySourceRange: c.range } : {}),
          }),
        );
        return out.CopyPartResult?.ETag;
      });
    });
    await checkBlob(client, bucket, blobKey, blob, opts.verify ?? false);
    return mbPerSecond(blob.size, seconds);
  } finally {
    const keys = [...staged, blobKey].map((Key) => ({ Key }));
    for (let i = 0; i < keys.length; i += 1000)
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000) } }));
  }
}

/** Throws unless the blob's key holds `blob.size` bytes and, with `hash`, exactly the blob's content. */
async function checkBlob(client: S3Client, bucket: string, key: string, blob: LargeBlob, hash: boolean): Promise<void> {
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== blob.size)
    throw new Error(`S3 ceiling: ${key} holds ${head.ContentLength} bytes, not the blob's ${blob.size}`);
  if (!hash) return;
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const digest = createHash('sha256');
  for await (const chunk of got.Body as AsyncIterable<Uint8Array>) digest.update(chunk);
  const actual = `sha256:${digest.digest('hex')}`;
  if (actual !== blob.digest) throw new Error(`S3 ceiling: ${key} hashes to ${actual}, not ${blob.digest}`);
}

/** The fields that name one part of a multipart upload. */
interface PartOf {
  Bucket: string;
  Key: string;
  UploadId: string;
  PartNumber: number;
}

/**
 * One multipart upload of `key`: a part per item of `items`, `concurrency` at a time (`send` sends one and gives
 * its ETag), then completed; aborted if any part fails, so that no upload is left open.
 */
async function multipart<T>(
  client: S3Client,
  bucket: string,
  key: string,
  items: readonly T[],
  concurrency: number,
  send: (item: T, part: PartOf) => Promise<string | undefined>,
): Promise<void> {
  const upload = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const UploadId = upload.UploadId ?? '';
  try {
    const parts = await pMap(
      items.entries(),
      async ([i, item]): Promise<CompletedPart> => {
        const PartNumber = i + 1;
        return { PartNumber, ETag: await send(item, { Bucket: bucket, Key: key, UploadId, PartNumber }) };
      },
      { concurrency },
    );
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    throw err;
  }
}

interface CopySource {
  key: string;
  range?: string;
}

/** The chunks as the parts of one multipart upload, completed: the copies are ranges of the completed object. */
async function stageAsUpload(
  client: S3Client,
  bucket: string,
  blob: LargeBlob,
  key: string,
  staged: string[],
): Promise<CopySource[]> {
  await multipart(client, bucket, key, blob.chunks, STAGE_CONCURRENCY, async (body, part) => {
    return (await client.send(new UploadPartCommand({ ...part, Body: body }))).ETag;
  });
  staged.push(key);
  const ranges: CopySource[] = [];
  for (let start = 0; start < blob.size; start += COPY_RANGE)
    ranges.push({ key, range: `bytes=${start}-${Math.min(start + COPY_RANGE, blob.size) - 1}` });
  return ranges;
}

/** Each chunk as an object of its own: each is then copied whole. */
async function stageAsObjects(
  client: S3Client,
  bucket: string,
  blob: LargeBlob,
  prefix: string,
  staged: string[],
): Promise<CopySource[]> {
  return pMap(
    blob.chunks.entries(),
    async ([i, body]): Promise<CopySource> => {
      const key = `${prefix}/${String(i).padStart(5, '0')}`;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      staged.push(key);
      return { key };
    },
    { concurrency: STAGE_CONCURRENCY },
  );
}

/**
 * The ceiling just before one push: each layout once (the first layout alternating from one call to the next),
 * the better of the two the ceiling. Figures: `s3ChunkedCeilingMBps` and each layout's own.
 */
export function chunkedCeilingProbe(client: S3Client, bucket: string): (blob: LargeBlob) => Promise<Figures> {
  let calls = 0;
  return async (blob) => {
    const order = calls % 2 === 0 ? CEILING_LAYOUTS : [...CEILING_LAYOUTS].reverse();
    const n = calls++;
    const out: Figures = {};
    for (const layout of order)
      out[`s3ChunkedCeiling.${layout}`] = await s3ChunkedCeiling(client, bucket, blob, layout, `${n}-${layout}`);
    out.s3ChunkedCeilingMBps = Math.max(...CEILING_LAYOUTS.map((l) => out[`s3ChunkedCeiling.${l}`] ?? 0));
    return out;
  };
}
