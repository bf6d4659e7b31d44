// A registry that loses a blob, for the bench harness's own test: installed as bin/regctl.js of an
// `--ours-root` directory, it runs the real `regctl serve` (LOSSY_REAL_ROOT) on another port and proxies to it,
// except that after the first blob upload it acknowledged (201) it answers 404 BLOB_UNKNOWN for that blob.
import { spawn } from 'node:child_process';
import { request, createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';

const args = process.argv.slice(2);
const at = args.indexOf('--listen');
const [host, port] = args[at + 1].split(':');

const inner = await new Promise((resolve) => {
  const probe = createNetServer().listen(0, '127.0.0.1', () => {
    const p = probe.address().port;
    probe.close(() => resolve(p));
  });
});
const innerArgs = [...args];
innerArgs[at + 1] = `127.0.0.1:${inner}`;
const child = spawn(process.execPath, [join(process.env.LOSSY_REAL_ROOT, 'bin/regctl.js'), ...innerArgs], {
  stdio: 'inherit',
});
child.on('exit', (code) => process.exit(code ?? 1));

let lost;
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
  if (lost && blob && blob[1] === lost && (req.method === 'GET' || req.method === 'HEAD')) {
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: lost }] }));
    return;
  }
  const upstream = request(
    { host: '127.0.0.1', port: inner, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      const digest = url.searchParams.get('digest');
      if (
        !lost &&
        req.method === 'PUT' &&
        url.pathname.includes('/blobs/uploads/') &&
        up.statusCode === 201 &&
        digest
      ) {
        lost = digest;
        process.stderr.write(`lossy registry: losing ${digest}\n`);
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(Number(port), host);
process.on('SIGTERM', () => {
  child.kill('SIGTERM');
  server.close();
});
