/**
 * What the event sender sends for GC removals, and how a blob delete left pending by a crash is settled: in an
 * in-process registry with a real HTTP receiver on loopback. The crash is planted (a pending record written as
 * `withEvents` writes it, with the change made or not), as the sender test beside this one does.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { GcReport } from '../../../src/common/admin-api.js';
import { EVENTS_ROOT, newKey, type RegistryEvent } from '../../../src/registry/events/outbox.js';
import { TEMP_MARKER } from '../../../src/registry/storage/driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import { parseDigest } from '../../../src/registry/reference.js';
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

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

async function registryWithEndpoint(port: number, actions: string[]): Promise<TestRegistry> {
  const config = join(await mkdtemp(join(tmpdir(), 'regctl-events-fx-')), 'config.yaml');
  await writeFile(
    config,
    `events:\n  endpoints:\n    - { name: rx, url: "http://127.0.0.1:${port}/", actions: [${actions.join(', ')}] }\n`,
  );
  return startRegistry({ eventsTickMs: 100, policiesFile: config });
}

describe('GC events', () => {
  it('each manifest and each blob a GC removes is one gc event, and nothing the GC keeps is one', async () => {
    const rx = await startReceiver();
    reg = await registryWithEndpoint(rx.port, ['gc']);
    const kept = await pushImage(reg, 'gc/app', 'kept', { layers: ['shared layer', 'kept layer'] });
    const doomed = await pushImage(reg, 'gc/app', 'doomed', { layers: ['shared layer', 'doomed layer'] });
    expect((await reg.fetch(`/v2/gc/app/manifests/${doomed.digest}`, { method: 'DELETE' })).status).toBe(202);
    const res = await reg.fetch('/admin/v1/gc', {
      method: 'POST',
      body: JSON.stringify({ dryRun: false, graceSeconds: 0 }),
    });
    expect(res.status).toBe(200);
    const report = (await res.json()) as GcReport;
    // The manifest was deleted through the API (its revision link goes at once), so the GC sweeps its blobs; the
    // manifest itself has no revision left for the GC to remove.
    const removedBlobs = report.deleted.map((d) => d.digest).sort();
    expect(removedBlobs).toEqual([doomed.digest, doomed.config, doomed.layers[1] as string].sort());
    const expected = [
      ...report.manifestsRemoved.map((m) => `${m.repository} ${m.digest}`),
      ...report.deleted.map((d) => ` ${d.digest} ${d.size}`),
    ].sort();
    await until(() => rx.events.length >= expected.length);
    await new Promise((r) => setTimeout(r, 400)); // anything extra would arrive now
    expect(rx.events.every((e) => e.action === 'gc' && e.actor?.name === 'gc')).toBe(true);
    const seen = rx.events.map((e) =>
      e.target.repository === ''
        ? ` ${e.target.digest} ${e.target.length}`
        : `${e.target.repository} ${e.target.digest}`,
    );
    expect(seen.sort()).toEqual(expected);
    for (const d of [kept.digest, kept.config, ...kept.layers])
      expect(rx.events.some((e) => e.target.digest === d)).toBe(false);
  });

  it('an untagged manifest the GC removes (deleteUntagged) is a gc event naming its repository', async () => {
    const rx = await startReceiver();
    reg = await registryWithEndpoint(rx.port, ['gc']);
    const old = await pushImage(reg, 'gc/untagged', 'v1', { layers: ['old layer'] });
    const now = await pushImage(reg, 'gc/untagged', 'v1', { layers: ['new layer'] });
    const res = await reg.fetch('/admin/v1/gc', {
      method: 'POST',
      body: JSON.stringify({ dryRun: false, graceSeconds: 0, deleteUntagged: true }),
    });
    const report = (await res.json()) as GcReport;
    expect(report.manifestsRemoved).toEqual([{ repository: 'gc/untagged', digest: old.digest }]);
    await until(() => rx.events.length >= 1 + report.deleted.length);
    await new Promise((r) => setTimeout(r, 400));
    const manifestEvents = rx.events.filter((e) => e.target.repository !== '');
    expect(manifestEvents.map((e) => `${e.action} ${e.target.repository} ${e.target.digest}`)).toEqual([
      `gc gc/untagged ${old.digest}`,
    ]);
    expect(rx.events.filter((e) => e.target.repository === '').length).toBe(report.deleted.length);
    expect(rx.events.some((e) => e.target.digest === now.digest)).toBe(false);
  });
});

describe('the outbox', () => {
  it("a record's temporary file (a write in progress) is not taken for a record: its events go once", async () => {
    const rx = await startReceiver();
    reg = await registryWithEndpoint(rx.port, ['push']);
    const e: RegistryEvent = {
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      action: 'push',
      target: { repository: 'tmp/app', digest: `sha256:${'1'.repeat(64)}` },
      source: { addr: 'test', instanceID: 'test' },
    };
    const key = newKey();
    const record = JSON.stringify({ state: 'committed', createdAt: Date.now(), events: [e] });
    // As a putContent in progress leaves it: the new content in a temporary file beside the record. Both appear at
    // once (a directory renamed into place), so the sender never sees one without the other or half written.
    const staging = join(reg.dir, 'staging');
    await mkdir(staging);
    await writeFile(join(staging, `.${key}.json${TEMP_MARKER}0123456789abcdef`), record);
    await writeFile(join(staging, `${key}.json`), record);
    await mkdir(join(reg.data, EVENTS_ROOT), { recursive: true });
    await rename(staging, join(reg.data, EVENTS_ROOT, 'incoming'));
    await until(() => rx.events.length >= 1);
    await new Promise((r) => setTimeout(r, 600));
    expect(rx.events.map((x) => x.id)).toEqual([e.id]);
  });
});

describe('a blob delete left pending by a crash', () => {
  it('is sent when the link is gone, dropped when the blob is still linked', async () => {
    const rx = await startReceiver();
    reg = await registryWithEndpoint(rx.port, ['delete']);
    const img = await pushImage(reg, 'crash/blobs', 'v1', { layers: ['unlinked before the crash', 'still linked'] });
    const [gone, still] = img.layers as [string, string];
    // The crash came after the unlink in one record, before it in the other.
    const link = pathFor({ kind: 'layerLink', name: 'crash/blobs', digest: parseDigest(gone) });
    await rm(join(reg.data, link.slice(0, -'/link'.length)), { recursive: true });
    const blobEvent = (digest: string): RegistryEvent => ({
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      action: 'delete',
      target: {
        repository: 'crash/blobs',
        digest,
        mediaType: 'application/octet-stream',
        url: `/v2/crash/blobs/blobs/${digest}`,
      },
      source: { addr: 'test', instanceID: 'test' },
    });
    const sent = blobEvent(gone);
    const dropped = blobEvent(still);
    const dir = join(reg.data, EVENTS_ROOT, 'incoming');
    await mkdir(dir, { recursive: true });
    const createdAt = Date.now() - 60_000;
    for (const e of [sent, dropped])
      await writeFile(
        join(dir, `${newKey(createdAt)}.json`),
        JSON.stringify({ state: 'pending', createdAt, events: [e] }),
      );
    await until(() => rx.events.length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(rx.events.map((e) => e.id)).toEqual([sent.id]);
    expect(reg.logs.join('\n')).toMatch(/settled events a crash left pending/);
  });
});
