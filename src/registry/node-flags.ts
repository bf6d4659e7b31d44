/**
 * Node.js flags the registry and UI servers run with (the stack's container commands put them before the
 * script; `npm run bench` starts `regctl serve` with them too, so that it measures what ships).
 *
 * `--max-semi-space-size=4` caps each half of V8's young generation at 4 MiB (the default grows to 16 MiB
 * on 64-bit). At thousands of requests per second a server allocates short-lived objects fast enough to grow
 * the young generation to its cap, and that space stays resident. A 4 MiB cap keeps the peak resident set
 * about 20 MiB lower under load (measured by the benchmark's manifest and skopeo phases), for more frequent
 * but equally cheap scavenges: their cost is the objects that survive, not the size of the space.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
