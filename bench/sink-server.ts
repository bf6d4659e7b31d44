import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, fdatasync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';

/**
 * The loopback ceilings' server, run as its own process. Prints its port on stdout once listening.
 * - `PUT /discard` reads and drops the body; `PUT /hash` hashes it.
 * - `PUT /store` hashes it and writes it to a new file in the directory given as the first argument, with
 *   background flushes on the way, and answers only once the file is fsynced: the least a registry does before it
 *   acknowledges a blob. `POST /store/clear` removes the files stored so far, untimed, so that the next write
 *   (the probe's or a registry's) does not start with the probe's file still filling the page cache; see
 *   `LoopbackProbe.upload`.
 * - `GET /bytes?size=N` sends N bytes from memory.
 */
const storeDir = process.argv[2];
const FLUSH_EVERY = 64 * 1024 * 1024;
const CHUNK = 16 * 1024 * 1024;
const pattern = randomFillSync(Buffer.allocUnsafe(CHUNK));
let stored = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://sink');
  if (req.method === 'PUT' && (url.pathname === '/discard' || url.pathname === '/hash')) {
    const hash = url.pathname === '/hash' ? createHash('sha256') : undefined;
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash?.update(chunk);
    });
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes, digest: hash ? `sha256:${hash.digest('hex')}` : null }));
    });
    return;
  }
  if (req.method === 'PUT' && url.pathname === '/store' && storeDir) {
    const hash = createHash('sha256');
    let bytes = 0;
    let flushedAt = 0;
    let flushing = false;
    // `flush` fsyncs the file before the stream reports it closed. Every FLUSH_EVERY bytes an fdatasync runs
    // in the background meanwhile, so that the final fsync does not find the whole body still in the page cache.
    stored += 1;
    const fd = openSync(join(storeDir, `ceiling-store-${stored}.bin`), 'wx');
    const file = createWriteStream('', { fd, flush: true, highWaterMark: 1024 * 1024 });
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (!flushing && bytes - flushedAt >= FLUSH_EVERY) {
        flushing = true;
        flushedAt = bytes;
        fdatasync(fd, () => (flushing = false));
      }
    });
    req.pipe(file);
    file.on('close', () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes, digest: `sha256:${hash.digest('hex')}` }));
    });
    file.on('error', (err) => res.writeHead(500).end(String(err)));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/store/clear' && storeDir) {
    const files = Array.from({ length: stored }, (_, i) => join(storeDir, `ceiling-store-${i + 1}.bin`));
    Promise.all(files.map((f) => rm(f, { force: true }))).then(
      () => res.writeHead(204).end(),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
    return;
  }
  if (req.method === 'GET' && url.pathname === '/bytes') {
    const size = Number(url.searchParams.get('size') ?? '0');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const n = Math.min(CHUNK, size - sent);
        sent += n;
        const more = res.write(n === CHUNK ? pattern : pattern.subarray(0, n));
        if (!more) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(404).end();
});

// Idle connections stay open: the probe reuses one connection for measurements minutes apart, and a server that
// closes an idle connection just as the client starts its next request on it fails that request (EPIPE).
server.keepAliveTimeout = 0;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
