import { describe, expect, it } from 'vitest';
import { UnitError, formatBytes, formatDuration, parseDuration, parseSize } from '../../../src/common/units.js';

describe('parseSize', () => {
  it('reads SI units as powers of 1000 and IEC units as powers of 1024', () => {
    expect(parseSize('1G')).toBe(1e9);
    expect(parseSize('1GB')).toBe(1e9);
    expect(parseSize('1gb')).toBe(1e9);
    expect(parseSize('1Gi')).toBe(1024 ** 3);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5k')).toBe(1500);
    expect(parseSize('10')).toBe(10);
    expect(parseSize(' 7 B ')).toBe(7);
    expect(parseSize('2.5TiB')).toBe(Math.floor(2.5 * 1024 ** 4));
  });

  it('refuses what is not a size, naming the examples', () => {
    for (const bad of ['', 'abc', '1 G B', '-1G', '1Q', '1m', '1e9', 'GiB']) {
      expect(() => parseSize(bad), bad).toThrow(UnitError);
    }
    expect(() => parseSize('1Q')).toThrow(/not a size \(examples: 512MiB/);
  });
});

describe('parseDuration', () => {
  it('reads Go-style sequences and days', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('1500us')).toBe(1.5);
  });

  it('refuses bare numbers and junk', () => {
    for (const bad of ['10', '', 'abc', '10 s', '1h-30m', 's', '1y']) {
      expect(() => parseDuration(bad), bad).toThrow(UnitError);
    }
    expect(() => parseDuration('10')).toThrow(/a bare number needs a unit/);
  });
});

describe('formatting', () => {
  it('prints sizes in IEC units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(15 * 1024 ** 2)).toBe('15.0 MiB');
    expect(formatBytes(150 * 1024 ** 3)).toBe('150 GiB');
  });

  it('prints durations in the form parseDuration reads back', () => {
    for (const ms of [0, 1000, 90_000, 5_400_000, 7 * 86_400_000 + 61_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
    expect(formatDuration(250)).toBe('250ms');
  });
});
