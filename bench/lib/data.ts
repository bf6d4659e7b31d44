import { createHash, randomFillSync } from 'node:crypto';

/** Deterministic pseudo-random numbers (mulberry32) so every run pushes the same sizes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` sizes spread log-uniformly over [min, max], from a fixed seed. */
export function logUniformSizes(count: number, min: number, max: number, seed: number): number[] {
  const next = prng(seed);
  const lo = Math.log(min);
  const hi = Math.log(max);
  return Array.from({ length: count }, () => Math.round(Math.exp(lo + (hi - lo) * next())));
}

/**
 * A large blob streamed from memory: a random chunk repeated, its first chunk made unique by `id`, so two blobs
 * of one run never share a digest while the client spends no time producing bytes.
 */
export class LargeBlob {
  readonly chunks: Buffer[];
  readonly size: number;
  readonly digest: string;

  constructor(pattern: Buffer, count: number, id: string) {
    const first = Buffer.from(pattern);
    first.write(`${id}\n`.padEnd(64, ' '), 0, 'latin1');
    this.chunks = [first, ...Array.from({ length: count - 1 }, () => pattern)];
    this.size = pattern.length * count;
    const hash = createHash('sha256');
    for (const c of this.chunks) hash.update(c);
    this.digest = `sha256:${hash.digest('hex')}`;
  }
}

export function randomBuffer(size: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(size));
}

/** A small blob of `size` bytes: a slice of `pool` with a unique 32-byte prefix. */
export function smallBlob(pool: Buffer, size: number, id: string): Buffer {
  const out = Buffer.allocUnsafe(size);
  pool.copy(out, 0, 0, size);
  out.write(id.padEnd(32, ' ').slice(0, Math.min(32, size)), 0, 'latin1');
  return out;
}
