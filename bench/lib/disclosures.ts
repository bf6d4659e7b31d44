import type { Sizes } from './sizes.js';

/**
 * What one side has in its favour in this comparison, or what the workload spares it, as the report says beside
 * the figures. Each item names the phases it touches; keep it true when a phase changes.
 */
/** Said only when the S3 phase ran. */
const S3_DISCLOSURE =
  '**Metadata in a local store (ours, S3 phase):** on S3 storage ours keeps its metadata (repositories, tags) in ' +
  'an embedded SQLite file on local disk by default, imported by listing the bucket at its first start (the S3 ' +
  'start row, untimed in the walks) and reused at later starts; its catalog pages then read nothing from S3, and ' +
  'its manifest GETs come from its in-memory manifest cache after the first. The ' +
  'reference (distribution v3) lists the bucket for every catalog page and reads the tag link and the manifest ' +
  'from S3 on every GET. Neither side checks credentials in the S3 phases. The replica comparison is ours alone, ' +
  'on PostgreSQL metadata on both sides of its loss.';

export function disclosures(sizes: Sizes, opts: { s3?: boolean } = {}): string[] {
  const [headline, ...others] = sizes.bcryptCosts;
  return [
    ...(opts.s3 ? [S3_DISCLOSURE] : []),
    `**Credentials (ours):** ours keeps verified credentials in memory and runs bcrypt once per credential; the ` +
      `reference (distribution 2.8.2) runs bcrypt on every request. Every ratio of an auth-bound figure (manifests, ` +
      `small blobs, chunked push, catalog pages, skopeo, docker) carries that. The manifest and small-blob phases are ` +
      `also reported with ours started with \`--no-credential-cache\` (bcrypt on every request, the "cache off" ` +
      `phases and table), at bcrypt cost ${headline ?? '?'} (what \`htpasswd -B\` writes; the targets)` +
      `${others.length > 0 ? ` and ${others.join(', ')}` : ''}.`,
    '**First request of each client (ours):** the blob phases send one authenticated `GET /v2/` before each timed ' +
      'step, and the catalog phase before its first walk, so our one bcrypt per credential is not in those figures; ' +
      'the reference pays bcrypt on every request inside them.',
    '**Warm manifest cache (ours):** GET and HEAD cells fetch one manifest over and over, which ours serves from its ' +
      'in-memory manifest cache after the first request; the reference reads it from storage each time (the page ' +
      'cache, with its in-memory blob descriptor cache).',
    '**Data already in memory (both):** every pull reads a blob pushed moments before, from the page cache on a ' +
      'machine with far more memory than the data, so pulls measure neither disk reads nor a cold cache; the catalog ' +
      'phases run on a volume written just before, its directories in the dentry cache. The skopeo source layout ' +
      "and the client's bodies come from memory or the page cache.",
    '**Start-up outside the catalog walks (ours):** ours builds its index of repositories before it answers, so its ' +
      'walks run on a ready index; the time to that is the "start on the seeded volume" row, and its memory is in ' +
      'the lifetime peak. The reference keeps no index: it lists storage on every catalog page.',
    "**Durability (different means, same promise):** both fsync a blob's data before acknowledging it, and both " +
      'make a manifest, its links and its tag durable before the 201. The reference fsyncs each of those files where ' +
      'it writes it (no directory fsync). Ours appends their content to its write journal and acknowledges once the ' +
      'journal is synced, one fdatasync shared by every write waiting at that moment (a group commit); the files ' +
      'themselves are synced later, a few seconds apart, by one `syncfs` of the filesystem, and a restart after a ' +
      'crash writes back from the journal whatever the disk lost. Ours therefore spends fewer syncs per manifest ' +
      'under concurrency, and its writes are atomic (temporary file and rename) where the reference rewrites files ' +
      'in place.',
    '**Background work switched off (the reference):** outside the docker phase the reference runs with upload ' +
      'purging disabled and access logs off; ours runs with its defaults and logs at level error (its upload purger runs at start and then hourly).',
    '**Process tuning (ours):** ours runs with the V8 and glibc malloc settings its container gets ' +
      "(src/registry/process-env.ts); the reference with Go's defaults.",
    "**Same machine, both sides:** the client, the ceilings' server and each registry share the same 2 cores; " +
      'phases alternate which registry goes first; both store on the same filesystem. In the docker phase both run ' +
      "in containers behind one Traefik container with the dev stack's configuration (access log on); ours is the " +
      "stack's registry container as `regctl up` runs it (log level info, free-space check), the reference its " +
      'binary on the same base image at its default log level (info, access log on).',
    "**Load client:** every figure against the reference comes from the bench's own `node:http` client, the same " +
      'for both sides. The replica comparison, ours alone, also fetches its manifest through a lean client ' +
      '(autocannon), which spends about half of a core at 25,000 GETs/s where the `node:http` client spends a whole ' +
      'one: with two replicas on two cores, a client that needs a core of its own takes it from the replicas. Its ' +
      'target is on the lean row; the `node:http` row is shown beside it.',
  ];
}
