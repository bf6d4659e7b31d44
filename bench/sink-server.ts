import { createHash, randomFillSync } from 'node:crypto';
import { createServer } from 'node:http';

/**
 * The loopback ceiling's server, run as its own process: `PUT /discard` reads and drops the body,
 * `PUT /hash` hashes it (what a registry must do at least), `GET /bytes?size=N` sends N bytes from memory.
 * Prints its port on stdout once listening.
 */
const CHUNK = 16 * 1024 * 1024;
const pattern = randomFillSync(Buffer.allocUnsafe(CHUNK));

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

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
