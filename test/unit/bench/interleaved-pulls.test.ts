import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HttpClient } from '../../../bench/lib/http.js';
import type { Figures } from '../../../bench/lib/phase.js';
import type { RunningServer } from '../../../bench/lib/servers.js';
import { interleavedPulls, rotation, type PullConfig } from '../../../bench/phases/interleaved-pulls.js';

const GiB = 1024 * 1024 * 1024;
const creds = { user: '', password: '' };

/**
 * The S3 phase and the replica comparison pull from the servers they compare interleaved, so that the machine's
 * drift falls on all of them alike. The servers here answer `GET /v2/` only; the pulls themselves are stand-ins that record their order
 * and give set figures, so what is checked is the order and the arithmetic.
 */
describe('the interleaved pulls of the S3 phase and the replica comparison', () => {
  const http: Server[] = [];
  const hits: string[] = [];
  beforeAll(async () => {
    for (const label of ['one', 'two', 'apart']) {
      const server = createServer((req, res) => {
        hits.push(`${label} ${req.url ?? ''}`);
        res.end('{}');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      http.push(server);
    }
  });
  afterAll(async () => {
    for (const s of http) await new Promise((resolve) => s.close(resolve));
  });

  it('moves the order on by one at every try', () => {
    expect([0, 1, 2, 3, 4].map((t) => rotation(3, t))).toEqual([
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
      [0, 1, 2],
      [1, 2, 0],
    ]);
  });

  const cpu = new Map<string, number>();
  const fake = (label: string, index: number): RunningServer =>
    ({
      name: 'ours',
      port: (http[index]?.address() as AddressInfo).port,
      pid: process.pid,
      command: label,
      client: () => new HttpClient('127.0.0.1', (http[index]?.address() as AddressInfo).port, undefined, 1),
      resetPeak: () => Promise.resolve(true),
      sample: () => Promise.resolve({ peakRssBytes: 0, rssBytes: 0, cpuSeconds: cpu.get(label) ?? 0 }),
      lifetimePeakBytes: () => Promise.resolve(0),
      stop: () => Promise.resolve(),
    }) satisfies RunningServer;

  it('pulls once from every configuration per try, and gives each its best, median and CPU', async () => {
    const configs: PullConfig[] = [
      { label: 'one', server: fake('one', 0), processes: 1 },
      { label: 'two', server: fake('two', 1), processes: 2 },
      { label: 'apart', server: fake('apart', 2), processes: 2 },
    ];
    const speeds: Record<string, number[]> = {
      one: [400, 420, 410, 390, 430],
      two: [300, 380, 350, 360, 340],
      apart: [500, 450, 470, 460, 480],
    };
    const order: string[] = [];
    const large = {
      pulledBytes: () => GiB / 2,
      pullOnce: (server: RunningServer): Promise<number> => {
        const label = server.command;
        const n = order.filter((l) => l === label).length;
        order.push(label);
        // each pull of `two` costs its processes 0.3 s, the others 0.2 s
        cpu.set(label, (cpu.get(label) ?? 0) + (label === 'two' ? 0.3 : 0.2));
        return Promise.resolve(speeds[label]?.[n] ?? Number.NaN);
      },
    };
    const peers = { postgres: () => Promise.resolve(process.pid), s3: () => undefined };
    const [one, two, apart] = (await interleavedPulls(configs, 5, large, { creds, peers })) as Figures[];

    expect(order).toEqual(
      ['one two apart', 'two apart one', 'apart one two', 'one two apart', 'two apart one'].flatMap((t) =>
        t.split(' '),
      ),
    );
    // one untimed request per process before the first pull
    expect(hits).toEqual(['one /v2/', 'two /v2/', 'two /v2/', 'apart /v2/', 'apart /v2/']);
    expect(one).toMatchObject({ pullMBps: 430, pullMedianMBps: 410 });
    expect(two).toMatchObject({ pullMBps: 380, pullMedianMBps: 350 });
    expect(apart).toMatchObject({ pullMBps: 500, pullMedianMBps: 470 });
    expect(one?.['cpu.pull.ours']).toBeCloseTo(1.0, 9);
    expect(two?.['cpu.pull.ours']).toBeCloseTo(1.5, 9);
    // 2.5 GiB pulled from each
    expect(one?.pullCpuPerGiB).toBeCloseTo(0.4, 9);
    expect(two?.pullCpuPerGiB).toBeCloseTo(0.6, 9);
    expect(one?.['cpu.pull.postgres']).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(one?.['cpu.pull.s3'])).toBe(true);
  });

  it('gives a server whose pull fails that error, leaves it out of the tries after, and goes on with the others', async () => {
    cpu.clear();
    const order: string[] = [];
    const large = {
      pulledBytes: () => GiB,
      pullOnce: (server: RunningServer): Promise<number> => {
        order.push(server.command);
        cpu.set(server.command, (cpu.get(server.command) ?? 0) + 0.5);
        const n = order.filter((l) => l === server.command).length;
        if (server.command === 'ref' && n === 2) return Promise.reject(new Error('GET blob: 404'));
        return Promise.resolve(100 * n);
      },
    };
    const configs: PullConfig[] = [
      { label: 'ours', server: fake('ours', 0), processes: 1 },
      { label: 'ref', server: fake('ref', 1), processes: 1 },
    ];
    const [ours, ref] = await interleavedPulls(configs, 4, large, { creds });
    expect(order).toEqual(['ours', 'ref', 'ref', 'ours', 'ours', 'ours']);
    expect(ref).toBeInstanceOf(Error);
    expect((ref as Error).message).toBe('GET blob: 404');
    // without peers, only the registry's CPU is read: 4 pulls of 0.5 s over 4 GiB
    expect(ours).toMatchObject({ pullMBps: 400, pullMedianMBps: 200 });
    expect((ours as Figures).pullCpuPerGiB).toBeCloseTo(0.5, 9);
    expect(Object.keys(ours as Figures).some((k) => k.startsWith('cpu.'))).toBe(false);
  });
});
