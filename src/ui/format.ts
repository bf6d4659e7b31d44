/** Formatting shared by every page: sizes, dates, digests. Pure, so the unit tests pin them down. */
import { formatBytes } from '../common/units.js';

/** A size as the whole project prints it (IEC units, `formatBytes` in src/common/units.ts); '—' when unknown or invalid. */
export function formatBytesOrDash(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null || !Number.isFinite(bytes) || bytes < 0) return '—';
  return formatBytes(bytes);
}

/** Exact byte count with thousands separators, for tooltips and the storage page. */
export function formatExactBytes(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes`;
}

/** "3 minutes ago", "in the future" for clock skew, "—" when unknown or invalid. */
export function formatRelative(date: Date | string | undefined | null, now: Date = new Date()): string {
  const d = toDate(date);
  if (!d) return '—';
  const seconds = Math.round((now.getTime() - d.getTime()) / 1000);
  if (seconds < -60) return 'in the future';
  if (seconds < 45) return 'just now';
  const steps: [number, string][] = [
    [60, 'minute'],
    [3600, 'hour'],
    [86400, 'day'],
    [86400 * 30, 'month'],
    [86400 * 365, 'year'],
  ];
  let chosen: [number, string] = steps[0]!;
  for (const step of steps) if (seconds >= step[0] * 0.95) chosen = step;
  const n = Math.max(1, Math.round(seconds / chosen[0]));
  return `${n} ${chosen[1]}${n === 1 ? '' : 's'} ago`;
}

/** ISO 8601 in UTC to the minute ("2026-11-29 19:31 UTC"), for titles and tables. */
export function formatDateTime(date: Date | string | undefined | null): string {
  const d = toDate(date);
  if (!d) return '—';
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function toDate(date: Date | string | undefined | null): Date | undefined {
  if (date === undefined || date === null || date === '') return undefined;
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return undefined;
  // Reproducible builds set created to the epoch; that is "unknown", not 1970.
  if (d.getTime() <= 0) return undefined;
  return d;
}

/** "sha256:0123456789ab" — the algorithm and the first 12 hex digits. */
export function shortDigest(digest: string): string {
  const [alg, hex] = digest.split(':');
  if (!hex) return digest.slice(0, 19);
  return `${alg}:${hex.slice(0, 12)}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
