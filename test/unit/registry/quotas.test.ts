import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parsePolicies, quotaRuleFor } from '../../../src/common/policies.js';
import { formatBytes } from '../../../src/common/units.js';
import { pushBlob, pushImage, sha256, snapshot, startRegistry, type TestRegistry } from './helpers.js';

describe('quota parsing', () => {
  it('reads rules with sizes; the first rule whose repos match applies', () => {
    const r = parsePolicies({
      quotas: [
        { repos: 'ci/big/**', limit: '50GiB' },
        { repos: ['ci/**', 'tmp'], limit: '10 GB' },
      ],
    });
    expect(r.problems).toEqual([]);
    const p = r.policies!;
    expect(quotaRuleFor(p, 'ci/big/x')).toMatchObject({ id: 'policies.quotas[0]', limitBytes: 50 * 1024 ** 3 });
    expect(quotaRuleFor(p, 'ci/app')).toMatchObject({ id: 'policies.quotas[1]', limitBytes: 10e9 });
    expect(quotaRuleFor(p, 'tmp')?.id).toBe('policies.quotas[1]');
    expect(quotaRuleFor(p, 'apps/web')).toBeUndefined();
    expect(parsePolicies(undefined).policies?.quotas).toEqual([]);
  });

  it('names every mistake on its own line, and yields no policies', () => {
    const r = parsePolicies({
      quotas: [
        { repos: 'a/**', limit: '1GiB' },
        { repos: '', limit: '1GiB' },
        { repos: 'b', limit: 10 },
        { repos: 'c', limit: '10 parsecs' },
        { repos: 'd', limit: '0GiB', size: 3 },
        { repos: 'e' },
        'f',
      ],
    });
    expect(r.policies).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      'policies.quotas[1].repos: must be a repository pattern such as "apps/**", or a list of them',
      'policies.quotas[2].limit: 10 is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
      'policies.quotas[3].limit: "10 parsecs" is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
      'policies.quotas[4].size: unknown field (known: repos, limit)',
      'policies.quotas[4].limit: "0GiB" is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
      'policies.quotas[5].limit: undefined is not a size above 0 (examples: 500MiB, 10GiB, 2TB; a number needs a unit)',
      'policies.quotas[6]: must be a mapping with repos, limit',
    ]);
    expect(parsePolicies({ quotas: { repos: 'a' } }).problems.map(formatProblem)).toEqual([
      'policies.quotas: must be a list',
    ]);
  });
});

const LAYER = 'x'.repeat(600);
/** 2 KiB for each repository under q/; an image of one 600-byte layer takes about 1 KiB of it. */
const QUOTA = 'policies:\n  quotas:\n    - { repos: "q/**", limit: 2KiB }\n';
const OCI = { 'content-type': 'application/vnd.oci.image.manifest.v1+json' };

describe('quotas', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  async function start(text: string): Promise<{ reg: TestRegistry; file: string }> {
    const file = join(await mkdtemp(join(tmpdir(), 'regctl-quota-')), 'config.yaml');
    await writeFile(file, text);
    reg = await startRegistry({ policiesFile: file });
    return { reg, file };
  }

  /** The refusal's message; its detail carries the exact numbers (`detail`, when given, must match them). */
  const deniedMessage = async (res: Response, detail?: Record<string, unknown>): Promise<string> => {
    expect(res.status).toBe(403);
    const body = (await res.json()) as { errors: { code: string; message: string; detail: unknown }[] };
    expect(body.errors[0]!.code).toBe('DENIED');
    if (detail)
      expect(body.errors[0]!.detail).toEqual({ reason: 'quota exceeded', rule: 'policies.quotas[0]', ...detail });
    return body.errors[0]!.message;
  };

  it('refuses a blob whose size is known before storing a byte, naming repository, rule, usage, limit, size', async () => {
    const { reg } = await start(QUOTA);
    const img = await pushImage(reg, 'q/app', 'v1', { layers: [LAYER] });
    const used = (await reg.server.app.store.index.quotaUsage('q/app')).bytes;
    const config = await reg.fetch(`/v2/q/app/blobs/${img.config}`, { method: 'HEAD' });
    expect(used).toBe(img.manifest.length + Number(config.headers.get('content-length')) + 600);
    const big = Buffer.alloc(1100, 7);
    const before = await snapshot(reg.data);
    // POST with ?digest= (one request).
    const post = await reg.fetch(`/v2/q/app/blobs/uploads/?digest=${sha256(big)}`, { method: 'POST', body: big });
    const message = await deniedMessage(post, { name: 'q/app', usedBytes: used, limitBytes: 2048, pushBytes: 1100 });
    expect(message).toBe(
      `quota exceeded: q/app holds ${formatBytes(used)} of its 2.00 KiB quota (policies.quotas[0], repos q/**) ` +
        'and this push adds 1.07 KiB; delete tags or ask an admin to raise the limit',
    );
    expect(await snapshot(reg.data)).toEqual(before);
    // POST then a monolithic PUT with the body; and a PATCH declaring its length.
    const started = await reg.fetch('/v2/q/app/blobs/uploads/', { method: 'POST' });
    expect(started.status).toBe(202);
    const upload = started.headers.get('location')!;
    const afterStart = await snapshot(reg.data);
    const put = await reg.fetch(`${new URL(upload, reg.url).pathname}?digest=${sha256(big)}`, {
      method: 'PUT',
      body: big,
    });
    expect(await deniedMessage(put)).toContain('and this push adds 1.07 KiB');
    const patch = await reg.fetch(new URL(upload, reg.url).pathname, { method: 'PATCH', body: big });
    expect(await deniedMessage(patch)).toContain('and this push adds 1.07 KiB');
    expect(await snapshot(reg.data)).toEqual(afterStart);
    // A chunk streamed without a declared length is taken; the PUT that would commit it as a blob is refused.
    const chunked = await reg.fetch(new URL(upload, reg.url).pathname, {
      method: 'PATCH',
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(big));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(202);
    const commit = await reg.fetch(`${new URL(upload, reg.url).pathname}?digest=${sha256(big)}`, { method: 'PUT' });
    expect(await deniedMessage(commit)).toContain('and this push adds 1.07 KiB');
    const hex = sha256(big).slice(7);
    expect(Object.keys(await snapshot(reg.data)).filter((k) => k.includes(hex))).toEqual([]);
    // What fits goes through; a blob the repository holds already adds nothing.
    await pushBlob(reg, 'q/app', Buffer.alloc(50, 1));
    await pushBlob(reg, 'q/app', LAYER);
    // Another repository has its own quota (per repository, not the pattern's sum); one no rule matches, none.
    await pushBlob(reg, 'q/other', big);
    await pushBlob(reg, 'free/app', Buffer.alloc(5000, 2));
  });

  it('refuses at the manifest PUT what reached the repository without a known size, and counts shared blobs once', async () => {
    const { reg } = await start(QUOTA);
    const first = await pushImage(reg, 'q/app', 'v1', { layers: [LAYER] });
    // The same layer under another tag and config: only the new config and manifest count.
    await pushImage(reg, 'q/app', 'v2', { layers: [LAYER] });
    // A blob mounted from a repository without quota, then referenced: refused at the manifest, nothing written.
    const big = Buffer.alloc(400, 9);
    const digest = await pushBlob(reg, 'free/app', big);
    const mount = await reg.fetch(`/v2/q/app/blobs/uploads/?mount=${digest}&from=free/app`, { method: 'POST' });
    expect(mount.status).toBe(201);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI['content-type'],
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: first.config, size: 0 },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: 400 }],
      }),
    );
    const index = reg.server.app.store.index;
    const used = (await index.quotaUsage('q/app')).bytes;
    const before = await snapshot(reg.data);
    const res = await reg.fetch('/v2/q/app/manifests/v3', { method: 'PUT', body: manifest, headers: OCI });
    const push = 400 + manifest.length;
    expect(await deniedMessage(res, { name: 'q/app', usedBytes: used, limitBytes: 2048, pushBytes: push })).toContain(
      `q/app holds ${formatBytes(used)} of its 2.00 KiB quota (policies.quotas[0], repos q/**) and this push adds ` +
        `${formatBytes(push)}`,
    );
    expect(await snapshot(reg.data)).toEqual(before);
    expect(await index.tagTarget('q/app', 'v3')).toBeUndefined();
    // A retag adds no bytes: accepted although the repository is near its limit.
    const retag = await reg.fetch('/v2/q/app/manifests/again', { method: 'PUT', body: first.manifest, headers: OCI });
    expect(retag.status).toBe(201);
  });

  it('a reload raising the limit lets the same push through; a bad file keeps the quota in force', async () => {
    const { reg, file } = await start(QUOTA);
    await pushImage(reg, 'q/app', 'v1', { layers: [LAYER] });
    await expect(pushImage(reg, 'q/app', 'v2', { layers: ['y'.repeat(600)] })).rejects.toThrow(/^push manifest: 403 /);
    await writeFile(file, 'policies:\n  quotas:\n    - { repos: "q/**", limit: 10 }\n');
    expect((await reg.fetch('/admin/v1/reload', { method: 'POST' })).status).toBe(400);
    await expect(pushImage(reg, 'q/app', 'v2', { layers: ['y'.repeat(600)] })).rejects.toThrow(/quota exceeded/);
    await writeFile(file, 'policies:\n  quotas:\n    - { repos: "q/**", limit: 4KiB }\n');
    expect((await reg.fetch('/admin/v1/reload', { method: 'POST' })).status).toBe(200);
    const pushed = await pushImage(reg, 'q/app', 'v2', { layers: ['y'.repeat(600)] });
    expect((await reg.fetch(`/v2/q/app/manifests/${pushed.digest}`, { method: 'HEAD' })).status).toBe(200);
  });
});
