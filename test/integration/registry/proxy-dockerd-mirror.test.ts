/**
 * DISRUPTIVE, and so alone in this file: points the machine's dockerd at a registry mirror. `regctl login --mirror`'s
 * own code (ops/mirror.ts) adds ours to /etc/docker/daemon.json's `registry-mirrors` and reloads dockerd with
 * SIGHUP; `docker info` then lists it, and `docker pull <name>:v1` by its Docker Hub name comes through ours,
 * whose `dockerMirror` entry proxies a local upstream standing in for Docker Hub (Debian's docker-registry with
 * htpasswd auth on loopback, the image pushed by crane). Nothing here reaches Docker Hub: the pull succeeds only
 * through the mirror. The daemon.json as it was (or its absence) is restored and dockerd reloaded in a finally.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_JSON } from '../../../src/ops/login.js';
import { applyMirror, DOCKER_HUB, dockerMirrors, mirrorUrl, planMirror } from '../../../src/ops/mirror.js';
import { createRegistryServer, type RegistryServer } from '../../../src/registry/server.js';
import { dockerAvailable, peerAvailable, peerPath } from '../../helpers/peers.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../../helpers/reference-registry.js';
import { run } from '../../helpers/run.js';
import { writeOciLayout } from './oci-layout.js';

const NAME = `regctl-mirror-test-${randomBytes(4).toString('hex')}`;
const enabled = dockerAvailable() && peerAvailable('crane');

let work: string;
let upstream: ReferenceRegistry;
let ours: RegistryServer;
let oursHost: string;
let digest: string;

const readDaemonJson = (): Promise<string | undefined> => readFile(DAEMON_JSON, 'utf8').catch(() => undefined);

async function waitForMirrors(want: (mirrors: string[]) => boolean): Promise<string[]> {
  let last: string[] | undefined;
  for (let i = 0; i < 50; i++) {
    last = await dockerMirrors();
    if (last && want(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`docker info lists registry mirrors ${JSON.stringify(last)}`);
}

/**
 * Puts daemon.json back as it was and dockerd's mirrors with it. dockerd reloads `registry-mirrors` only when the
 * file sets it (a file without the key, or no file, leaves the mirrors in force), so the original mirrors (none
 * if unset) are loaded first from a file that names them, then the original file is written back as it was.
 */
async function restore(original: string | undefined, url: string): Promise<void> {
  let settings: Record<string, unknown> = {};
  try {
    settings = original ? (JSON.parse(original) as Record<string, unknown>) : {};
  } catch {
    // a file dockerd could not read either: its mirrors were none
  }
  const mirrors = Array.isArray(settings['registry-mirrors']) ? settings['registry-mirrors'] : [];
  await writeFile(DAEMON_JSON, JSON.stringify({ ...settings, 'registry-mirrors': mirrors }, null, 2) + '\n');
  process.kill(Number((await readFile('/var/run/docker.pid', 'utf8')).trim()), 'SIGHUP');
  await waitForMirrors((m) => !m.some((x) => x.replace(/\/$/, '') === url));
  if (original === undefined) await rm(DAEMON_JSON, { force: true });
  else await writeFile(DAEMON_JSON, original);
}

describe.skipIf(!enabled)("dockerd's registry-mirrors through regctl login --mirror's code", () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regctl-dockerd-mirror-'));
    upstream = await startReferenceRegistry();
    const env = { DOCKER_CONFIG: join(work, 'crane') };
    await run(peerPath('crane'), ['auth', 'login', upstream.host, '-u', upstream.username, '-p', upstream.password], {
      env,
    });
    const image = await writeOciLayout(join(work, 'image'), { tag: 'v1' });
    digest = image.manifestDigest;
    await run(peerPath('crane'), ['push', image.dir, `${upstream.host}/library/${NAME}:v1`, '--insecure'], { env });
    const credentialsFile = join(work, 'upstream-credentials');
    await writeFile(credentialsFile, `${upstream.username}:${upstream.password}\n`, { mode: 0o600 });
    ours = createRegistryServer({
      port: 0,
      dataDir: join(work, 'data'),
      noAuth: true,
      log: () => undefined,
      proxies: [
        {
          prefix: 'hub',
          upstream: upstream.url,
          credentialsFile,
          ttlMs: 3600_000,
          mirrorOf: DOCKER_HUB,
          dockerMirror: true,
        },
      ],
    });
    oursHost = new URL((await ours.listen()).url).host;
  }, 120_000);

  afterAll(async () => {
    await run('docker', ['rmi', '-f', `${NAME}:v1`]).catch(() => undefined);
    await ours?.close();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('adds ours to registry-mirrors, reloads dockerd, and docker pulls a Docker Hub name through ours', async () => {
    const original = await readDaemonJson();
    const url = mirrorUrl(oursHost, true);
    try {
      const plan = await planMirror(url, DAEMON_JSON);
      expect(plan.unchanged).toBe(false);
      await applyMirror(plan);
      expect(await waitForMirrors((m) => m.some((x) => x.replace(/\/$/, '') === url))).toContain(`${url}/`);

      await run('docker', ['pull', `${NAME}:v1`]);
      const repoDigests = JSON.parse(
        await run('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', `${NAME}:v1`], {
          stdoutOnly: true,
        }),
      ) as string[];
      expect(repoDigests).toContain(`${NAME}@${digest}`);
      // It came through ours: cached under the prefix that answers dockerd's mirror requests.
      const tags = (await (await fetch(`http://${oursHost}/v2/hub/library/${NAME}/tags/list`)).json()) as {
        tags: string[];
      };
      expect(tags.tags).toEqual(['v1']);
    } finally {
      await restore(original, url);
    }
  }, 120_000);
});
