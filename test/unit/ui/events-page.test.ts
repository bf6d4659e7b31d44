/**
 * The UI's delivery log (`/events`) over a real socket, against our registry with two event endpoints: a real
 * HTTP receiver that fails its first delivery, and a closed port. Administrators see one row per delivery with its
 * status, attempts and last error, and a link in the navigation; other users get neither.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createUiServer, type UiServer } from '../../../src/ui/server.js';
import { pushImage, startRegistry, USERS, type TestRegistry } from '../registry/helpers.js';

let reg: TestRegistry;
let ui: UiServer;
let base: string;
let receiver: Server;
let work: string;
const statuses: number[] = [];

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = statuses.length === 0 ? 503 : 204;
      statuses.push(status);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  work = await mkdtemp(join(tmpdir(), 'regctl-ui-events-'));
  const config = join(work, 'config.yaml');
  await writeFile(
    config,
    'events:\n  endpoints:\n' +
      `    - { name: hooks, url: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/" }\n` +
      `    - { name: dead, url: "http://127.0.0.1:${await closedPort()}/", timeout: 1s }\n`,
  );
  reg = await startRegistry({ eventsTickMs: 50, policiesFile: config });
  ui = createUiServer({ registry: reg.url, port: 0 });
  base = (await ui.listen()).url;
});
afterAll(async () => {
  await ui?.close();
  await reg?.stop();
  await new Promise<void>((r) => receiver.close(() => r()));
  await rm(work, { recursive: true, force: true });
});

async function signIn(user: string): Promise<string> {
  const res = await fetch(`${base}login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: user, password: USERS[user] as string, next: '' }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')?.split(';')[0] ?? '';
}

const get = (path: string, cookie: string) => fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });

/** The cells of the row of one delivery, by their data-testid. */
function row(page: string, endpoint: string): Record<string, string> | undefined {
  const m = new RegExp(`<tr data-event="[^"]+" data-endpoint="${endpoint}">([\\s\\S]*?)</tr>`).exec(page);
  if (!m) return undefined;
  const cells: Record<string, string> = {};
  for (const c of (m[1] as string).matchAll(/<td[^>]*data-testid="([a-z-]+)"[^>]*>([\s\S]*?)<\/td>/g))
    cells[c[1] as string] = (c[2] as string).replace(/<[^>]+>/g, '').trim();
  return cells;
}

describe('the delivery log page', () => {
  it('shows each delivery with its endpoint, status, attempts and last error, for an admin', async () => {
    await pushImage(reg, 'apps/web', 'v1');
    const end = Date.now() + 10_000;
    while (statuses.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(statuses).toEqual([503, 204]);
    const cookie = await signIn('admin');
    // The registry records an attempt once it has the receiver's answer (or the refused connection), a moment after
    // the receiver counted it: read the page until both endpoints' attempts are in it.
    let page = '';
    await vi.waitFor(
      async () => {
        const res = await get('events', cookie);
        expect(res.status).toBe(200);
        page = await res.text();
        expect(row(page, 'hooks')?.status).toBe('delivered HTTP 204');
        expect(row(page, 'dead')?.['last-error']).toMatch(/ECONNREFUSED/);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(page).toContain('<h1>Deliveries</h1>');
    expect(row(page, 'hooks')).toEqual({
      status: 'delivered HTTP 204',
      attempts: '2',
      'last-error': 'HTTP 503',
    });
    const dead = row(page, 'dead');
    expect(dead?.status).toBe('retrying no answer');
    expect(Number(dead?.attempts)).toBeGreaterThanOrEqual(1);
    expect(dead?.['last-error']).toMatch(/ECONNREFUSED/);
    expect(page).toMatch(/<strong>push<\/strong> apps\/web/);
    const repos = await (await get('repos', cookie)).text();
    expect(repos).toContain(`<a href="/events">Deliveries</a>`);
  });

  it('is for administrators only: 403 and no link for another user', async () => {
    const cookie = await signIn('viewer');
    const res = await get('events', cookie);
    expect(res.status).toBe(403);
    const page = await res.text();
    expect(page).toContain('The delivery log needs an administrator account on the registry.');
    expect(page).not.toContain('data-testid="deliveries"');
    expect(await (await get('repos', cookie)).text()).not.toContain('/events');
  });

  it('asks for a session', async () => {
    const res = await fetch(`${base}events`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Fevents');
  });
});
