/**
 * V8 options the registry process runs with in the stack (before the script in the container's command) and in
 * `npm run bench`.
 *
 * Two loads set the registry's peak memory. Many small requests at once (64 manifest PUTs in flight, each waiting
 * on fsync): request objects outlive a scavenge, are promoted, and V8 lets its old generation grow to a multiple
 * of what survived the last full collection before it runs another one; Node's default growing factor (picked
 * from the collector's speed, up to 4×) left 20–30 MiB of garbage on the old generation at the peak, and a fixed
 * 1.3× holds it near its live size. And streams (uploads and downloads side by side): every chunk read from a
 * socket or a file is a Buffer whose memory is outside the heap and is freed only when a scavenge finds the
 * Buffer dead, so the larger the young generation, the more freed-but-unreclaimed chunk memory is resident
 * between scavenges. A 1 MiB semi-space (Node's default is 16) scavenges often enough to keep that small: a
 * skopeo copy of ten 30 MiB layers peaked about 20 MiB lower than with 4 MiB, and the server used no more CPU per
 * GiB pushed or pulled, nor per manifest PUT (`docs/benchmarks.md`, peak RSS). Options outside the list
 * `NODE_OPTIONS` accepts, so they go on the command line.
 */
export const REGISTRY_NODE_FLAGS: readonly string[] = Object.freeze([
  '--max-semi-space-size=1',
  '--heap-growing-percent=30',
]);

/**
 * V8 options of a registry on S3. Its pulls and pushes read every byte from a socket, each chunk of up to 64 KiB a
 * new Buffer whose memory V8 counts as external (the filesystem driver reads into buffers it reuses), so a stream
 * keeps tens of MiB of external memory coming and going between young-generation collections. With V8's own
 * growing factor the old generation's limit after a full collection was at times only about 12 MB above its live
 * size (21 of 33 MB), and then, in `--trace-incremental-marking`, marking started again and again ("allocation
 * limit") while the live size stayed put: processes started alike fell at random, for minutes at a time, into
 * 70–130 full collections per run and 2.0–2.9 s of CPU per GiB pulled (about 6 per GiB pushed in 16 MiB chunks),
 * against 2 full collections and 1.1–1.6 s/GiB. A fixed growing factor of 4 (`--heap-growing-percent=300`: a limit
 * 3× the live size above it) kept every process of every run in the fast mode, for the same peak RSS; a fixed
 * 4 MiB semi-space keeps the young generation's share of it small. A factor of 2 (about 25 MB of room) and a
 * larger young generation (16 MiB) were not enough (`docs/benchmarks.md`, S3).
 */
export const REGISTRY_S3_NODE_FLAGS: readonly string[] = Object.freeze([
  '--min-semi-space-size=4',
  '--max-semi-space-size=4',
  '--heap-growing-percent=300',
]);

/** The V8 options of a registry on the filesystem or on S3. */
export function registryNodeFlags(onS3: boolean): readonly string[] {
  return onS3 ? REGISTRY_S3_NODE_FLAGS : REGISTRY_NODE_FLAGS;
}

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
