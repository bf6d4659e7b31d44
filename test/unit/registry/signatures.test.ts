/**
 * `policies.signatures` in-process: parsing (one line per mistake), and enforcement on pull and on push with
 * cosign simple-signing signatures made here with node:crypto in both of cosign's forms (referrer and
 * `sha256-<hex>.sig` tag). The real cosign and notation binaries sign and verify against the built registry in
 * test/integration/registry/signatures.test.ts; this file covers the policy's decisions and its bad data.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parsePolicies } from '../../../src/common/policies.js';
import { pushBlob, pushImage, sha256, startRegistry, type TestRegistry } from './helpers.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function keyPair(): { privateKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

async function putManifest(reg: TestRegistry, repo: string, ref: string, body: Buffer): Promise<Response> {
  return reg.fetch(`/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    body,
    headers: { 'content-type': OCI_MANIFEST },
  });
}

/**
 * Pushes a cosign-style signature of `subject` signed by `privateKey`: as a referrer, or under cosign's tag.
 * `claim` is the digest the payload names (the subject, unless a test plants another).
 */
async function cosignSign(
  reg: TestRegistry,
  repo: string,
  subject: string,
  privateKey: KeyObject,
  opts: { form: 'referrer' | 'tag'; claim?: string; tamper?: boolean },
): Promise<string> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${repo}` },
        image: { 'docker-manifest-digest': opts.claim ?? subject },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  const signature = sign('sha256', payload, privateKey).toString('base64');
  const stored = opts.tamper
    ? Buffer.from(payload.toString().replace('cosign container', 'cosign-container'))
    : payload;
  const layer = await pushBlob(reg, repo, stored);
  const config = await pushBlob(reg, repo, '{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(opts.form === 'referrer' ? { artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' } : {}),
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: layer,
          size: stored.length,
          annotations: { 'dev.cosignproject.cosign/signature': signature },
        },
      ],
      ...(opts.form === 'referrer' ? { subject: { mediaType: OCI_MANIFEST, digest: subject, size: 1 } } : {}),
    }),
  );
  const ref = opts.form === 'tag' ? `${subject.replace(':', '-')}.sig` : sha256(manifest);
  const res = await putManifest(reg, repo, ref, manifest);
  if (res.status !== 201) throw new Error(`push signature: ${res.status} ${await res.text()}`);
  return sha256(manifest);
}

describe('signature policy parsing', () => {
  const pem = keyPair().pem;

  it('reads rules with inline and file keys', () => {
    const r = parsePolicies({
      signatures: [
        { repos: 'prod/**', tags: 'v*', keys: [pem], enforce: 'pull' },
        { repos: ['rel/*'], keys: ['keys/cosign.pub'], enforce: 'push' },
      ],
    });
    expect(r.problems).toEqual([]);
    const [a, b] = r.policies!.signatures;
    expect(a).toMatchObject({ id: 'policies.signatures[0]', enforce: 'pull' });
    expect(a!.keys).toEqual([{ source: 'policies.signatures[0].keys[0] (inline)', pem }]);
    expect(a!.tags!.test('v1')).toBe(true);
    expect(b!.tags).toBeUndefined();
    expect(b!.keys).toEqual([{ source: 'keys/cosign.pub', pem: '' }]);
  });

  it('names every mistake on its own line, and yields no policies', () => {
    const r = parsePolicies({
      signatures: [
        { repos: 'a', keys: [pem], enforce: 'always' },
        { repos: 'b', keys: [], enforce: 'pull' },
        { repos: 'c', tags: '/(/', keys: ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 7] },
        { repositories: 'd', keys: [pem], enforce: 'push' },
        'e',
      ],
    });
    expect(r.policies).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      'policies.signatures[0].enforce: "always" must be push (refuse setting the tag) or pull (refuse the pull)',
      'policies.signatures[1].keys: must be a list of public keys: PEM file paths (relative to the config file) or PEM text',
      expect.stringMatching(/^policies\.signatures\[2\]\.tags: is not a valid regular expression \(/),
      'policies.signatures[2].enforce: undefined must be push (refuse setting the tag) or pull (refuse the pull)',
      expect.stringMatching(/^policies\.signatures\[2\]\.keys\[0\]: is not a PEM public key or certificate \(/),
      'policies.signatures[2].keys[1]: must be a file path or PEM text',
      'policies.signatures[3].repositories: unknown field (known: repos, tags, keys, enforce)',
      'policies.signatures[3].repos: must be a repository pattern such as "apps/**", or a list of them',
      'policies.signatures[4]: must be a mapping with repos, tags, keys, enforce',
    ]);
  });
});

describe('signature-required policy', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  async function start(policy: (keyFile: string) => string, pem: string) {
    const dir = await mkdtemp(join(tmpdir(), 'regctl-sig-policy-'));
    await writeFile(join(dir, 'cosign.pub'), pem);
    const file = join(dir, 'config.yaml');
    await writeFile(file, policy('cosign.pub'));
    reg = await startRegistry({ policiesFile: file });
    return { reg, file, dir };
  }

  const pullPolicy = (key: string) =>
    `policies:\n  signatures:\n    - { repos: "prod/**", tags: "v*", keys: [ ${key} ], enforce: pull }\n`;

  it('enforce pull: refuses an unsigned tag, allows one signed in either cosign form, refuses other keys', async () => {
    const trusted = keyPair();
    const other = keyPair();
    const { reg } = await start(pullPolicy, trusted.pem);
    const unsigned = await pushImage(reg, 'prod/app', 'v1', { layers: ['one'] });
    const refused = await reg.fetch('/v2/prod/app/manifests/v1');
    expect(refused.status).toBe(403);
    const body = (await refused.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('DENIED');
    expect(body.errors[0]!.message).toBe(
      'a signature is required by policy policies.signatures[0] (repos prod/**, tags v*, enforce pull): the pull of ' +
        `tag v1 of prod/app, ${unsigned.digest}, carries no valid signature by the rule's keys`,
    );
    expect((await reg.fetch('/v2/prod/app/manifests/v1', { method: 'HEAD' })).status).toBe(403);
    // Not a matching tag, or by digest: not checked.
    await pushImage(reg, 'prod/app', 'latest', { layers: ['one'] });
    expect((await reg.fetch('/v2/prod/app/manifests/latest')).status).toBe(200);
    expect((await reg.fetch(`/v2/prod/app/manifests/${unsigned.digest}`)).status).toBe(200);

    // Planted bad data: another key, a payload naming another digest, a payload changed after signing.
    await cosignSign(reg, 'prod/app', unsigned.digest, other.privateKey, { form: 'referrer' });
    await cosignSign(reg, 'prod/app', unsigned.digest, trusted.privateKey, { form: 'referrer', claim: sha256('x') });
    await cosignSign(reg, 'prod/app', unsigned.digest, trusted.privateKey, { form: 'tag', tamper: true });
    expect((await reg.fetch('/v2/prod/app/manifests/v1')).status).toBe(403);

    await cosignSign(reg, 'prod/app', unsigned.digest, trusted.privateKey, { form: 'referrer' });
    const ok = await reg.fetch('/v2/prod/app/manifests/v1');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-content-digest')).toBe(unsigned.digest);

    // The tag form alone is enough too.
    const tagged = await pushImage(reg, 'prod/app', 'v2', { layers: ['two'] });
    expect((await reg.fetch('/v2/prod/app/manifests/v2')).status).toBe(403);
    await cosignSign(reg, 'prod/app', tagged.digest, trusted.privateKey, { form: 'tag' });
    expect((await reg.fetch('/v2/prod/app/manifests/v2')).status).toBe(200);
  });

  it('enforce push: a tag is set only on a manifest already signed (push by digest, sign, then tag)', async () => {
    const trusted = keyPair();
    const { reg } = await start(
      (key) => `policies:\n  signatures:\n    - { repos: "rel/**", keys: [ ${key} ], enforce: push }\n`,
      trusted.pem,
    );
    const img = await pushImage(reg, 'scratch/app', 'x', { layers: ['one'] });
    for (const blob of [img.config, ...img.layers]) {
      const mount = await reg.fetch(`/v2/rel/app/blobs/uploads/?mount=${blob}&from=scratch/app`, { method: 'POST' });
      expect(mount.status).toBe(201);
    }
    const byTag = await putManifest(reg, 'rel/app', 'v1', img.manifest);
    expect(byTag.status).toBe(403);
    expect(await byTag.text()).toContain(
      `a signature is required by policy policies.signatures[0] (repos rel/**, enforce push): setting tag v1 of ` +
        `rel/app, ${img.digest}, carries no valid signature by the rule's keys; push it by digest, sign ` +
        `${img.digest}, then set the tag`,
    );
    expect((await putManifest(reg, 'rel/app', img.digest, img.manifest)).status).toBe(201);
    expect((await putManifest(reg, 'rel/app', `${img.digest}?tag=v1`, img.manifest)).status).toBe(403);
    // cosign's own attachment tag is how the signature arrives: never refused.
    await cosignSign(reg, 'rel/app', img.digest, trusted.privateKey, { form: 'tag' });
    expect((await putManifest(reg, 'rel/app', 'v1', img.manifest)).status).toBe(201);
    expect((await putManifest(reg, 'rel/app', `${img.digest}?tag=v2`, img.manifest)).status).toBe(201);
  });

  it('an unreadable or bad key file is one line each, and the policy in force stays', async () => {
    const trusted = keyPair();
    const { reg, file, dir } = await start(pullPolicy, trusted.pem);
    await pushImage(reg, 'prod/app', 'v1', { layers: ['one'] });
    await writeFile(join(dir, 'bad.pub'), 'not a key\n');
    await writeFile(
      file,
      'policies:\n  signatures:\n    - { repos: "prod/**", keys: [ missing.pub, bad.pub ], enforce: pull }\n',
    );
    const res = await reg.fetch('/admin/v1/reload', { method: 'POST' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { detail: { problems: string[] } }[] };
    expect(body.errors[0]!.detail.problems).toEqual([
      'policies.signatures[0].keys[0]: cannot read missing.pub (ENOENT)',
      expect.stringMatching(
        /^policies\.signatures\[0\]\.keys\[1\]: bad\.pub is not a PEM public key or certificate \(/,
      ),
    ]);
    expect((await reg.fetch('/v2/prod/app/manifests/v1')).status).toBe(403);
    await writeFile(file, 'policies: {}\n');
    expect((await reg.fetch('/admin/v1/reload', { method: 'POST' })).status).toBe(200);
    expect((await reg.fetch('/v2/prod/app/manifests/v1')).status).toBe(200);
  });
});
