/**
 * Sizes and durations, as people type them (flags, config files, environment) and as regctl prints them.
 * One meaning for the whole project:
 *
 * - Sizes: a number with an optional unit. SI units are powers of 1000 (`k`/`kB`, `M`/`MB`, `G`/`GB`, `T`/`TB`),
 *   IEC units powers of 1024 (`Ki`/`KiB`, `Mi`/`MiB`, `Gi`/`GiB`, `Ti`/`TiB`), as Kubernetes reads them; `B` or
 *   no unit is bytes. Case is ignored except that `m` alone is refused (milli makes no sense for bytes).
 *   Printed sizes use IEC units (`1.5 GiB`).
 * - Durations: one or more number-unit pairs, Go style (`500ms`, `90s`, `10m`, `1h30m`), plus `d` for days and
 *   `ns`/`us`/`µs` so that Go durations from Traefik's config read too. A bare number is refused, except `0`,
 *   so that `10` is never silently seconds or milliseconds.
 *
 * The parsers throw `UnitError` (a plain Error subclass) whose message says what was expected; callers wrap it
 * in their own error type with the setting's name.
 */

export class UnitError extends Error {
  override name = 'UnitError';
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Bytes, rounded down to a whole byte. Throws `UnitError` on anything else. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m?.[2] ?? '';
  const factor = SIZE_UNITS[unit.toLowerCase()];
  if (!m || factor === undefined || unit === 'm') {
    throw new UnitError(
      `"${text}" is not a size (examples: 512MiB, 2GiB, 10GB; k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024)`,
    );
  }
  return Math.floor(Number(m[1]) * factor);
}

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 1536 → "1.50 KiB", 10 → "10 B": three significant digits, IEC units. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < IEC.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${IEC[unit]}`;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds (fractions kept for sub-millisecond units). Throws `UnitError` on anything else. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (s === '' || matched !== s.length) {
    throw new UnitError(`"${text}" is not a duration (examples: 30s, 10m, 1h30m, 7d; a bare number needs a unit)`);
  }
  return total;
}

/** 90_000 → "1m30s"; 0 → "0s"; under a second → "250ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('') || '0s';
}
