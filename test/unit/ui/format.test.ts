import { describe, expect, it } from 'vitest';
import {
  formatBytesOrDash,
  formatDateTime,
  formatExactBytes,
  formatRelative,
  plural,
  shortDigest,
  toDate,
} from '../../../src/ui/format.js';

describe('formatBytesOrDash', () => {
  // IEC units with three significant digits, as everywhere in regctl.
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1000 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [12_345, '12.1 KiB'],
    [123_456, '121 KiB'],
    [5_500_000, '5.25 MiB'],
    [999_999_999, '954 MiB'],
    [1_000_000_000, '954 MiB'],
    [1024 ** 3, '1.00 GiB'],
    [3.2e15, '2.84 PiB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytesOrDash(bytes)).toBe(text);
  });

  it('shows a dash for unknown or invalid sizes', () => {
    expect(formatBytesOrDash(undefined)).toBe('—');
    expect(formatBytesOrDash(null)).toBe('—');
    expect(formatBytesOrDash(-1)).toBe('—');
    expect(formatBytesOrDash(Number.NaN)).toBe('—');
  });

  it('gives exact counts with separators', () => {
    expect(formatExactBytes(2_402_048)).toBe('2,402,048 bytes');
  });
});

describe('dates', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  it.each([
    ['2026-11-29T11:59:30Z', 'just now'],
    ['2026-11-29T11:58:00Z', '2 minutes ago'],
    ['2026-11-29T11:00:00Z', '1 hour ago'],
    ['2026-11-28T12:00:00Z', '1 day ago'],
    ['2026-11-02T09:12:00Z', '27 days ago'],
    ['2026-08-29T12:00:00Z', '3 months ago'],
    ['2024-11-29T12:00:00Z', '2 years ago'],
    ['2026-11-29T12:10:00Z', 'in the future'],
  ])('%s is "%s"', (date, text) => {
    expect(formatRelative(date, now)).toBe(text);
  });

  it('treats missing, invalid and epoch dates (reproducible builds) as unknown', () => {
    expect(formatRelative(undefined, now)).toBe('—');
    expect(formatRelative('not a date', now)).toBe('—');
    expect(formatRelative('1970-01-01T00:00:00Z', now)).toBe('—');
    expect(toDate('')).toBeUndefined();
    expect(formatDateTime(null)).toBe('—');
  });

  it('prints UTC to the minute', () => {
    expect(formatDateTime('2026-11-03T15:40:59.999Z')).toBe('2026-11-03 15:40 UTC');
    expect(formatDateTime(new Date('2026-11-03T17:40:00+02:00'))).toBe('2026-11-03 15:40 UTC');
  });
});

describe('small helpers', () => {
  it('shortens digests to 12 hex digits', () => {
    expect(shortDigest('sha256:5da039dd2c3f08589f3a85cb218ac037da51bffebfbfd9d61f7569e4294eed03')).toBe(
      'sha256:5da039dd2c3f',
    );
  });
  it('pluralises with separators', () => {
    expect(plural(1, 'tag')).toBe('1 tag');
    expect(plural(2000, 'repository', 'repositories')).toBe('2,000 repositories');
  });
});
