/**
 * `regctl rotate-credentials --token-key`: a new token signing key for the stack, live.
 *
 * Order of writes, each atomic: with a grace window the current key goes first to `auth/token-key.pem.previous`
 * (after its `Accepted until:` line), so tokens it signed keep working until then; without one that file is removed;
 * then `auth/token-key.pem` gets the new key. The registry reads both files again within ten seconds
 * (registry/auth/token-service.ts), and signs with the new key from then on. Refresh tokens signed by the old key
 * stop working when its grace ends: clients log in again.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RegctlError } from '../common/errors.js';
import { exists, readIfExists } from '../common/fs.js';
import { CONFIG_FILE } from '../config/load.js';
import { newTokenKeyPem, parseSigningKey, previousKeyPath, previousKeyText } from '../registry/auth/token-keys.js';
import { TOKEN_KEY_FILE } from '../stack/build-model.js';
import { atomicWrite } from '../stack/write.js';
import type { Output } from '../common/io.js';
import type { DockerEngine } from '../docker/engine.js';
import { loadStack } from './stack.js';
import { up } from './up.js';

export interface TokenKeyRotation {
  /** When the old key stops being accepted (ISO 8601); null: at once. */
  previousUntil: string | null;
  kid: string;
}

/**
 * `rollout` (the output and engine of the command) rolls a swarm stack's new key out as new secret versions
 * (start-first, as `regctl up` does); a compose stack's registry reads the files itself.
 */
export async function rotateTokenKey(
  dir: string,
  graceMs: number,
  rollout?: { out: Output; engine: DockerEngine },
  now = Date.now,
): Promise<TokenKeyRotation> {
  const path = join(dir, 'auth', TOKEN_KEY_FILE);
  const current = await readIfExists(path);
  if (current === undefined)
    throw new RegctlError('NOT_FOUND', `no token key at auth/${TOKEN_KEY_FILE}`, {
      hint: 'regctl init --force writes one (passwords are kept)',
    });
  await parseSigningKey(current, path).catch((err: Error) => {
    throw new RegctlError('CONFIG_INVALID', err.message, {
      hint: `move auth/${TOKEN_KEY_FILE} away and run regctl init --force for a new one`,
    });
  });
  let previousUntil: string | null = null;
  if (graceMs > 0) {
    const until = now() + graceMs;
    await atomicWrite(previousKeyPath(path), previousKeyText(current, until), 0o600);
    previousUntil = new Date(until).toISOString();
  } else {
    await rm(previousKeyPath(path), { force: true });
  }
  const pem = newTokenKeyPem();
  await atomicWrite(path, pem, 0o600);
  // A directory holding only the key (no regctl.yaml) is no stack to roll out to.
  const swarm = (await exists(join(dir, CONFIG_FILE))) && (await loadStack(dir)).config.deploy.mode === 'swarm';
  if (rollout && swarm) {
    rollout.out.step('Rolling out the new token key as a new secret version');
    await up({ dir, out: rollout.out, engine: rollout.engine, skipProbes: true });
  }
  return { previousUntil, kid: (await parseSigningKey(pem, path)).kid };
}
