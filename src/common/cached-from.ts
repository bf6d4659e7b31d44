/**
 * How the registry tells clients that a repository belongs to its pull-through cache: the tags list of such a
 * repository carries this header with the upstream's URL (the usage report says the same in `cachedFrom`).
 */
export const CACHED_FROM_HEADER = 'Regctl-Cached-From';

/** The host a person reads for an upstream URL (`https://registry-1.docker.io` → `registry-1.docker.io`). */
export function upstreamHost(upstream: string): string {
  try {
    return new URL(upstream).host;
  } catch {
    return upstream;
  }
}
