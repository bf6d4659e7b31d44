/**
 * versitygw for the tests: the launcher lives in bench/lib/versitygw.ts (the bench's S3 phase starts the same
 * gateway); this finds the provisioned binary, and under CI=true a missing one fails instead of skipping.
 */
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { launchVersitygw, type S3Server } from '../../bench/lib/versitygw.js';
import { peerAvailable, requirePeer } from './peers.js';

export type { S3Server };

/** For `describe.skipIf(!versitygwAvailable())`: prints why it skips; under CI=true a missing binary throws. */
export function versitygwAvailable(): boolean {
  return peerAvailable('versitygw');
}

export function startVersitygw(): Promise<S3Server> {
  return launchVersitygw(requirePeer('versitygw'));
}

/**
 * One gateway for the test file that calls this at its top level: started before its tests when `available`,
 * stopped after them. The function returned gives it inside a test.
 */
export function fileVersitygw(available: boolean): () => S3Server {
  let server: S3Server | undefined;
  beforeAll(async () => {
    if (available) server = await startVersitygw();
  }, 60_000);
  afterAll(async () => server?.stop());
  return () => {
    if (!server) throw new Error('versitygw is not running');
    return server;
  };
}

/** The multipart uploads open in `bucket`, as `key uploadId`. */
export async function openUploads(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

/** What `watchCalls` saw of one command: started, in flight now, most in flight at once, part numbers finished. */
export interface CallWatch {
  started: number;
  inFlight: number;
  most: number;
  finished: number[];
}

/**
 * Counts the calls of `command` (an SDK command name, e.g. `UploadPartCommand`) sent through `client`, each held
 * `delayMs(partNumber)` before it goes when given, so that a test can make calls overlap or finish out of order.
 */
export function watchCalls(client: S3Client, command: string, delayMs?: (partNumber: number) => number): CallWatch {
  const watch: CallWatch = { started: 0, inFlight: 0, most: 0, finished: [] };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== command) return next(args);
      const n = (args.input as { PartNumber?: number }).PartNumber ?? 0;
      watch.started++;
      watch.most = Math.max(watch.most, ++watch.inFlight);
      try {
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs(n)));
        return await next(args);
      } finally {
        watch.inFlight--;
        watch.finished.push(n);
      }
    },
    { step: 'initialize', name: `watch${command}` },
  );
  return watch;
}
