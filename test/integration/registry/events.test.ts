/**
 * Webhooks end to end against the built `regctl serve --config FILE` as a child process, with a real HTTP receiver
 * in the test, all in one run: the receiver is down for the first minute (as the issue asks) and then fails 3
 * deliveries in 10 (30 %); the registry is killed with SIGKILL while pushes are in flight and restarted on the same
 * data directory, within that minute. Every event whose change the registry holds afterwards arrives, exactly once
 * after dedupe by event id, with a valid signature, and nothing else does. The sender's backoff is capped at
 * BACKOFF_CAP_MS (30 s): the first delivery must come within that cap (plus a tick) of the receiver's return,
 * which keeps the whole test near 100 s.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, EVENTS_MEDIA_TYPE, signBody } from '../../../src/common/events.js';
import { basicAuth } from '../../helpers/auth.js';
import { builtCliPresent, startRegistryProcess, type RegistryProcess } from '../../helpers/serve-process.js';

const SECRET = randomBytes(16).toString('hex');
const DOWN_MS = 60_000;
const FAILING = [1, 4, 7];

interface Received {
  id: string;
  key: string;
  signatureOk: boolean;
  contentType: string | undefined;
}

/**
 * The receiver: records every request it answers (2xx or not), fails the 2nd, 5th and 8th of every 10 (30 %). Not
 * the 1st: the sender's failure count still holds the outage's failures then, so a failure there would wait a whole
 * backoff cap (30 s) more, as designed, and push the test well past 100 s.
 */
class Receiver {
  server: Server | undefined;
  port = 0;
  requests = 0;
  /** When the first request arrived (ms since the epoch). */
  firstAt = 0;
  delivered: Received[] = [];
  failed = 0;

  async reservePort(): Promise<void> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    this.port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
  }

  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      void body(req).then((raw) => {
        const n = this.requests++;
        if (n === 0) this.firstAt = Date.now();
        if (FAILING.includes(n % 10)) {
          this.failed++;
          res.writeHead(500).end('planned failure');
          return;
        }
        const doc = JSON.parse(raw.toString()) as { events: EventDoc[] };
        for (const e of doc.events)
          this.delivered.push({
            id: e.id,
            key: eventKey(e),
            signatureOk: req.headers['x-regctl-signature'] === signBody(raw, SECRET),
            contentType: req.headers['content-type'],
          });
        expect(req.headers['x-regctl-event-id']).toBe(doc.events[0]?.id);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => this.server?.listen(this.port, '127.0.0.1', r));
  }

  async down(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
  }

  /** Delivered events, deduplicated by id. */
  unique(): Map<string, Received> {
    return new Map(this.delivered.map((d) => [d.id, d]));
  }
}

interface EventDoc {
  id: string;
  action: string;
  target: { repository: string; tag?: string; digest?: string };
}

const eventKey = (e: EventDoc): string =>
  `${e.action} ${e.target.repository}${e.target.tag ? `:${e.target.tag}` : ''}@${e.target.digest}`;

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let reg: RegistryProcess | undefined;
let work: string | undefined;
const receiver = new Receiver();
afterAll(async () => {
  await reg?.stop();
  await receiver.down();
  if (work) await rm(work, { recursive: true, force: true });
});

function client(r: RegistryProcess) {
  const auth = { authorization: basicAuth(r.username, r.password) };
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${r.url}${path}`, { ...init, headers: { ...auth, ...init.headers } });
  async function blob(repo: string, data: Buffer): Promise<string> {
    const digest = sha(data);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: new Uint8Array(data),
    });
    expect(res.status).toBe(201);
    return digest;
  }
  /** Pushes a one-layer image under `tag`; returns the manifest's digest. */
  async function push(repo: string, tag: string, seed: string): Promise<string> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const layer = Buffer.from(`layer ${seed}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: await blob(repo, config),
          size: config.length,
        },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await blob(repo, layer), size: layer.length },
        ],
      }),
    );
    const res = await call(`/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: new Uint8Array(manifest),
    });
    expect(res.status).toBe(201);
    return sha(manifest);
  }
  return { call, push };
}

describe.skipIf(!builtCliPresent())('events through a receiver that is down, then flaky, across a kill -9', () => {
  it('delivers every event exactly once after dedupe, signed', async () => {
    work = await mkdtemp(join(tmpdir(), 'regctl-events-it-'));
    const dataDir = join(work, 'data');
    await receiver.reservePort();
    await writeFile(join(work, 'hook-secret'), `${SECRET}\n`, { mode: 0o600 });
    const config = join(work, 'config.yaml');
    await writeFile(
      config,
      `events:\n  endpoints:\n    - name: it\n      url: http://127.0.0.1:${receiver.port}/hook\n` +
        `      secretFile: hook-secret\n      timeout: 2s\n`,
    );
    const start = () => startRegistryProcess({ dataDir, args: ['--config', config] });
    const started = Date.now();
    reg = await start();
    let c = client(reg);
    const expected = new Set<string>();
    for (let i = 1; i <= 6; i++) expected.add(`push it/a:${i}@${await c.push('it/a', String(i), `a${i}`)}`);

    // Pushes in flight when the registry dies: each may or may not have happened.
    // Killed as soon as the first of them is acknowledged, so that the others are caught at every stage.
    const inflight = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({
      tag: String(i),
      p: c.push('it/b', String(i), `b${i}`).catch(() => ''),
    }));
    await Promise.race(inflight.map((f) => f.p));
    await reg.kill();
    const digests = await Promise.all(inflight.map((f) => f.p));
    reg = await start();
    c = client(reg);
    for (const [i, f] of inflight.entries()) {
      const head = await c.call(`/v2/it/b/manifests/${f.tag}`, { method: 'HEAD' });
      const held = head.status === 200 ? head.headers.get('docker-content-digest') : null;
      if (held) expected.add(`push it/b:${f.tag}@${held}`);
      if (digests[i] && !held) throw new Error(`it/b:${f.tag} was acknowledged but is gone after the restart`);
    }
    const acknowledged = digests.filter(Boolean).length;
    const held = [...expected].filter((k) => k.startsWith('push it/b:')).length;
    console.log(`killed with 8 pushes in flight: ${acknowledged} acknowledged, ${held} held after the restart`);
    expect(acknowledged).toBeGreaterThan(0);

    const old1 = [...expected].find((k) => k.startsWith('push it/a:1@'))?.split('@')[1] as string;
    const moved = await c.push('it/a', '1', 'a1-moved');
    expected.add(`push it/a:1@${moved}`).add(`tag-move it/a:1@${moved}`);
    const d2 = [...expected].find((k) => k.startsWith('push it/a:2@'))?.split('@')[1] as string;
    expect((await c.call('/v2/it/a/manifests/2', { method: 'DELETE' })).status).toBe(202);
    expected.add(`delete it/a:2@${d2}`);
    const d3 = [...expected].find((k) => k.startsWith('push it/a:3@'))?.split('@')[1] as string;
    expect((await c.call(`/v2/it/a/manifests/${d3}`, { method: 'DELETE' })).status).toBe(202);
    expected.add(`delete it/a@${d3}`).add(`delete it/a:3@${d3}`);
    expect(old1).not.toBe(moved);

    await new Promise((r) => setTimeout(r, Math.max(0, started + DOWN_MS - Date.now())));
    expect(receiver.requests).toBe(0);
    await receiver.up();
    const upAt = Date.now();
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && receiver.unique().size < expected.size)
      await new Promise((r) => setTimeout(r, 500));
    await new Promise((r) => setTimeout(r, 3000)); // anything extra would arrive now

    const unique = [...receiver.unique().values()];
    expect(unique.map((u) => u.key).sort()).toEqual([...expected].sort());
    expect(new Set(unique.map((u) => u.key)).size).toBe(unique.length);
    for (const d of receiver.delivered) {
      expect(d.signatureOk, d.key).toBe(true);
      expect(d.contentType).toBe(EVENTS_MEDIA_TYPE);
    }
    expect(receiver.failed).toBeGreaterThan(0);
    // The failures are the planned 3 in 10 of what came after the outage.
    expect(receiver.failed).toBe([...Array(receiver.requests).keys()].filter((n) => FAILING.includes(n % 10)).length);
    const resumedAfter = receiver.firstAt - upAt;
    console.log(
      `receiver down ${Math.round((upAt - started) / 1000)} s; first delivery ${resumedAfter} ms after it came back; ` +
        `${receiver.requests} requests (${receiver.failed} failed on purpose) for ${expected.size} events; ` +
        `${Math.round((Date.now() - started) / 1000)} s in all`,
    );
    expect(upAt - started).toBeGreaterThanOrEqual(DOWN_MS);
    expect(resumedAfter).toBeLessThanOrEqual(BACKOFF_CAP_MS + 2000);

    const settled = reg
      .output()
      .split('\n')
      .filter((l) => l.includes('a crash left pending'));
    console.log(`pending records settled after the restart: ${settled.join(' | ') || 'none'}`);

    const status = (await (await c.call('/admin/v1/events?limit=50')).json()) as {
      endpoints: { name: string; queued: number; attempts: { ok: boolean; error?: string }[] }[];
      incoming: number;
    };
    expect(status.incoming).toBe(0);
    expect(status.endpoints[0]?.queued).toBe(0);
    const errors = status.endpoints[0]?.attempts.filter((a) => !a.ok).map((a) => a.error) ?? [];
    expect(errors).toContain('HTTP 500');
    expect(errors.some((e) => /ECONNREFUSED/.test(e ?? ''))).toBe(true);
  }, 240_000);
});
