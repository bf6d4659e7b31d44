import { connect } from 'node:net';

export interface RawResponse {
  /** 0 when the server closed the connection without answering. */
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  ms: number;
}

export interface RawSendOptions {
  /** Send the request in slices of `bytes` with `delayMs` between them (a slow client). */
  trickle?: { bytes: number; delayMs: number };
  /** Stop sending after the given bytes and half-close, as a client that gives up mid-request. */
  halfClose?: boolean;
  timeoutMs?: number;
}

/** Sends bytes exactly as given over a fresh TCP connection and reads the first response. */
export async function sendRaw(port: number, request: Buffer, opts: RawSendOptions = {}): Promise<RawResponse> {
  const started = Date.now();
  const sock = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  sock.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${opts.timeoutMs ?? 20_000} ms`));
    }, opts.timeoutMs ?? 20_000);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  const write = (b: Buffer) =>
    new Promise<void>((resolve) => {
      if (sock.destroyed) return resolve();
      sock.write(b, () => resolve());
    });
  if (opts.trickle) {
    for (let i = 0; i < request.length && !sock.destroyed; i += opts.trickle.bytes) {
      await write(request.subarray(i, i + opts.trickle.bytes));
      await new Promise((r) => setTimeout(r, opts.trickle?.delayMs));
    }
  } else await write(request);
  if (opts.halfClose) sock.end();
  await done;
  return parseResponse(Buffer.concat(chunks), Date.now() - started);
}

function parseResponse(raw: Buffer, ms: number): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (raw.length === 0 || end < 0) return { status: 0, headers: {}, body: Buffer.alloc(0), ms };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.subarray(end + 4);
  const len = headers['content-length'];
  if (len !== undefined) body = body.subarray(0, Number(len));
  return { status, headers, body, ms };
}
