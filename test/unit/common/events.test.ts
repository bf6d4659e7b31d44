import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BACKOFF_CAP_MS,
  backoffMs,
  forbiddenAddress,
  forbiddenHost,
  parseEvents,
  signBody,
  type EventsProblem,
} from '../../../src/common/events.js';

const lines = (problems: EventsProblem[]): string[] => problems.map((p) => `${p.path}: ${p.message}`);

describe('parseEvents', () => {
  it('reads endpoints with their defaults and filters', () => {
    const r = parseEvents({
      endpoints: [
        {
          name: 'ci',
          url: 'https://hooks.example.com/x',
          secretFile: '/s',
          actions: ['push', 'pull'],
          repos: 'apps/**',
        },
        { name: 'all', url: 'http://10.0.0.5:8080/', timeout: '2s' },
      ],
    });
    expect(r.problems).toEqual([]);
    const [ci, all] = r.events?.endpoints ?? [];
    expect(ci?.name).toBe('ci');
    expect([...(ci?.actions ?? [])]).toEqual(['push', 'pull']);
    expect(ci?.repos?.test('apps/web')).toBe(true);
    expect(ci?.repos?.test('other/web')).toBe(false);
    expect(ci?.timeoutMs).toBe(5000);
    expect(ci?.secretFile).toBe('/s');
    expect([...(all?.actions ?? [])].sort()).toEqual(['delete', 'gc', 'push', 'retention', 'tag-move']);
    expect(all?.timeoutMs).toBe(2000);
    expect(all?.repos).toBeUndefined();
  });

  it('absent events: no endpoints', () => {
    expect(parseEvents(undefined).events?.endpoints).toEqual([]);
  });

  it('gives one line per mistake, naming the field, and no endpoints at all', () => {
    const r = parseEvents({
      endpoints: [
        { name: 'ok', url: 'https://a.example/' },
        { name: 'Bad Name', url: 'ftp://x/', actions: ['push', 'explode'], timeout: '10', extra: 1 },
        { name: 'ok', url: 'https://b.example/' },
        { name: 'meta', url: 'http://169.254.169.254/latest', repos: [] },
        'not a mapping',
      ],
      other: true,
    });
    expect(r.events).toBeUndefined();
    expect(lines(r.problems)).toEqual([
      'events.other: unknown field (known: endpoints)',
      'events.endpoints[1].extra: unknown field (known: name, url, secretFile, actions, repos, timeout, allowPrivate)',
      'events.endpoints[1].name: must be a short name: lower-case letters, digits, ".", "_" or "-" (e.g. "ci")',
      'events.endpoints[1].url: "ftp://x/" is not an http:// or https:// URL',
      'events.endpoints[1].actions[1]: "explode" is not an action (known: push, delete, tag-move, retention, gc, pull)',
      'events.endpoints[1].timeout: "10" is not a duration between 100ms and 5m (e.g. 5s)',
      'events.endpoints[2].name: "ok" is already the name of another endpoint',
      'events.endpoints[3].url: 169.254.169.254 is link-local (169.254.0.0/16, cloud metadata): refused unless allowPrivate: true',
      'events.endpoints[3].repos: must be a repository pattern such as "apps/**", or a list of them',
      'events.endpoints[4]: must be a mapping with name, url, secretFile, actions, repos, timeout, allowPrivate',
    ]);
  });

  it('allows a private target only with allowPrivate: true on that endpoint', () => {
    const url = 'http://[fe80::1]:9000/';
    expect(lines(parseEvents({ endpoints: [{ name: 'a', url }] }).problems)).toEqual([
      'events.endpoints[0].url: fe80::1 is link-local (fe80::/10): refused unless allowPrivate: true',
    ]);
    const r = parseEvents({ endpoints: [{ name: 'a', url, allowPrivate: true }] });
    expect(r.events?.endpoints[0]?.allowPrivate).toBe(true);
  });
});

describe('forbiddenAddress / forbiddenHost', () => {
  it('refuses link-local and cloud-metadata addresses in every spelling', () => {
    for (const a of [
      '169.254.169.254',
      '169.254.0.1',
      'fe80::1',
      'FEBF::ffff',
      '[fe80::1]',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      'fd00:ec2::254',
      'fd00:0ec2:0:0:0:0:0:254',
      '100.100.100.200',
      '192.0.0.192',
    ])
      expect(forbiddenAddress(a), a).toBeDefined();
    expect(forbiddenHost('metadata.google.internal')).toBeDefined();
    expect(forbiddenHost('METADATA.google.internal.')).toBeDefined();
  });

  it('lets ordinary addresses and names through', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '169.253.255.255', '169.255.0.1', 'fec0::1', '::1', '2001:db8::1'])
      expect(forbiddenAddress(a), a).toBeUndefined();
    expect(forbiddenHost('hooks.example.com')).toBeUndefined();
    expect(forbiddenHost('localhost')).toBeUndefined();
  });
});

describe('signBody', () => {
  it('is sha256= and the hex HMAC-SHA256 of the body with the secret', () => {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    expect(signBody('what do ya want for nothing?', 'Jefe')).toBe(
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    const body = Buffer.from('{"events":[]}');
    expect(signBody(body, 's1')).toBe(`sha256=${createHmac('sha256', 's1').update(body).digest('hex')}`);
    expect(signBody(body, 's1')).not.toBe(signBody(body, 's2'));
  });
});

describe('backoffMs', () => {
  it('doubles from the base up to the cap, spread by at most 20 %', () => {
    const mid = (): number => 0.5;
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 1000, 300_000, mid))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(backoffMs(9, 1000, 300_000, mid)).toBe(256_000);
    expect(backoffMs(10, 1000, 300_000, mid)).toBe(300_000);
    expect(backoffMs(1000, 1000, 300_000, mid)).toBe(300_000);
    expect(backoffMs(3, 1000, 300_000, () => 0)).toBe(3200);
    expect(backoffMs(3, 1000, 300_000, () => 0.999999)).toBe(4800);
    expect(backoffMs(20, 1000, 300_000, () => 0.999999)).toBe(300_000);
  });

  it('by default waits at most 30 s, so a receiver back from a long outage hears again within 30 s', () => {
    expect(BACKOFF_CAP_MS).toBe(30_000);
    for (const attempt of [6, 7, 10, 100])
      for (const r of [0, 0.5, 0.999999])
        expect(backoffMs(attempt, undefined, undefined, () => r)).toBeLessThanOrEqual(30_000);
    expect(backoffMs(100, undefined, undefined, () => 0.5)).toBe(30_000);
    expect(backoffMs(5, undefined, undefined, () => 0.5)).toBe(16_000);
  });
});
