/**
 * versitygw for the tests: the launcher lives in bench/lib/versitygw.ts (the bench's S3 phase starts the same
 * gateway); this finds the provisioned binary, and under CI=true a missing one fails instead of skipping.
 */
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
