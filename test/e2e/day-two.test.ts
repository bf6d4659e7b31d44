/**
 * Day-two operations on the real dev stack (regctl init + up, Traefik, the registry and UI containers), through
 * the built CLI: users and permissions, credential rotation under load with a grace window, online GC while
 * another client pushes, and a backup taken during a push, restored after `down --volumes`.
 *
 * Registry traffic goes through Traefik at registry.example.test:<http port> (an /etc/hosts line maps it to
 * 127.0.0.1, which dockerd treats as an insecure registry).
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authHeaders,
  getBlob,
  getManifestDigest,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  type Creds,
} from '../helpers/day-two-fixture.js';
import {
  REGISTRY_HOST,
  UI_HOST,
  addHostsLine,
  buildMultiLayerImage,
  stackTestsReady,
  dockerCli,
  forceRemoveProject,
  initStack,
  regctl,
  type E2eStack,
} from './helpers.js';

const ready = stackTestsReady();
/** Its own project name, so this file never touches another stack running on the machine. */
const PROJECT = 'daytwo';
const VOLUME = `${PROJECT}_registry-data`;

async function volumePath(): Promise<string> {
  return (await execa('docker', ['volume', 'inspect', '-f', '{{.Mountpoint}}', VOLUME])).stdout.trim();
}

async function volumeExists(): Promise<boolean> {
  return (await execa('docker', ['volume', 'inspect', VOLUME], { reject: false })).exitCode === 0;
}

function blobOnDisk(root: string, digest: string): string {
  return join(root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe.skipIf(!ready)('day-two operations on the dev stack', () => {
  let stack: E2eStack;
  let removeHosts: () => Promise<void> = async () => undefined;
  let dockerConfig: string;
  let docker: ReturnType<typeof dockerCli>;
  let registry: string;
  let url: string;
  let admin: Creds;
  let work: string;
  /** Every image pushed and still tagged: repo:tag → manifest digest. */
  const expected: Record<string, string> = {};
  /** Content of a layer that is in the registry when the backup runs (to damage the archive where it counts). */
  let knownLayer = Buffer.alloc(0);
  let fullArchive = '';

  beforeAll(async () => {
    await forceRemoveProject(PROJECT);
    stack = await initStack(['--name', PROJECT]);
    registry = `${REGISTRY_HOST}:${stack.ports.http}`;
    url = `http://${registry}`;
    admin = { username: 'admin', password: stack.password };
    removeHosts = await addHostsLine([REGISTRY_HOST, UI_HOST], 'regctl e2e day-two');
    dockerConfig = await mkdtemp(join(tmpdir(), 'regctl-e2e-docker-'));
    work = await mkdtemp(join(tmpdir(), 'regctl-e2e-day-two-'));
    docker = dockerCli(dockerConfig);
    const up = await regctl(['up', '--dir', stack.dir]);
    if (up.exitCode !== 0) throw new Error(`regctl up failed:\n${up.all}`);
  }, 600_000);

  afterAll(async () => {
    await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    await forceRemoveProject(PROJECT);
    await removeHosts();
    await docker(['rmi', '-f', `${registry}/e2e/multi:1`, 'regctl-e2e/day-two:1']);
    await rm(dockerConfig, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    await stack.cleanup();
  }, 120_000);

  it('permissions: a pull-only user pulls and is refused push and delete; an unknown user gets nothing', async () => {
    const img = await pushImage(url, 'shared/base', 'v1', [randomBytes(40_000)], admin);
    expected['shared/base:v1'] = img.digest;
    const add = await regctl(['users', 'add', 'viewer', '--pull', '**', '--dir', stack.dir, '--json']);
    expect(add.exitCode, add.all).toBe(0);
    const viewer = { username: 'viewer', password: (JSON.parse(add.stdout) as { password: string }).password };
    expect(viewer.password).toMatch(/^[A-Za-z0-9_-]{32}$/);

    expect(await getManifestDigest(url, 'shared/base', 'v1', viewer)).toEqual({ status: 200, digest: img.digest });
    expect((await pushBlob(url, 'shared/base', randomBytes(10), viewer)).status).toBe(403);
    const del = await fetch(`${url}/v2/shared/base/manifests/${img.digest}`, {
      method: 'DELETE',
      headers: authHeaders(viewer),
    });
    expect(del.status).toBe(403);
    expect(((await del.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    expect(
      (await getManifestDigest(url, 'shared/base', 'v1', { username: 'stranger', password: 'not-a-user-123' })).status,
    ).toBe(401);
    expect((await fetch(`${url}/v2/_catalog`)).status).toBe(401);

    // The docker CLI sees the same: login and pull work, push is denied.
    const login = await docker(['login', registry, '-u', 'viewer', '--password-stdin'], { input: viewer.password });
    expect(login.exitCode, login.all).toBe(0);
    await buildMultiLayerImage('regctl-e2e/day-two:1', 2, docker);
    await docker(['tag', 'regctl-e2e/day-two:1', `${registry}/e2e/multi:1`]);
    const denied = await docker(['push', `${registry}/e2e/multi:1`]);
    expect(denied.exitCode).not.toBe(0);
    expect(denied.all).toMatch(/denied|403|forbidden/i);
    const badLogin = await docker(['login', registry, '-u', 'stranger', '--password-stdin'], {
      input: 'not-a-user-123',
    });
    expect(badLogin.exitCode).not.toBe(0);

    const list = await regctl(['users', 'list', '--dir', stack.dir, '--json']);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((u) => u.name)).toEqual(['admin', 'viewer']);
  });

  it('rotation under load: no request with a valid secret fails, the old one gets 401 after the window, docker login works', async () => {
    // A web UI session of the admin, to see it end once the old password is refused.
    const form = new URLSearchParams({ username: 'admin', password: admin.password });
    const signIn = await fetch(`http://${UI_HOST}:${stack.ports.http}/login`, {
      method: 'POST',
      body: form,
      redirect: 'manual',
    });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
    expect(
      (await fetch(`http://${UI_HOST}:${stack.ports.http}/r/shared/base`, { headers: { cookie }, redirect: 'manual' }))
        .status,
    ).toBe(200);

    const old = { ...admin };
    let current = { ...admin };
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const layer = randomBytes(20_000);
    const client = async (id: number) => {
      for (let n = 0; !stop; n++) {
        const creds = current;
        const which = creds.password === old.password ? 'old' : 'new';
        try {
          const pull = await getManifestDigest(url, 'shared/base', 'v1', creds);
          if (pull.status !== 200) failures.push(`pull ${pull.status} (${which})`);
          const blob = await pushBlob(url, 'load/app', Buffer.concat([layer, Buffer.from(`${id}-${n}`)]), creds);
          if (blob.status !== 201) failures.push(`push ${blob.status} (${which})`);
          ok++;
        } catch (err) {
          failures.push(`${(err as Error).message} (${which})`);
        }
      }
    };
    const clients = [client(1), client(2)];
    await new Promise((r) => setTimeout(r, 1000));
    const rotate = await regctl(['rotate-credentials', '--dir', stack.dir, '--grace', '8s', '--json']);
    expect(rotate.exitCode, rotate.all).toBe(0);
    const r = JSON.parse(rotate.stdout) as {
      password: string;
      graceUntil: string;
      envUpdated: boolean;
      reloaded: boolean;
      verified: boolean;
      loginCommand: string;
    };
    current = { username: 'admin', password: r.password };
    expect(r.envUpdated && r.reloaded && r.verified).toBe(true);
    expect(r.loginCommand).toContain(`docker login ${registry} -u admin --password-stdin`);
    expect(await readFile(join(stack.dir, '.env'), 'utf8')).toContain(`REGISTRY_PASSWORD=${r.password}`);
    await new Promise((res) => setTimeout(res, 2000));
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(10);

    // During the window the old secret still works; after it, 401 (no reload involved).
    expect((await getManifestDigest(url, 'shared/base', 'v1', old)).status).toBe(200);
    const wait = Date.parse(r.graceUntil) - Date.now() + 1500;
    await new Promise((res) => setTimeout(res, Math.max(0, wait)));
    expect((await getManifestDigest(url, 'shared/base', 'v1', old)).status).toBe(401);
    expect((await getManifestDigest(url, 'shared/base', 'v1', current)).status).toBe(200);

    const ui = await fetch(`http://${UI_HOST}:${stack.ports.http}/r/never/visited`, {
      headers: { cookie },
      redirect: 'manual',
    });
    expect(ui.status).toBe(303);
    expect(ui.headers.get('location')).toContain('reason=rotated');

    const login = await docker(['login', registry, '-u', 'admin', '--password-stdin'], { input: r.password });
    expect(login.exitCode, login.all).toBe(0);
    admin = current;
  }, 120_000);

  it('gc while another client pushes: shared layers survive, freed space is gone from the volume, index children and referrers stay', async () => {
    const shared = randomBytes(300_000);
    const exclusive = randomBytes(500_000);
    const doomed = await pushImage(url, 'gc/app', 'old', [shared, exclusive], admin);
    // A multi-arch index whose children are untagged, and a referrer of the index.
    const amd = await pushImage(url, 'gc/multi', 'amd64-build', [randomBytes(50_000)], admin);
    const arm = await pushImage(url, 'gc/multi', 'arm64-build', [randomBytes(50_000)], admin);
    const index = await putManifest(
      url,
      'gc/multi',
      'v1',
      {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: amd.digest, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: OCI_MANIFEST, digest: arm.digest, size: 1, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      },
      OCI_INDEX,
      admin,
    );
    expect(index.status).toBe(201);
    for (const tag of ['amd64-build', 'arm64-build']) {
      expect(
        (await fetch(`${url}/v2/gc/multi/manifests/${tag}`, { method: 'DELETE', headers: authHeaders(admin) })).status,
      ).toBe(202);
    }
    const sbom = Buffer.from('{"sbom":true}');
    const sbomBlob = await pushBlob(url, 'gc/multi', sbom, admin);
    const emptyCfg = await pushBlob(url, 'gc/multi', Buffer.from('{}'), admin);
    const referrer = await putManifest(
      url,
      'gc/multi',
      'sbom-tmp',
      {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyCfg.digest, size: 2 },
        layers: [{ mediaType: 'application/spdx+json', digest: sbomBlob.digest, size: sbom.length }],
        subject: { mediaType: OCI_INDEX, digest: index.digest, size: 1 },
      },
      OCI_MANIFEST,
      admin,
    );
    expect(referrer.status).toBe(201);
    expect(
      (await fetch(`${url}/v2/gc/multi/manifests/sbom-tmp`, { method: 'DELETE', headers: authHeaders(admin) })).status,
    ).toBe(202);
    expected['gc/multi:v1'] = index.digest;

    expect(
      (await fetch(`${url}/v2/gc/app/manifests/${doomed.digest}`, { method: 'DELETE', headers: authHeaders(admin) }))
        .status,
    ).toBe(202);
    const root = await volumePath();
    const exclusiveDigest = doomed.blobs[2] as string;
    expect(await exists(blobOnDisk(root, exclusiveDigest))).toBe(true);
    await new Promise((r) => setTimeout(r, 3000));

    const dry = await regctl(['gc', '--dir', stack.dir, '--dry-run', '--delete-untagged', '--grace', '2s']);
    expect(dry.exitCode, dry.all).toBe(0);
    expect(dry.stdout).toMatch(/Would delete \d+ blobs/);
    expect(dry.stdout).toContain(exclusiveDigest.slice(0, 19));
    expect(dry.stdout).toContain('Kept:');

    // GC and a push of a new image sharing the deleted image's layer, at the same time.
    const [gcRun, fresh] = await Promise.all([
      regctl(['gc', '--dir', stack.dir, '--delete-untagged', '--grace', '2s', '--json']),
      pushImage(url, 'gc/app', 'new', [shared, randomBytes(30_000)], admin),
    ]);
    expect(gcRun.exitCode, gcRun.all).toBe(0);
    const report = JSON.parse(gcRun.stdout) as { freedBytes: number; report: { deleted: { digest: string }[] } };
    const deleted = new Set(report.report.deleted.map((d) => d.digest));
    expect(deleted.has(exclusiveDigest)).toBe(true);
    expect(report.freedBytes).toBeGreaterThanOrEqual(exclusive.length);
    expect(await exists(blobOnDisk(root, exclusiveDigest))).toBe(false);
    expected['gc/app:new'] = fresh.digest;

    expect(await getManifestDigest(url, 'gc/app', 'new', admin)).toEqual({ status: 200, digest: fresh.digest });
    for (const b of fresh.blobs) expect(await getBlob(url, 'gc/app', b, admin)).toEqual({ status: 200, digest: b });
    for (const child of [amd, arm]) {
      expect(deleted.has(child.digest)).toBe(false);
      expect(await getManifestDigest(url, 'gc/multi', child.digest, admin)).toEqual({
        status: 200,
        digest: child.digest,
      });
      for (const b of child.blobs) expect(await getBlob(url, 'gc/multi', b, admin)).toEqual({ status: 200, digest: b });
    }
    expect(deleted.has(referrer.digest)).toBe(false);
    const refs = (await (
      await fetch(`${url}/v2/gc/multi/referrers/${index.digest}`, { headers: authHeaders(admin) })
    ).json()) as { manifests: { digest: string }[] };
    expect(refs.manifests.map((m) => m.digest)).toEqual([referrer.digest]);
    expect(await getBlob(url, 'gc/multi', sbomBlob.digest, admin)).toEqual({ status: 200, digest: sbomBlob.digest });

    // The image GC just removed can be pushed again and pulled at once.
    const again = await pushImage(url, 'gc/app', 'old', [shared, exclusive], admin);
    expect(await getBlob(url, 'gc/app', exclusiveDigest, admin)).toEqual({ status: 200, digest: exclusiveDigest });
    expect(await getManifestDigest(url, 'gc/app', 'old', admin)).toEqual({ status: 200, digest: again.digest });
    expected['gc/app:old'] = again.digest;
    knownLayer = exclusive;
  }, 180_000);

  it('backup during a push, down --volumes, a corrupted archive refused with nothing written, restore, up: identical digests', async () => {
    const login = await docker(['login', registry, '-u', 'admin', '--password-stdin'], { input: admin.password });
    expect(login.exitCode, login.all).toBe(0);
    const target = `${registry}/e2e/multi:1`;
    const push = await docker(['push', target]);
    expect(push.exitCode, push.all).toBe(0);
    const pushed = await getManifestDigest(url, 'e2e/multi', '1', admin);
    expected['e2e/multi:1'] = pushed.digest as string;
    const imageId = (await docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim();

    let pushing = true;
    const during: Record<string, string> = {};
    const background = (async () => {
      for (let n = 0; pushing; n++) {
        const img = await pushImage(url, 'during/backup', `t${n}`, [randomBytes(200_000)], admin);
        during[`during/backup:t${n}`] = img.digest;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const archive = join(work, 'full.tar');
    const b = await regctl(['backup', '--dir', stack.dir, '--out', archive, '--json']);
    pushing = false;
    await background;
    expect(b.exitCode, b.all).toBe(0);
    const result = JSON.parse(b.stdout) as { file: string; bytes: number; fenceMs: number; repositories: number };
    expect(result.file).toBe(archive);
    expect(result.bytes).toBeGreaterThan(1_000_000);

    const down = await regctl(['down', '--dir', stack.dir, '--volumes', '--yes']);
    expect(down.exitCode, down.all).toBe(0);
    expect(await volumeExists()).toBe(false);

    // A flipped byte deep in the archive: refused, and the volume is not left behind.
    const raw = await readFile(archive);
    const damaged = join(work, 'damaged.tar');
    const copy = Buffer.from(raw);
    const at = raw.indexOf(knownLayer.subarray(0, 64)) + 4096;
    expect(at).toBeGreaterThan(4096);
    copy[at] = (copy[at]! + 1) % 256;
    await writeFile(damaged, copy);
    const bad = await regctl(['restore', damaged, '--dir', stack.dir]);
    expect(bad.exitCode, bad.all).toBe(11);
    expect(bad.stderr).toMatch(/damaged: docker\/registry\/v2\/blobs\/sha256\/\S+\/data does not match its sha256/);
    expect(bad.stderr).toContain('nothing was restored');
    expect(await volumeExists()).toBe(false);

    const restore = await regctl(['restore', archive, '--dir', stack.dir]);
    expect(restore.exitCode, restore.all).toBe(0);
    expect(restore.stdout).toMatch(/Restored \d+ files/);
    const again = await regctl(['restore', archive, '--dir', stack.dir]);
    expect(again.exitCode).toBe(6);
    expect(again.stderr).toContain('--force');

    const up = await regctl(['up', '--dir', stack.dir]);
    expect(up.exitCode, up.all).toBe(0);
    for (const [ref, digest] of Object.entries(expected)) {
      const [repo, tag] = ref.split(':') as [string, string];
      expect(await getManifestDigest(url, repo, tag, admin), ref).toEqual({ status: 200, digest });
    }
    // What was pushed while the backup ran is either fully there or absent, never torn.
    const restoredTags =
      (
        (await (await fetch(`${url}/v2/during/backup/tags/list`, { headers: authHeaders(admin) })).json()) as {
          tags: string[] | null;
        }
      ).tags ?? [];
    for (const tag of restoredTags)
      expect(await getManifestDigest(url, 'during/backup', tag, admin)).toEqual({
        status: 200,
        digest: during[`during/backup:${tag}`],
      });

    await docker(['rmi', '-f', target, 'regctl-e2e/day-two:1']);
    const pull = await docker(['pull', target]);
    expect(pull.exitCode, pull.all).toBe(0);
    expect((await docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim()).toBe(imageId);
    fullArchive = archive;
  }, 600_000);

  it('incremental backup: only new blobs, restored on an empty volume together with its base', async () => {
    const late = await pushImage(url, 'late/app', 'v1', [randomBytes(300_000)], admin);
    expected['late/app:v1'] = late.digest;
    const incr = join(work, 'incr.tar.gz');
    const b = await regctl(['backup', '--dir', stack.dir, '--out', incr, '--incremental-from', fullArchive, '--json']);
    expect(b.exitCode, b.all).toBe(0);
    const doc = JSON.parse(b.stdout) as { contentBytes: number; gzip: boolean; base: { file: string } };
    expect(doc.gzip).toBe(true);
    expect(doc.base.file).toBe(fullArchive);
    expect((await stat(incr)).size).toBeLessThan((await stat(fullArchive)).size / 2);

    expect((await regctl(['down', '--dir', stack.dir, '--volumes', '--yes'])).exitCode).toBe(0);
    const alone = await regctl(['restore', incr, '--dir', stack.dir]);
    expect(alone.exitCode).toBe(11);
    expect(alone.stderr).toContain('--base');
    expect(await volumeExists()).toBe(false);
    const restore = await regctl(['restore', incr, '--base', fullArchive, '--dir', stack.dir, '--json']);
    expect(restore.exitCode, restore.all).toBe(0);
    expect((await regctl(['up', '--dir', stack.dir])).exitCode).toBe(0);
    for (const [ref, digest] of Object.entries(expected)) {
      const [repo, tag] = ref.split(':') as [string, string];
      expect(await getManifestDigest(url, repo, tag, admin), ref).toEqual({ status: 200, digest });
    }
    for (const blob of late.blobs)
      expect(await getBlob(url, 'late/app', blob, admin)).toEqual({ status: 200, digest: blob });
  }, 600_000);
});
