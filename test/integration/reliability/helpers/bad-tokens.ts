/**
 * Bearer tokens for the bad-request corpus (`{token:<kind>}`), made with jose from the registry's own key file so
 * each one is wrong in exactly one way; `valid-access` is the control made the same way, which must pass.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';

interface Made {
  alg?: string;
  key?: KeyObject | Uint8Array;
  kid?: string;
  iss?: string;
  aud?: string;
  /** Seconds from now. */
  nbf?: number;
  exp?: number;
  claims?: JWTPayload;
}

/** `fingerprint`: the corpus admin's password fingerprint, which a good refresh token carries. */
export async function badTokens(
  keyPath: string,
  issuer: string,
  service: string,
  fingerprint: string,
): Promise<Record<string, string>> {
  const privateKey = createPrivateKey(await readFile(keyPath, 'utf8'));
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  const adminAll = {
    sub: 'corpus-admin',
    access: [{ type: 'repository', name: 'corpus/app', actions: ['pull', 'push', 'delete'] }],
  };
  const now = Math.floor(Date.now() / 1000);
  const make = (m: Made = {}) =>
    new SignJWT(m.claims ?? adminAll)
      .setProtectedHeader({ alg: m.alg ?? 'ES256', typ: 'JWT', kid: m.kid ?? kid })
      .setIssuer(m.iss ?? issuer)
      .setAudience(m.aud ?? service)
      .setIssuedAt(now - 10)
      .setNotBefore(now + (m.nbf ?? -10))
      .setExpirationTime(now + (m.exp ?? 300))
      .sign(m.key ?? privateKey);
  const valid = await make();
  // A token signed for corpus/other with its payload swapped for one granting corpus/app: the signature no longer
  // matches, and only a signature check stops it.
  const otherRepo = await make({
    claims: { sub: 'corpus-admin', access: [{ type: 'repository', name: 'corpus/other', actions: ['pull', 'push'] }] },
  });
  const [head, , sig] = otherRepo.split('.') as [string, string, string];
  const swapped = { ...adminAll, iss: issuer, aud: service, iat: now - 10, nbf: now - 10, exp: now + 300 };
  const tamperedBody = Buffer.from(JSON.stringify(swapped)).toString('base64url');
  const refresh = (m: Made) =>
    make({ aud: `${service}#refresh`, claims: { sub: 'corpus-admin', pwh: fingerprint }, ...m });
  return {
    'valid-access': valid,
    expired: await make({ nbf: -7200, exp: -3600 }),
    'not-yet-valid': await make({ nbf: 3600, exp: 7200 }),
    'wrong-aud': await make({ aud: 'another-registry' }),
    'wrong-iss': await make({ iss: 'someone-else' }),
    'alg-none': new UnsecuredJWT(adminAll)
      .setIssuer(issuer)
      .setAudience(service)
      .setIssuedAt(now - 10)
      .setNotBefore(now - 10)
      .setExpirationTime(now + 300)
      .encode(),
    'hs256-public': await make({
      alg: 'HS256',
      key: new Uint8Array(Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }).toString())),
    }),
    'other-key': await make({ key: other }),
    'unknown-kid': await make({ key: other, kid: 'not-a-key-of-the-registry' }),
    'refresh-as-access': await refresh({}),
    anonymous: await make({ claims: { sub: '', access: adminAll.access } }),
    tampered: `${head}.${tamperedBody}.${sig}`,
    garbage: 'not-a-jwt',
    es384: await make({ alg: 'ES384', key: p384 }),
    'scope-other-repo': otherRepo,
    'pull-only': await make({
      claims: { sub: 'corpus-admin', access: [{ type: 'repository', name: 'corpus/app', actions: ['pull'] }] },
    }),
    'denied-user': await make({ claims: { ...adminAll, sub: 'corpus-nobody' } }),
    'refresh-expired': await refresh({ nbf: -7200, exp: -3600 }),
    'refresh-other-key': await refresh({ key: other }),
    'refresh-revoked': await refresh({ claims: { sub: 'corpus-admin', pwh: 'a-password-since-changed' } }),
    'valid-refresh': await refresh({}),
  };
}
