import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryApp } from '../../../src/registry/app.js';
import { openSqliteStore } from '../../../src/registry/metadata/sqlite-store.js';
import type { MetadataStore } from '../../../src/registry/metadata/store.js';
import { parseDigest, type Digest } from '../../../src/registry/reference.js';
import type { StorageDriver } from '../../../src/registry/storage/driver.js';
import { MemoryDriver } from '../../../src/registry/storage/memory-driver.js';
import { pathFor } from '../../../src/registry/storage/paths.js';
import type { RegistryStore } from '../../../src/registry/storage/store.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export const digestOf = (b: Buffer | string): Digest =>
  parseDigest(`sha256:${createHash('sha256').update(b).digest('hex')}`);

/** Storage calls a start-up makes, by kind; `reads` sums what reads or lists storage. */
export interface CountingDriver {
  driver: StorageDriver;
  counts: Record<string, number>;
  reads(): number;
  reset(): void;
}

/** Wraps a driver to count its calls, and to throw once where `failOn` says (a simulated crash). */
export function countingDriver(
  inner: StorageDriver,
  failOn?: { method: 'putContent' | 'delete' | 'list'; path: (p: string) => boolean },
): CountingDriver {
  const counts: Record<string, number> = {};
  const driver = Object.create(inner) as StorageDriver;
  let failed = false;
  for (const m of ['getContent', 'putContent', 'reader', 'stat', 'list', 'move', 'delete'] as const) {
    const original = (inner[m] as (...a: unknown[]) => Promise<unknown>).bind(inner);
    (driver as unknown as Record<string, unknown>)[m] = async (...args: unknown[]) => {
      counts[m] = (counts[m] ?? 0) + 1;
      if (!failed && failOn?.method === m && failOn.path(args[0] as string)) {
        failed = true;
        throw new Error(`simulated crash before ${m} ${String(args[0])}`);
      }
      return original(...args);
    };
  }
  return {
    driver,
    counts,
    reads: () => (counts.getContent ?? 0) + (counts.reader ?? 0) + (counts.stat ?? 0) + (counts.list ?? 0),
    /** Clears the counts and arms the failure again. */
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
      failed = false;
    },
  };
}

/** The store with `method` throwing once (a crash between storage and metadata). */
export function failingOnce<T extends object>(target: T, method: keyof T): T {
  let failed = false;
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (prop !== method || failed || typeof v !== 'function') return v;
      return (..._args: unknown[]) => {
        failed = true;
        throw new Error(`simulated crash before ${String(prop)}`);
      };
    },
  });
}

/** A data directory's worth of state that survives "restarts": storage in memory and a SQLite file. */
export class Volume {
  readonly storage = new MemoryDriver();
  private constructor(readonly dir: string) {}

  static async create(): Promise<Volume> {
    return new Volume(await mkdtemp(join(tmpdir(), 'regctl-meta-vol-')));
  }

  get sqlitePath(): string {
    return join(this.dir, 'metadata.sqlite');
  }

  /** Starts a registry app on this volume; `wrap` may replace the driver or the store. */
  async start(
    opts: {
      driver?: StorageDriver;
      wrapStore?: (s: MetadataStore) => MetadataStore;
      logs?: string[];
      /** Another volume's store file, as a store pointed at the wrong storage would be. */
      sqlitePath?: string;
    } = {},
  ): Promise<RegistryApp> {
    const app = new RegistryApp({
      driver: opts.driver ?? this.storage,
      auth: undefined,
      log: (level, msg, fields) => opts.logs?.push(JSON.stringify({ level, msg, ...fields })),
      openMetadata: async () => {
        const s = await openSqliteStore(opts.sqlitePath ?? this.sqlitePath);
        return opts.wrapStore ? opts.wrapStore(s) : s;
      },
    });
    await app.init();
    return app;
  }

  async stop(app: RegistryApp): Promise<void> {
    app.close();
    await app.maintenanceDone();
    await app.store.index.close();
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** Writes a blob into storage and links it into the repository, as a finished upload does. */
async function putLinkedBlob(store: RegistryStore, name: string, body: Buffer): Promise<Digest> {
  const d = digestOf(body);
  await store.driver.putContent(pathFor({ kind: 'blobData', digest: d }), body);
  await store.linked.link(name, d);
  return d;
}

/** An OCI image (config + one layer) pushed through the store under `tag`; `subject` makes it a referrer. */
export async function pushImage(
  store: RegistryStore,
  name: string,
  tag: string,
  subject?: { digest: string; size: number },
): Promise<Digest> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', name, tag }));
  const layer = Buffer.from(`layer of ${name}:${tag}`);
  const cd = await putLinkedBlob(store, name, config);
  const ld = await putLinkedBlob(store, name, layer);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd.value, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: ld.value, size: layer.length }],
  };
  if (subject) manifest.subject = { mediaType: OCI_MANIFEST, ...subject };
  const { digest } = await store.manifests.put(name, { tag }, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  return digest;
}
