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

