/**
 * `regctl events` through the CLI (in-process, as the other command tests run it) against a real registry with an
 * event endpoint and a real HTTP receiver that fails its first delivery: the human output and `--json` show the
 * endpoint, its queue and each attempt as the receiver saw it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EventsStatus } from '../../../src/common/events.js';
import { pushImage, startFixture, type Fixture } from '../../helpers/day-two-fixture.js';
import { runCli } from '../stack/cli-harness.js';

let fx: Fixture;
let idle: Fixture;
let receiver: Server;
let work: string;
const received: { id: string; status: number }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = (JSON.parse(Buffer.concat(chunks).toString()) as { events: { id: string }[] }).events[0]?.id ?? '';
      const status = received.length === 0 ? 503 : 200;
      received.push({ id, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as AddressInfo).port;
  work = await mkdtemp(join(tmpdir(), 'regctl-events-cli-'));
  await writeFile(join(work, 'hook-secret'), 'not-shown\n', { mode: 0o600 });
  const policiesFile = join(work, 'config.yaml');
  await writeFile(
    policiesFile,
    `events:\n  endpoints:\n    - name: ci\n      url: http://127.0.0.1:${port}/hook\n` +
      '      secretFile: hook-secret\n      actions: [push, delete]\n      repos: "apps/**"\n',
  );
  fx = await startFixture({ policiesFile, eventsTickMs: 50 });
  idle = await startFixture();
});
afterAll(async () => {
  await fx.close();
  await idle.close();
  await new Promise<void>((r) => receiver.close(() => r()));
  await rm(work, { recursive: true, force: true });
});

const env = (f: Fixture): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, ...f.env });

describe('regctl events', () => {
  it('human and --json: the endpoint, its queue and each attempt, the failed one with its error', async () => {
    await pushImage(fx.url, 'apps/web', 'v1', [Buffer.from('layer')], fx.admin);
    await pushImage(fx.url, 'other/skip', 'v1', [Buffer.from('layer')], fx.admin); // outside the endpoint's repos: no event
    const end = Date.now() + 10_000;
    while (received.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(received.map((r) => r.status)).toEqual([503, 200]);
    const [failed, ok] = received as [(typeof received)[0], (typeof received)[0]];
    expect(failed.id).toBe(ok.id);
    // The registry records the second attempt once it has read the receiver's answer, a moment after the
    // receiver counted it: wait for the record before reading the output.
    await vi.waitFor(
      async () => {
        const status = await runCli(['events', '--json'], { cwd: fx.stackDir, env: env(fx) });
        const doc = JSON.parse(status.stdout) as EventsStatus;
        expect(doc.endpoints[0]?.attempts).toHaveLength(2);
        expect(doc.endpoints[0]?.queued).toBe(0);
      },
      { timeout: 10_000, interval: 100 },
    );

    const human = await runCli(['events', '--dir', fx.stackDir], { cwd: fx.root, env: env(fx) });
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split('\n').filter((l) => l.trim() !== '');
    const port = (receiver.address() as AddressInfo).port;
    expect(lines[0]).toBe(`  ci → http://127.0.0.1:${port}/hook (push, delete in apps/**, signed): 0 waiting`);
    expect(lines.slice(1)).toHaveLength(2);
    expect(lines[1]).toMatch(
      new RegExp(`^ {4}\\d{4}-\\d\\d-\\d\\dT\\S+ {2}push {6}apps/web {17}${failed.id} {2}failed: HTTP 503$`),
    );
    expect(lines[2]).toMatch(new RegExp(`^ {4}\\S+ {2}push {6}apps/web {17}${ok.id} {2}ok 200$`));
    expect(human.stdout).not.toContain('not-shown');

    const json = await runCli(['events', '--json', '--limit', '1'], { cwd: fx.stackDir, env: env(fx) });
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as EventsStatus & { registry: string };
    expect(doc.incoming).toBe(0);
    expect(doc.endpoints).toEqual([
      {
        name: 'ci',
        url: `http://127.0.0.1:${port}/hook`,
        actions: ['push', 'delete'],
        repos: ['apps/**'],
        signed: true,
        queued: 0,
        attempts: [
          { eventId: ok.id, action: 'push', repository: 'apps/web', at: expect.any(String), status: 200, ok: true },
        ],
      },
    ]);
  });

  it('says so when no endpoint is configured', async () => {
    const human = await runCli(['events'], { cwd: idle.stackDir, env: env(idle) });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^ {2}\S+ sends no events: add events.endpoints to regctl.yaml\n$/);
    const json = await runCli(['events', '--json'], { cwd: idle.stackDir, env: env(idle) });
    expect(JSON.parse(json.stdout)).toMatchObject({ endpoints: [], incoming: 0 });
  });

  it('a bad --limit is one line naming the flag, exit non-zero', async () => {
    const bad = await runCli(['events', '--limit', '0'], { cwd: fx.stackDir, env: env(fx) });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim().split('\n')[0]).toMatch(/--limit/);
  });
});
