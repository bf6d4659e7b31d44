/**
 * The crash harness's checks of a restarted server against the model: what was acknowledged is served intact,
 * acknowledged deletes stay deleted, listings hold only what the harness created. They read the server through
 * `RegistryReader` (the harness's RegistryClient, or a planted fake in the rule tests) and write violations to
 * the model.
 */
import { latestMayBeAbsent, type CrashModel, type ImageEntry } from './crash-model.js';
import { absenceExcuse } from './crash-rules.js';
import { sha256 } from './client.js';
import type { Rng } from './rng.js';

/** What the checks read from a registry. */
export interface RegistryReader {
  getBlob(repo: string, digest: string): Promise<{ status: number; body: Buffer }>;
  getManifest(repo: string, reference: string): Promise<{ status: number; body: Buffer; digest: string | null }>;
  /** `GET /v2/_catalog`. */
  catalog(): Promise<string[]>;
  /** `GET /v2/<repo>/tags/list`; undefined when it answers 404. */
  tags(repo: string): Promise<string[] | undefined>;
}

export interface VerifyOptions {
  /** Check every entry, not only the new ones and a sample of the others. */
  all: boolean;
  /** How many older entries to re-check (picked at random) on top of those never checked. */
  sampleOld: number;
  rng: Rng;
}

function pick<T extends { checkedAt: number }>(list: T[], o: VerifyOptions): T[] {
  if (o.all) return list;
  const fresh = list.filter((x) => x.checkedAt < 0);
  const old = list.filter((x) => x.checkedAt >= 0);
  const sample: T[] = [];
  for (let i = 0; i < Math.min(o.sampleOld, old.length); i++) sample.push(o.rng.pick(old));
  return [...fresh, ...sample];
}

async function verifyImage(r: RegistryReader, m: CrashModel, img: ImageEntry): Promise<void> {
  const byTag = await r.getManifest(img.repo, img.tag);
  const byDigest = await r.getManifest(img.repo, img.digest);
  if (img.deleteIssued === undefined) {
    // Referenced by a tag all along: no GC may take any of it.
    if (byTag.status !== 200 || sha256(byTag.body) !== img.digest)
      m.violation(`image ${img.repo}:${img.tag} → ${byTag.status} ${byTag.digest ?? ''}, expected ${img.digest}`);
    if (byDigest.status !== 200 || sha256(byDigest.body) !== img.digest)
      m.violation(`image ${img.repo}@${img.digest} → ${byDigest.status}`);
    for (const d of img.blobs) {
      const b = await r.getBlob(img.repo, d);
      if (b.status !== 200 || sha256(b.body) !== d)
        m.violation(
          `blob ${d} of ${img.repo}:${img.tag} → ${b.status}${b.status === 200 ? `, hashes to ${sha256(b.body)}` : ''}`,
        );
    }
  } else if (img.deleteAcked) {
    if (byTag.status !== 404)
      m.violation(`tag ${img.repo}:${img.tag} deleted (acknowledged) but answers ${byTag.status}`);
    if (img.deletedBy === 'digest' && !img.retagIssued && byDigest.status !== 404)
      m.violation(`manifest ${img.repo}@${img.digest} deleted (acknowledged) but answers ${byDigest.status}`);
  } else {
    for (const res of [byTag, byDigest])
      if (res.status === 200 && sha256(res.body) !== img.digest)
        m.violation(`image ${img.repo}:${img.tag} half-deleted and serving wrong content`);
  }
}

/** Checks images, standalone blobs and `latest` tags; returns how many model entries were checked. */
export async function verifyAcknowledged(r: RegistryReader, m: CrashModel, o: VerifyOptions): Promise<number> {
  let checked = 0;
  for (const img of pick(m.images, o)) {
    img.checkedAt = m.cycle;
    checked++;
    await verifyImage(r, m, img);
  }
  for (const b of pick(m.blobs, o)) {
    b.checkedAt = m.cycle;
    checked++;
    const got = await r.getBlob(b.repo, b.digest);
    if (got.status === 200 && sha256(got.body) !== b.digest)
      m.violation(`blob ${b.repo}@${b.digest} serves content hashing to ${sha256(got.body)}`);
    if (b.deleteAcked && got.status !== 404)
      m.violation(`blob ${b.repo}@${b.digest} deleted (acknowledged) but answers ${got.status}`);
    if ((b.deleteIssued === undefined && got.status !== 200) || b.deleteAnswered404) {
      const excuse = absenceExcuse(b, m.gcs, m.graceMs);
      const what =
        b.deleteIssued === undefined
          ? `acknowledged blob ${b.repo}@${b.digest} → ${got.status}`
          : `delete of blob ${b.repo}@${b.digest} answered 404`;
      if (excuse === undefined)
        m.violation(`${what}, and no GC accounts for it (upload started ${new Date(b.pushStartedAt).toISOString()})`);
      else b.goneBy ??= excuse;
    }
  }
  for (const [repo, state] of m.latest) {
    const got = await r.getManifest(repo, 'latest');
    if (got.status === 200 && !state.written.has(sha256(got.body)))
      m.violation(`${repo}:latest points at ${sha256(got.body)}, never written there`);
    if (got.status !== 200 && !latestMayBeAbsent(state))
      m.violation(`${repo}:latest acknowledged, no delete by digest since, but answers ${got.status}`);
  }
  return checked;
}

/** Listings: only repositories and tags the harness created, and every listed tag resolves to a stored manifest. */
export async function verifyCatalog(r: RegistryReader, m: CrashModel, repos: readonly string[]): Promise<void> {
  for (const repo of await r.catalog()) {
    if (!repos.includes(repo)) m.violation(`catalog lists unknown repository "${repo}"`);
    for (const tag of (await r.tags(repo)) ?? []) {
      if (!/^(img-\d+|latest)$/.test(tag)) m.violation(`${repo} lists unknown tag "${tag}"`);
      const got = await r.getManifest(repo, tag);
      if (got.status !== 200) m.violation(`tag ${repo}:${tag} is listed but its manifest answers ${got.status}`);
    }
  }
}
