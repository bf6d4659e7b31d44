import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress, normalizeAddress, TrustedProxies } from '../../../src/common/client-address.js';

/** Only the two fields clientAddress reads; a socket cannot be made to come from 172.18.0.2 here. */
function req(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

describe('clientAddress', () => {
  it('without trusted proxies the peer is the client, whatever the headers say', () => {
    const spoof = { 'x-forwarded-for': '198.51.100.1', 'x-real-ip': '198.51.100.2', forwarded: 'for=198.51.100.3' };
    expect(clientAddress(req('::ffff:127.0.0.1', spoof), undefined)).toBe('127.0.0.1');
    expect(clientAddress(req('192.0.2.5', spoof), new TrustedProxies([]))).toBe('192.0.2.5');
  });

  it('an untrusted peer is the client even when the list is set', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    expect(clientAddress(req('192.0.2.5', { 'x-forwarded-for': '198.51.100.1' }), t)).toBe('192.0.2.5');
  });

  it('from a trusted peer: the right-most address that is not a trusted proxy', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '172.18.0.2', 'fd00::/8']);
    const xff = (v: string) => clientAddress(req('172.18.0.2', { 'x-forwarded-for': v }), t);
    expect(xff('198.51.100.9')).toBe('198.51.100.9');
    expect(xff('1.1.1.1, 198.51.100.9')).toBe('198.51.100.9');
    expect(xff('1.1.1.1, 198.51.100.9, 10.1.2.3')).toBe('198.51.100.9');
    expect(xff('198.51.100.9:5123')).toBe('198.51.100.9');
    expect(xff('[2001:db8::1]:80, fd00::5')).toBe('2001:db8::1');
    expect(xff('10.0.0.1, 10.0.0.2')).toBe('10.0.0.1');
    expect(clientAddress(req('172.18.0.2'), t)).toBe('172.18.0.2');
  });

  it('X-Forwarded-For outranks Forwarded, which outranks X-Real-IP', () => {
    const t = new TrustedProxies(['127.0.0.1']);
    const peer = '127.0.0.1';
    expect(
      clientAddress(
        req(peer, { 'x-forwarded-for': '192.0.2.1', forwarded: 'for=192.0.2.2', 'x-real-ip': '192.0.2.3' }),
        t,
      ),
    ).toBe('192.0.2.1');
    expect(clientAddress(req(peer, { forwarded: 'for=192.0.2.2;proto=https, for="[2001:db8::2]:1"' }), t)).toBe(
      '2001:db8::2',
    );
    expect(clientAddress(req(peer, { 'x-real-ip': '192.0.2.3' }), t)).toBe('192.0.2.3');
  });

  it('host names are trusted at the addresses they resolve to, and follow a change', async () => {
    let answer = ['172.18.0.7'];
    // An injected resolver: the address a proxy's name moves to cannot be changed in the machine's DNS here.
    const t = new TrustedProxies(['traefik'], { resolve: async () => answer });
    await t.start();
    try {
      const through = (peer: string) => clientAddress(req(peer, { 'x-forwarded-for': '198.51.100.4' }), t);
      expect(through('172.18.0.7')).toBe('198.51.100.4');
      expect(through('172.18.0.1')).toBe('172.18.0.1');
      answer = ['172.18.0.9'];
      await t.refresh();
      expect(through('172.18.0.9')).toBe('198.51.100.4');
      expect(through('172.18.0.7')).toBe('172.18.0.7');
    } finally {
      t.close();
    }
  });

  it('the system resolver: localhost is trusted at its loopback address', async () => {
    const t = new TrustedProxies(['localhost']);
    await t.start();
    try {
      expect(t.isTrusted('127.0.0.1') || t.isTrusted('::1')).toBe(true);
      expect(t.isTrusted('192.0.2.1')).toBe(false);
    } finally {
      t.close();
    }
  });
});

describe('TrustedProxies entries', () => {
  it('refuses what is neither an address, a CIDR block nor a host name', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'not a host', '1.2.3.4/x', '-bad'])
      expect(() => new TrustedProxies([bad]), bad).toThrow(/is not/);
    expect(TrustedProxies.parseList(' 10.0.0.0/8, traefik ,')).toEqual(['10.0.0.0/8', 'traefik']);
    expect(normalizeAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
  });
});
