import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatProblem, parsePolicies, tagPattern } from '../../../src/common/policies.js';
import { errorCode, pushImage, sha256, startRegistry, type TestRegistry } from './helpers.js';

describe('policy parsing', () => {
  it('reads a valid document', () => {
    const r = parsePolicies({
      immutableTags: [
        { repos: 'apps/**', tags: 'v*' },
        { repos: ['a', 'b/*'], tags: '/^\\d+$/' },
      ],
      retention: {
        schedule: '24h',
        rules: [{ repos: 'ci/**', keepLast: 3, keepTags: 'release-*', untaggedOlderThan: '7d' }],
      },
    });
    expect(r.problems).toEqual([]);
    const p = r.policies!;
    expect(p.immutableTags.map((t) => t.id)).toEqual(['policies.immutableTags[0]', 'policies.immutableTags[1]']);
    expect(p.immutableTags[0]!.repos.test('apps/web/api')).toBe(true);
    expect(p.immutableTags[0]!.repos.test('other/web')).toBe(false);
    expect(p.immutableTags[1]!.repos.test('b/x')).toBe(true);
    expect(p.immutableTags[1]!.tags.test('123')).toBe(true);
    expect(p.immutableTags[1]!.tags.test('v1')).toBe(false);
    expect(p.retention.scheduleMs).toBe(24 * 3600_000);
    expect(p.retention.rules[0]).toMatchObject({ keepLast: 3, untaggedOlderThan: 7 * 86_400_000 });
    expect(parsePolicies(undefined).policies?.immutableTags).toEqual([]);
  });

  it('globs match whole tags; regular expressions as written', () => {
    expect(tagPattern('v*').test('v1.2')).toBe(true);
    expect(tagPattern('v*').test('xv1')).toBe(false);
    expect(tagPattern('v1.?').test('v1.5')).toBe(true);
    expect(tagPattern('v1.?').test('v1x5')).toBe(false);
    expect(tagPattern('/^rel-/').test('rel-7')).toBe(true);
  });

  it('names every mistake on its own line, and yields no policies', () => {
    const r = parsePolicies({
      immutableTags: [{ repos: '', tags: '/(/' }, 'x'],
      retention: {
        schedule: 10,
        dryRun: 'yes',
        color: 'red',
        rules: [
          { repos: 'a/**', keepLast: 2 },
          { repos: 'b', keepLast: -1, removeOlderThan: '30' },
          { repos: 'c', keepLast: 1.5, keepPulledWithin: '14d', extra: 1 },
          { repos: 'd', keepTags: 'x' },
        ],
      },
    });
    expect(r.policies).toBeUndefined();
    expect(r.problems.map(formatProblem)).toEqual([
      'policies.immutableTags[0].repos: must be a repository pattern such as "apps/**", or a list of them',
      expect.stringMatching(/^policies\.immutableTags\[0\]\.tags: is not a valid regular expression \(/),
      'policies.immutableTags[1]: must be a mapping with repos, tags',
      'policies.retention.color: unknown field (known: schedule, dryRun, rules)',
      'policies.retention.schedule: 10 is not a duration (examples: 24h, 7d, 30d; a number needs a unit)',
      'policies.retention.dryRun: must be true or false',
      'policies.retention.rules[1].keepLast: -1 is not a whole number of tags (0 or more)',
      'policies.retention.rules[1].removeOlderThan: "30" is not a duration (examples: 24h, 7d, 30d; a number needs a unit)',
      expect.stringMatching(/^policies\.retention\.rules\[2\]\.extra: unknown field/),
      'policies.retention.rules[2].keepLast: 1.5 is not a whole number of tags (0 or more)',
      'policies.retention.rules[3]: removes nothing: give keepLast, removeOlderThan or untaggedOlderThan',
    ]);
  });
});

const IMMUTABLE = `policies:
  immutableTags:
    - { repos: "apps/**", tags: "v*" }
`;

describe('immutable tags', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  async function start(text: string, pollMs?: number, access?: string): Promise<{ reg: TestRegistry; file: string }> {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const file = join(await mkdtemp(join(tmpdir(), 'regctl-policy-')), 'config.yaml');
    await writeFile(file, text);
    reg = await startRegistry({ policiesFile: file, policiesPollMs: pollMs, ...(access ? { access } : {}) });
    return { reg, file };
  }

  it('refuses to move a protected tag, accepts the same digest again, and lets unprotected tags move', async () => {
    const { reg } = await start(IMMUTABLE);
    const first = await pushImage(reg, 'apps/web', 'v1', { layers: ['one'] });
    const again = await reg.fetch('/v2/apps/web/manifests/v1', {
      method: 'PUT',
      body: first.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(again.status).toBe(201);
    const moved = await pushImage(reg, 'apps/web', 'v1', { layers: ['two'] }).catch((e: Error) => e.message);
    expect(moved).toMatch(/^push manifest: 403 /);
    expect(moved).toContain('"code":"DENIED"');
    expect(moved).toContain(
      'tag v1 of apps/web is immutable by policy policies.immutableTags[0] (repos apps/**, tags v*)',
    );
    const head = await reg.fetch('/v2/apps/web/manifests/v1', { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(first.digest);
    // Through `?tag=` on a PUT by digest too.
    const other = await pushImage(reg, 'apps/web', 'latest', { layers: ['two'] });
    const byDigest = await reg.fetch(`/v2/apps/web/manifests/${other.digest}?tag=v1`, {
      method: 'PUT',
      body: other.manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(byDigest.status).toBe(403);
    await pushImage(reg, 'apps/web', 'latest', { layers: ['three'] });
    await pushImage(reg, 'other/web', 'v1', { layers: ['a'] });
    await pushImage(reg, 'other/web', 'v1', { layers: ['b'] });
  });

  it('refuses deletes of a protected tag unless an admin sends the override', async () => {
    const access =
      'users:\n  admin: { admin: true }\n  ci: { rules: [ { repos: "apps/**", actions: [pull, push, delete] } ] }\n';
    const { reg } = await start(IMMUTABLE, undefined, access);
    const img = await pushImage(reg, 'apps/web', 'v1');
    const byTag = await reg.fetch('/v2/apps/web/manifests/v1', { method: 'DELETE' });
    expect(byTag.status).toBe(403);
    expect(await byTag.text()).toContain('cannot be deleted without the admin override');
    expect((await reg.fetch(`/v2/apps/web/manifests/${img.digest}`, { method: 'DELETE' })).status).toBe(403);
    const bad = await reg.fetch('/v2/apps/web/manifests/v1', {
      method: 'DELETE',
      headers: { 'regctl-override-immutable': 'please' },
    });
    expect(bad.status).toBe(400);
    const notAdmin = await reg.fetch('/v2/apps/web/manifests/v1', {
      method: 'DELETE',
      auth: ['ci', 'ci-pw'],
      headers: { 'regctl-override-immutable': 'true' },
    });
    expect(notAdmin.status).toBe(403);
    expect(await notAdmin.text()).toContain('regctl-override-immutable needs an admin user');
    // Without the header, the same user is refused by the policy (it may delete other tags).
    const plain = await reg.fetch('/v2/apps/web/manifests/v1', { method: 'DELETE', auth: ['ci', 'ci-pw'] });
    expect(await plain.text()).toContain('is immutable by policy');
    const ok = await reg.fetch('/v2/apps/web/manifests/v1', {
      method: 'DELETE',
      headers: { 'regctl-override-immutable': 'true' },
    });
    expect(ok.status).toBe(202);
    // A tag that does not exist is the usual 404, not a refusal.
    expect(await errorCode(await reg.fetch('/v2/apps/web/manifests/v2', { method: 'DELETE' }))).toBe(
      'MANIFEST_UNKNOWN',
    );
  });

  it('a reload applies a good file, and keeps the policies in force when the new file has mistakes', async () => {
    const { reg, file } = await start(IMMUTABLE);
    await pushImage(reg, 'apps/web', 'v1', { layers: ['one'] });
    await writeFile(file, 'policies:\n  immutableTags:\n    - { repos: "apps/**" }\n  retention: { rules: 3 }\n');
    const res = await reg.fetch('/admin/v1/reload', { method: 'POST' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { message: string; detail: { problems: string[] } }[] };
    expect(body.errors[0]!.message).toBe('policies not reloaded');
    expect(body.errors[0]!.detail.problems).toEqual([
      'policies.immutableTags[0].tags: must be a tag pattern: a glob such as "v*", or a regular expression between slashes',
      'policies.retention.rules: must be a list',
    ]);
    expect(reg.logs.filter((l) => l.includes('policy reload refused'))).toHaveLength(2);
    await expect(pushImage(reg, 'apps/web', 'v1', { layers: ['two'] })).rejects.toThrow(/403/);
    await writeFile(file, 'policies: {}\n');
    expect((await reg.fetch('/admin/v1/reload', { method: 'POST' })).status).toBe(200);
    const moved = await pushImage(reg, 'apps/web', 'v1', { layers: ['two'] });
    expect(moved.digest).toBe(sha256(moved.manifest));
  });

  it('a changed file applies by itself (a stack re-renders it), with no reload call', async () => {
    const { reg, file } = await start('policies: {}\n', 50);
    await pushImage(reg, 'apps/web', 'v1', { layers: ['one'] });
    await writeFile(file, IMMUTABLE);
    await expect.poll(() => reg.logs.some((l) => l.includes('"immutableTagRules":1')), { timeout: 5000 }).toBe(true);
    await expect(pushImage(reg, 'apps/web', 'v1', { layers: ['two'] })).rejects.toThrow(/403/);
  });

  it('a registry whose config file has mistakes does not start', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const file = join(await mkdtemp(join(tmpdir(), 'regctl-policy-')), 'config.yaml');
    await writeFile(file, 'policies:\n  immutableTags: [ { repos: "a", tags: "v*", when: never } ]\n');
    await expect(startRegistry({ policiesFile: file })).rejects.toMatchObject({
      name: 'PolicyFileError',
      lines: ['policies.immutableTags[0].when: unknown field (known: repos, tags)'],
    });
  });
});

describe('last pull of each manifest', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  it('a GET by tag or digest records it, a HEAD does not', async () => {
    reg = await startRegistry({});
    const a = await pushImage(reg, 'apps/web', 'a', { layers: ['one'] });
    const b = await pushImage(reg, 'apps/web', 'b', { layers: ['two'] });
    const index = reg.server.app.store.index;
    expect((await reg.fetch('/v2/apps/web/manifests/a', { method: 'HEAD' })).status).toBe(200);
    expect(await index.manifestPulls('apps/web')).toEqual(new Map());
    const before = Date.now();
    expect((await reg.fetch('/v2/apps/web/manifests/a')).status).toBe(200);
    expect((await reg.fetch(`/v2/apps/web/manifests/${b.digest}`)).status).toBe(200);
    await index.flush();
    const pulls = await index.manifestPulls('apps/web');
    expect([...pulls.keys()].sort()).toEqual([a.digest, b.digest].sort());
    expect(pulls.get(a.digest)).toBeGreaterThanOrEqual(before);
  });
});
