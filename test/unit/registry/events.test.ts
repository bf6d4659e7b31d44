/**
 * The event sender inside an in-process registry with a real HTTP receiver on loopback: records a crash left
 * pending are settled against the index, and targets are checked again after DNS. DNS is the one thing replaced
 * (a resolver passed to `deliver`): no name here resolves to a link-local address.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEvents, type EventEndpoint } from '../../../src/common/events.js';
import { deliver, TargetRefusedError, type Resolver } from '../../../src/registry/events/deliver.js';
import { PolicyFileError, PolicyHolder } from '../../../src/registry/policy/holder.js';
import { EVENTS_ROOT, newKey, type RegistryEvent } from '../../../src/registry/events/outbox.js';
import { FsDriver } from '../../../src/registry/storage/fs-driver.js';
import { pushImage, startRegistry, type TestRegistry } from './helpers.js';

let receiver: Server | undefined;
let reg: TestRegistry | undefined;
afterEach(async () => {
  await reg?.stop();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  reg = undefined;
  receiver = undefined;
});

async function startReceiver(): Promise<{ port: number; events: RegistryEvent[] }> {
  const events: RegistryEvent[] = [];
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      events.push(...(JSON.parse(Buffer.concat(chunks).toString()) as { events: RegistryEvent[] }).events);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver?.listen(0, '127.0.0.1', r));
  return { port: (receiver.address() as AddressInfo).port, events };
}

const event = (target: RegistryEvent['target'], action: RegistryEvent['action'] = 'push'): RegistryEvent => ({
  id: randomUUID(),
  timestamp: new Date().toISOString(),
  action,
  target,
  source: { addr: 'test', instanceID: 'test' },
});

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

describe('event sender', () => {
  it('settles pending records: delivers what the index holds, drops what it does not', async () => {
    const rx = await startReceiver();
    const config = join(await mkdtemp(join(tmpdir(), 'regctl-events-')), 'config.yaml');
    await writeFile(config, `events:\n  endpoints:\n    - { name: rx, url: "http://127.0.0.1:${rx.port}/" }\n`);
    reg = await startRegistry({ eventsTickMs: 100, policiesFile: config });
    const img = await pushImage(reg, 'apps/web', 'v1');
    const moved = await pushImage(reg, 'apps/web', 'v1', { layers: ['other'] });
    expect((await reg.fetch('/v2/apps/web/manifests/v1', { method: 'DELETE' })).status).toBe(202);
    const held = event({ repository: 'apps/web', digest: img.digest });
    const absent = event({ repository: 'apps/web', digest: `sha256:${'0'.repeat(64)}`, tag: 'ghost' });
    const dir = join(reg.data, EVENTS_ROOT, 'incoming');
    await mkdir(dir, { recursive: true });
    const createdAt = Date.now() - 60_000;
    await writeFile(
      join(dir, `${newKey(createdAt)}.json`),
      JSON.stringify({ state: 'pending', createdAt, events: [held, absent] }),
    );
    await until(() => rx.events.some((e) => e.id === held.id) && rx.events.length >= 5);
    await new Promise((r) => setTimeout(r, 500));
    const seen = rx.events.map((e) => `${e.action} ${e.target.tag ?? ''} ${e.target.digest}`);
    // Sorted: the planted record's key is a minute old, so where it lands in the order depends on the ticks.
    expect(seen.sort()).toEqual(
      [
        `push v1 ${img.digest}`,
        `push v1 ${moved.digest}`,
        `tag-move v1 ${moved.digest}`,
        `delete v1 ${moved.digest}`,
        `push  ${img.digest}`,
      ].sort(),
    );
    expect(rx.events.find((e) => e.action === 'tag-move')?.target.previousDigest).toBe(img.digest);
    expect(rx.events.some((e) => e.id === absent.id)).toBe(false);
    const status = (await (await reg.fetch('/admin/v1/events')).json()) as {
      endpoints: { name: string; queued: number; attempts: { ok: boolean }[] }[];
      incoming: number;
    };
    expect(status.incoming).toBe(0);
    expect(status.endpoints.map((e) => [e.name, e.queued, e.attempts.length])).toEqual([['rx', 0, 5]]);
  });
});

describe('pull and retention events', () => {
  it('a pull, and each tag and manifest retention removes, reach an endpoint that asks for them', async () => {
    const rx = await startReceiver();
    const config = join(await mkdtemp(join(tmpdir(), 'regctl-events-')), 'config.yaml');
    await writeFile(
      config,
      'policies:\n  retention:\n    rules: [ { repos: "ci/**", keepLast: 1 } ]\n' +
        `events:\n  endpoints:\n    - { name: rx, url: "http://127.0.0.1:${rx.port}/", actions: [pull, retention] }\n`,
    );
    reg = await startRegistry({ eventsTickMs: 100, policiesFile: config });
    const old = await pushImage(reg, 'ci/app', 'old');
    await new Promise((r) => setTimeout(r, 20));
    const kept = await pushImage(reg, 'ci/app', 'new');
    expect((await reg.fetch('/v2/ci/app/manifests/new')).status).toBe(200);
    expect((await reg.fetch('/v2/ci/app/manifests/new', { method: 'HEAD' })).status).toBe(200);
    const run = await reg.fetch('/admin/v1/retention', { method: 'POST', body: JSON.stringify({ dryRun: false }) });
    expect(run.status).toBe(200);
    await until(() => rx.events.length >= 3);
    await new Promise((r) => setTimeout(r, 500));
    expect(rx.events.map((e) => `${e.action} ${e.target.tag ?? '-'} ${e.target.digest}`).sort()).toEqual(
      [`pull new ${kept.digest}`, `retention - ${old.digest}`, `retention old ${old.digest}`].sort(),
    );
  });
});

describe('deliver', () => {
  const endpoint = (url: string, allowPrivate = false): EventEndpoint => {
    const parsed = parseEvents({ endpoints: [{ name: 'x', url, allowPrivate, timeout: '2s' }] });
    const e = parsed.events?.endpoints[0];
    if (!e) throw new Error(JSON.stringify(parsed.problems));
    return e;
  };
  const resolvingTo = (address: string): Resolver =>
    ((_host: string, _opts: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) =>
      cb(null, [{ address, family: address.includes(':') ? 6 : 4 }])) as unknown as Resolver;

  it('refuses a name that resolves to a link-local or metadata address, after DNS', async () => {
    const rx = await startReceiver();
    const e = event({ repository: 'r', digest: 'sha256:00' });
    const url = `http://hooks.test:${rx.port}/`;
    for (const address of ['169.254.169.254', 'fe80::1', 'fd00:ec2::254'])
      await expect(deliver(endpoint(url), undefined, e, resolvingTo(address))).rejects.toThrow(TargetRefusedError);
    expect(rx.events).toEqual([]);
    expect(await deliver(endpoint(url), undefined, e, resolvingTo('127.0.0.1'))).toBe(204);
    expect(rx.events.map((x) => x.id)).toEqual([e.id]);
  });

  it('refuses a literal link-local target unless allowPrivate, even if the config was not checked', async () => {
    const e = event({ repository: 'r' });
    const bad = { ...endpoint('http://10.0.0.1/'), url: new URL('http://169.254.169.254/latest') };
    await expect(deliver(bad, undefined, e)).rejects.toThrow(/link-local/);
  });
});

describe('events: in the config file', () => {
  it('a mistake in events: keeps the policies and endpoints in force; a missing secret file is one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regctl-events-cfg-'));
    const file = join(dir, 'config.yaml');
    const good = 'policies:\n  immutableTags: [ { repos: "a/**", tags: "v*" } ]\n';
    await writeFile(join(dir, 'secret'), 's3cret\n', { mode: 0o600 });
    await writeFile(
      file,
      `${good}events:\n  endpoints: [ { name: x, url: "http://h.example/", secretFile: secret } ]\n`,
    );
    const logs: string[] = [];
    const holder = new PolicyHolder(file, (_level, msg, fields) => logs.push(`${msg} ${JSON.stringify(fields)}`));
    await holder.load();
    expect(holder.events.secrets.get('x')?.toString()).toBe('s3cret');
    await writeFile(
      file,
      'policies:\n  immutableTags: []\nevents:\n  endpoints: [ { name: y, url: "http://h.example/", secretFile: nope } ]\n',
    );
    const err = await holder.reload().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PolicyFileError);
    expect((err as PolicyFileError).lines).toEqual(['events.endpoints[0].secretFile: cannot read nope (ENOENT)']);
    expect(holder.current.immutableTags).toHaveLength(1);
    expect(holder.events.events.endpoints.map((e) => e.name)).toEqual(['x']);
    expect(logs.join('\n')).not.toContain('s3cret');
  });
});

describe('without endpoints', () => {
  it('the sender looks at the outbox once, not at every tick, and a push records nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regctl-events-idle-'));
    const inner = new FsDriver(join(dir, 'data'));
    const outboxLists: string[] = [];
    const driver = Object.create(inner) as FsDriver;
    driver.list = (path: string) => {
      if (path.startsWith(EVENTS_ROOT)) outboxLists.push(path);
      return inner.list(path);
    };
    reg = await startRegistry({ eventsTickMs: 20, driver });
    await pushImage(reg, 'idle/app', 'v1');
    await new Promise((r) => setTimeout(r, 400));
    // About 20 ticks went by: the outbox was listed at the first, never after.
    expect(outboxLists.length).toBeLessThanOrEqual(1);
    await expect(readdir(join(dir, 'data', EVENTS_ROOT))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
