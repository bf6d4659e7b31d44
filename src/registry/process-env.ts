/**
 * V8 options the registry process runs with in the stack (before the script in the container's command) and in
 * `npm run bench`.
 *
 * The load that sets the registry's peak memory is many small requests at once (64 manifest PUTs in flight, each
 * waiting on fsync): request objects outlive a scavenge, are promoted, and V8 lets its old generation grow to
 * a multiple of what survived the last full collection before it runs another one. Node's defaults (16 MiB
 * semi-spaces, a growing factor picked from the collector's speed, up to 4×) left 20–30 MiB of garbage on the
 * old generation at the peak. A 4 MiB semi-space and a fixed 1.3× growing factor hold the heap near its live
 * size, at no measured cost in requests per second (`docs/benchmarks.md`, peak RSS). Options outside the list
 * `NODE_OPTIONS` accepts, so they go on the command line.
 */
export const REGISTRY_NODE_FLAGS: readonly string[] = Object.freeze([
  '--max-semi-space-size=4',
  '--heap-growing-percent=30',
]);

/**
 * Environment the registry process runs with in the stack (the registry container's `environment`), and in
 * `npm run bench`, so what is measured is what is deployed.
 *
 * glibc's malloc, by default, raises its mmap threshold each time a large block is freed, after which buffers of
 * up to 32 MiB come from the heap and stay resident once freed; and it keeps one arena per thread that ever
 * allocated (up to 8 per core). Under load the registry's malloc heap then holds freed socket, file and parser
 * buffers. A fixed threshold returns blocks of 256 KiB and more to the kernel when freed, two arenas bound the
 * fragmentation across libuv's worker threads, and a 1 MiB trim threshold gives back the heap's free top.
 * Measured in `docs/benchmarks.md` (peak RSS). Ignored by other C libraries (musl).
 */
export const REGISTRY_PROCESS_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '262144',
  MALLOC_TRIM_THRESHOLD_: '1048576',
});
