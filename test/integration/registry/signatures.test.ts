/**
 * cosign and notation against the built `regctl serve --config FILE` on loopback (plain HTTP, with credentials):
 * both sign, both verify, and the signature-required policy (policies.signatures) accepts what they signed with the
 * configured keys and refuses the rest. Keys are made here; no transparency log is used.
 *
 * Forms seen: cosign v3 signs by default as a sigstore bundle referrer (OCI 1.1 referrers API, artifactType
 * application/vnd.dev.sigstore.bundle.v0.3+json); with `--new-bundle-format=false` it pushes a simple-signing
 * manifest under the tag `sha256-<hex>.sig`, or as a referrer with `--registry-referrers-mode=oci-1-1`. notation
 * pushes a JWS envelope as a referrer (artifactType application/vnd.cncf.notary.signature).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerAvailable, peerPath } from '../../helpers/peers.js';
import { run } from '../../helpers/run.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';
import { basicAuth } from '../../helpers/auth.js';
import { writeOciLayout } from './oci-layout.js';

const enabled = builtCliPresent() && peerAvailable('crane') && peerAvailable('cosign') && peerAvailable('notation');

let reg: RegistryProcess;
let work: string;
let config: string;

const POLICY = `policies:
  signatures:
    - { repos: "sig/**", tags: "v*", keys: [ keys/cosign.pub, keys/notation.crt ], enforce: pull }
    - { repos: "rel/**", keys: [ keys/cosign.pub ], enforce: push }
`;
const PULL_RULE = 'a signature is required by policy policies.signatures[0] (repos sig/**, tags v*, enforce pull)';

/** Environment of every peer: its own docker config (crane, cosign), notation's XDG home, no proxy to loopback. */
function env(): NodeJS.ProcessEnv {
  return {
    DOCKER_CONFIG: join(work, 'docker'),
    XDG_CONFIG_HOME: join(work, 'xdg'),
    HOME: work,
    COSIGN_PASSWORD: '',
    NOTATION_USERNAME: reg.username,
    NOTATION_PASSWORD: reg.password,
  };
}
const crane = (args: string[]) => run(peerPath('crane'), [...args, '--insecure'], { env: env() });
const cosign = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  run(peerPath('cosign'), args, { env: { ...env(), ...extra }, cwd: join(work, 'keys') });
const notation = (args: string[]) => run(peerPath('notation'), args, { env: env() });
const COSIGN_SIGN = ['sign', '--use-signing-config=false', '--tlog-upload=false', '--allow-http-registry', '-y'];
const COSIGN_VERIFY = ['verify', '--insecure-ignore-tlog', '--allow-http-registry'];

/** A new image in an OCI layout, its reference by digest in `repo`, and (unless `push` is false) pushed as `tag`. */
async function pushImage(
  repo: string,
  tag: string,
  push = true,
): Promise<{ dir: string; ref: string; digest: string }> {
  const img = await writeOciLayout(join(work, 'layouts', `${repo.replace('/', '-')}-${tag}`), { tag, layers: 1 });
  if (push) await crane(['push', img.dir, `${reg.host}/${repo}:${tag}`]);
  return { dir: img.dir, ref: `${reg.host}/${repo}@${img.manifestDigest}`, digest: img.manifestDigest };
}

/** crane's answer to a pull by tag: the manifest, or the refusal's text. */
const pullByTag = (repo: string, tag: string) =>
  crane(['manifest', `${reg.host}/${repo}:${tag}`]).then(
    () => 'pulled',
    (err: Error) => err.message,
  );

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${reg.url}${path}`, {
    ...init,
    headers: { authorization: basicAuth(reg.username, reg.password), ...init.headers },
  });

async function putBlob(data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const res = await api(`/v2/sig/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(data) });
  expect(res.status).toBe(201);
  return { digest, size: data.length };
}

/** Copies the notation signature of `from` onto `to`, rewriting the signed payload's target: no longer valid. */
async function copyNotationSignature(from: string, to: string): Promise<void> {
  const index = (await (await api(`/v2/sig/app/referrers/${from}`)).json()) as {
    manifests: { digest: string; artifactType: string }[];
  };
  const ref = index.manifests.find((m) => m.artifactType === 'application/vnd.cncf.notary.signature');
  const manifest = (await (await api(`/v2/sig/app/manifests/${ref?.digest ?? 'missing'}`)).json()) as {
    layers: { digest: string }[];
    subject: { digest: string; size: number };
  };
  const layer = manifest.layers[0]?.digest ?? 'missing';
  const envelope = (await (await api(`/v2/sig/app/blobs/${layer}`)).json()) as { payload: string };
  const payload = JSON.parse(Buffer.from(envelope.payload, 'base64url').toString()) as {
    targetArtifact: { digest: string };
  };
  expect(payload.targetArtifact.digest).toBe(from);
  payload.targetArtifact.digest = to;
  envelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const blob = await putBlob(Buffer.from(JSON.stringify(envelope)));
  Object.assign(manifest.layers[0] ?? {}, blob);
  manifest.subject.digest = to;
  const res = await api(`/v2/sig/app/manifests/${to.replace(':', '-')}-forged`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: JSON.stringify(manifest),
  });
  expect(res.status).toBe(201);
}

beforeAll(async () => {
  if (!enabled) return;
  work = await mkdtemp(join(tmpdir(), 'regctl-signatures-it-'));
  await mkdir(join(work, 'keys'), { recursive: true });
  await mkdir(join(work, 'other'), { recursive: true });
  await mkdir(join(work, 'xdg'), { recursive: true });
  // The registry starts with the keys in place: make them first (cosign writes cosign.key/.pub in its cwd).
  await run(peerPath('cosign'), ['generate-key-pair'], { env: { COSIGN_PASSWORD: '' }, cwd: join(work, 'keys') });
  await run(peerPath('cosign'), ['generate-key-pair'], { env: { COSIGN_PASSWORD: '' }, cwd: join(work, 'other') });
  const xdg = { XDG_CONFIG_HOME: join(work, 'xdg'), HOME: work };
  await run(peerPath('notation'), ['cert', 'generate-test', '--default', 'regctl-test'], { env: xdg });
  await run(peerPath('notation'), ['cert', 'generate-test', 'other-test'], { env: xdg });
  const crt = await readFile(join(work, 'xdg/notation/localkeys/regctl-test.crt'));
  await writeFile(join(work, 'keys/notation.crt'), crt);
  // Trust policy: the test certificate's store for every registry, verified strictly.
  await writeFile(
    join(work, 'xdg/notation/trustpolicy.json'),
    JSON.stringify({
      version: '1.0',
      trustPolicies: [
        {
          name: 'regctl-test',
          registryScopes: ['*'],
          signatureVerification: { level: 'strict' },
          trustStores: ['ca:regctl-test', 'ca:other-test'],
          trustedIdentities: ['*'],
        },
      ],
    }),
  );
  config = join(work, 'config.yaml');
  await writeFile(config, POLICY);
  reg = await startRegistryProcess({ args: ['--config', config] });
  await crane(['auth', 'login', reg.host, '-u', reg.username, '-p', reg.password]);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!enabled)('cosign and notation against regctl serve', () => {
  it('cosign (bundle referrer, .sig tag, simple-signing referrer) signs and verifies; the pull policy follows', async () => {
    const bundle = await pushImage('sig/app', 'v1');
    expect(await pullByTag('sig/app', 'v1')).toContain(`${PULL_RULE}: the pull of tag v1 of sig/app`);
    await cosign([...COSIGN_SIGN, '--key', 'cosign.key', bundle.ref]);
    expect(await cosign([...COSIGN_VERIFY, '--key', 'cosign.pub', bundle.ref])).toContain(
      'The signatures were verified against the specified public key',
    );
    expect(await pullByTag('sig/app', 'v1')).toBe('pulled');
    const referrers = (await (
      await fetch(`${reg.url}/v2/sig/app/referrers/${bundle.digest}`, {
        headers: { authorization: basicAuth(reg.username, reg.password) },
      })
    ).json()) as { manifests: { artifactType: string }[] };
    expect(referrers.manifests.map((m) => m.artifactType)).toEqual(['application/vnd.dev.sigstore.bundle.v0.3+json']);

    const tagged = await pushImage('sig/app', 'v2');
    expect(await pullByTag('sig/app', 'v2')).toContain('DENIED');
    await cosign([...COSIGN_SIGN, '--new-bundle-format=false', '--key', 'cosign.key', tagged.ref]);
    const tags = (await crane(['ls', `${reg.host}/sig/app`])).trim().split('\n');
    expect(tags).toContain(`${tagged.digest.replace(':', '-')}.sig`);
    await cosign([...COSIGN_VERIFY, '--new-bundle-format=false', '--key', 'cosign.pub', tagged.ref]);
    expect(await pullByTag('sig/app', 'v2')).toBe('pulled');

    const referrer = await pushImage('sig/app', 'v3');
    const mode = ['--new-bundle-format=false', '--registry-referrers-mode=oci-1-1'];
    await cosign([...COSIGN_SIGN, ...mode, '--key', 'cosign.key', referrer.ref], { COSIGN_EXPERIMENTAL: '1' });
    // cosign's verify looks for referrers only when asked (a hidden flag in v3.1.3)
    const oci11 = ['--new-bundle-format=false', '--experimental-oci11'];
    await cosign([...COSIGN_VERIFY, ...oci11, '--key', 'cosign.pub', referrer.ref], { COSIGN_EXPERIMENTAL: '1' });
    expect((await crane(['ls', `${reg.host}/sig/app`])).trim().split('\n')).not.toContain(
      `${referrer.digest.replace(':', '-')}.sig`,
    );
    expect(await pullByTag('sig/app', 'v3')).toBe('pulled');
  });

  it('a cosign signature by another key verifies with that key, and the policy refuses it', async () => {
    const img = await pushImage('sig/app', 'v4');
    await cosign([...COSIGN_SIGN, '--key', '../other/cosign.key', img.ref]);
    await cosign([...COSIGN_VERIFY, '--key', '../other/cosign.pub', img.ref]);
    await expect(cosign([...COSIGN_VERIFY, '--key', 'cosign.pub', img.ref])).rejects.toThrow(/no matching|failed/i);
    expect(await pullByTag('sig/app', 'v4')).toContain(`${PULL_RULE}: the pull of tag v4 of sig/app, ${img.digest}`);
  });

  it('notation signs and verifies (referrers API); the policy trusts its test certificate and no other', async () => {
    const img = await pushImage('sig/app', 'v5');
    expect(await pullByTag('sig/app', 'v5')).toContain('DENIED');
    await notation(['sign', '--insecure-registry', img.ref]);
    expect(await notation(['verify', '--insecure-registry', img.ref])).toContain('Successfully verified');
    expect(await pullByTag('sig/app', 'v5')).toBe('pulled');

    const other = await pushImage('sig/app', 'v6');
    await notation(['sign', '--insecure-registry', '--key', 'other-test', other.ref]);
    expect(await notation(['verify', '--insecure-registry', other.ref])).toContain('Successfully verified');
    expect(await pullByTag('sig/app', 'v6')).toContain(PULL_RULE);

    // Planted: notation's real envelope for v5, its payload pointed at v7 after signing (chain and key unchanged).
    const tampered = await pushImage('sig/app', 'v7');
    await copyNotationSignature(img.digest, tampered.digest);
    expect(await pullByTag('sig/app', 'v7')).toContain(PULL_RULE);
  });

  it('enforce push: crane cannot set the tag until cosign signed the digest', async () => {
    const img = await pushImage('rel/app', 'v1', false);
    const pushed = await crane(['push', img.dir, `${reg.host}/rel/app:v1`]).catch((e: Error) => e.message);
    expect(pushed).toContain('policies.signatures[1] (repos rel/**, enforce push): setting tag v1 of rel/app');
    expect(pushed).toContain(`push it by digest, sign ${img.digest}, then set the tag`);
    await crane(['push', img.dir, img.ref]);
    await cosign([...COSIGN_SIGN, '--key', 'cosign.key', img.ref]);
    await crane(['tag', img.ref, 'v1']);
    expect((await crane(['digest', `${reg.host}/rel/app:v1`])).trim()).toBe(img.digest);
  });
});
