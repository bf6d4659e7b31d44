import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { LargeBlob } from './data.js';
import { HttpClient, VerifyError, expectStatus } from './http.js';
import { timed } from './load.js';
import { tryCommand, which } from './machine.js';
import type { Ceiling } from './model.js';
import { mbPerSecond } from './stats.js';

const MiB = 1024 * 1024;

/** Disk write (with the final fsync) and direct read of `size` bytes in `dir`, with fio, else dd. */
async function diskCeilings(dir: string, size: number): Promise<Ceiling[]> {
  const file = join(dir, 'ceiling-disk.bin');
  const count = Math.round(size / MiB);
  const hasFio = (await which('fio')) !== undefined;
  const writeArgs = hasFio
    ? [
        'fio',
        [
          '--name=write',
          `--filename=${file}`,
          '--rw=write',
          '--bs=1M',
          `--size=${count}M`,
          '--ioengine=psync',
          '--end_fsync=1',
        ],
      ]
    : ['dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${count}`, 'conv=fdatasync']];
  const readArgs = hasFio
    ? [
        'fio',
        [
          '--name=read',
          `--filename=${file}`,
          '--rw=read',
          '--bs=1M',
          `--size=${count}M`,
          '--ioengine=psync',
          '--direct=1',
        ],
      ]
    : ['dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']];
  try {
    const w = await timed(() => tryCommand(writeArgs[0] as string, writeArgs[1] as string[]));
    const r = await timed(() => tryCommand(readArgs[0] as string, readArgs[1] as string[]));
    if (w.value === undefined || r.value === undefined) return [];
    const describe = (a: (string | string[])[]): string =>
      `${a[0] as string} ${(a[1] as string[]).join(' ')}`.replaceAll(dir, 'DATA');
    return [
      {
        id: 'disk.write',
        label: 'Disk write, sequential, 1 MiB blocks, fsync at end',
        unit: 'MB/s',
        value: mbPerSecond(size, w.seconds),
        method: describe(writeArgs),
      },
      {
        id: 'disk.read',
        label: 'Disk read, sequential, O_DIRECT (page cache bypassed)',
        unit: 'MB/s',
        value: mbPerSecond(size, r.seconds),
        method: describe(readArgs),
      },
    ];
  } finally {
    await rm(file, { force: true });
  }
}

/** How many runs a ceiling (and a figure held against one) is the best of. */
export const TRIES = 3;

/** The best of {@link TRIES} runs: a ceiling is what the machine can do, not what it did while busy. */
export async function best(run: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let i = 0; i < TRIES; i++) top = Math.max(top, await run());
  return top;
}

/** sha256 over `size` bytes in 16 MiB updates on one core (node:crypto, OpenSSL underneath). */
async function sha256Ceiling(blob: LargeBlob): Promise<Ceiling> {
  const value = await best(async () => {
    const t0 = performance.now();
    const hash = createHash('sha256');
    for (const c of blob.chunks) hash.update(c);
    hash.digest();
    return mbPerSecond(blob.size, (performance.now() - t0) / 1000);
  });
  return {
    id: 'sha256',
    label: 'sha256, one core',
    unit: 'MB/s',
    value,
    method: `node:crypto createHash("sha256"), 16 MiB updates, best of ${TRIES}`,
  };
}

async function startSink(buildDir: string, storeDir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(buildDir, 'sink-server.js'), storeDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', (line) => resolve(Number(line)));
    child.once('exit', (code) => reject(new Error(`sink server exited with ${String(code)}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A trivial Node server in another process with a client using the same code and buffers as the blob phases:
 * each call is one loopback transfer of `blob`, checked, as MB/s. Used for the ceilings table, and by the
 * large-blob phase between its own transfers, so that a figure is held against a ceiling of the same minutes.
 */
export class LoopbackProbe {
  private constructor(
    private readonly sink: { port: number; stop: () => Promise<void> },
    private readonly client: HttpClient,
    private readonly dir: string,
  ) {}

  static async start(buildDir: string, dir: string): Promise<LoopbackProbe> {
    const sink = await startSink(buildDir, dir);
    return new LoopbackProbe(sink, new HttpClient('127.0.0.1', sink.port, undefined, 1), dir);
  }

  /**
   * One PUT of `blob`: the server discards it, hashes it, or hashes it and stores it durably in a new file, as a
   * registry stores a new blob. The stored file is removed after the timed transfer. A file left in place would
   * keep its pages in the page cache, and the next write (the registry's push measured against this ceiling) would
   * have to fill pages the kernel has not used lately; on this VM such pages cost about ten times the kernel time
   * of recycled ones (`bench/notes.md`), while a ceiling that rewrote its own file got recycled pages every time.
   */
  async upload(mode: UploadMode, blob: LargeBlob): Promise<number> {
    const { value: res, seconds } = await timed(() => this.client.request('PUT', `/${mode}`, { body: blob.chunks }));
    if (mode === 'store') expectStatus(await this.client.request('POST', '/store/clear'), 204, 'POST /store/clear');
    expectStatus(res, 201, `PUT /${mode}`);
    const answer = JSON.parse(res.body.toString('utf8')) as { bytes: number; digest: string | null };
    if (answer.bytes !== blob.size) throw new VerifyError(`sink received ${answer.bytes} bytes of ${blob.size}`);
    if (mode !== 'discard' && answer.digest !== blob.digest) throw new VerifyError('sink hashed a different digest');
    return mbPerSecond(blob.size, seconds);
  }

  /** One GET of `size` bytes sent from memory, hashed by the client as the pull is. */
  async download(size: number): Promise<number> {
    const { value: res, seconds } = await timed(() =>
      this.client.request('GET', `/bytes?size=${size}`, { consume: 'hash' }),
    );
    expectStatus(res, 200, 'GET /bytes');
    if (res.bytes !== size) throw new VerifyError(`downloaded ${res.bytes} bytes of ${size}`);
    return mbPerSecond(size, seconds);
  }

  async stop(): Promise<void> {
    this.client.close();
    await this.sink.stop();
  }
}

type UploadMode = 'discard' | 'hash' | 'store';

const UPLOAD_LABELS: Record<UploadMode, string> = {
  discard: 'Loopback HTTP upload, server discards',
  hash: 'Loopback HTTP upload, server hashes (sha256)',
  store:
    'Loopback HTTP upload, server hashes and writes to the data disk (fdatasync every 64 MiB in the background), fsync before answering',
};

/**
 * Loopback HTTP: upload discarded, upload hashed by the server, upload hashed and stored durably in `dir` (the
 * least a registry does for a monolithic push), download hashed by the client (as the pull phase does).
 */
async function loopbackCeilings(buildDir: string, dir: string, blob: LargeBlob): Promise<Ceiling[]> {
  const probe = await LoopbackProbe.start(buildDir, dir);
  try {
    const out: Ceiling[] = [];
    for (const mode of ['discard', 'hash', 'store'] as const) {
      out.push({
        id: `loopback.upload.${mode}`,
        label: UPLOAD_LABELS[mode],
        unit: 'MB/s',
        value: await best(() => probe.upload(mode, blob)),
        method: `one PUT of ${blob.size / MiB} MiB from 16 MiB buffers to a Node http server in another process, best of ${TRIES}`,
      });
    }
    out.push({
      id: 'loopback.download.hash',
      label: 'Loopback HTTP download, client hashes (sha256)',
      unit: 'MB/s',
      value: await best(() => probe.download(blob.size)),
      method: `one GET of ${blob.size / MiB} MiB served from memory by a Node http server in another process, best of ${TRIES}`,
    });
    return out;
  } finally {
    await probe.stop();
  }
}

export async function measureCeilings(opts: { dir: string; buildDir: string; blob: LargeBlob }): Promise<Ceiling[]> {
  const disk = await diskCeilings(opts.dir, opts.blob.size);
  return [...disk, await sha256Ceiling(opts.blob), ...(await loopbackCeilings(opts.buildDir, opts.dir, opts.blob))];
}
