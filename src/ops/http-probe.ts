/**
 * HTTP(S) probes of a running stack, reused by `up`, `status` and the day-two commands.
 *
 * Every probe connects to an address the caller gives (normally 127.0.0.1 and a published Traefik port)
 * and sends the public host name as `Host` (and as TLS SNI), so it exercises Traefik's routing exactly as
 * a client would, without DNS.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';

export interface ProbeRequest {
  address?: string;
  port: number;
  /** Host header and TLS server name. */
  host: string;
  /** Host header when it differs from the server name (`name:port`, as clients send it on a non-default port). */
  hostHeader?: string;
  path: string;
  tls?: boolean;
  /** Accept any certificate (routing checks, before the ACME certificate arrives). */
  insecure?: boolean;
  /** PEM of a CA to trust instead of the system roots. */
  ca?: string | Buffer;
  auth?: { username: string; password: string };
  method?: string;
  timeoutMs?: number;
}

export interface ProbeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request; the body is read up to 64 KiB. Network errors reject. */
export function probe(req: ProbeRequest): Promise<ProbeResponse> {
  const headers: Record<string, string> = { host: req.hostHeader ?? req.host, 'user-agent': 'regctl-probe' };
  if (req.auth)
    headers.authorization = `Basic ${Buffer.from(`${req.auth.username}:${req.auth.password}`).toString('base64')}`;
  const options = {
    host: req.address ?? '127.0.0.1',
    port: req.port,
    path: req.path,
    method: req.method ?? 'GET',
    headers,
    timeout: req.timeoutMs ?? 5000,
    ...(req.tls ? { servername: req.host, rejectUnauthorized: !req.insecure, ...(req.ca ? { ca: req.ca } : {}) } : {}),
  };
  return new Promise((resolve, reject) => {
    const r = (req.tls ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 65_536) chunks.push(c);
        size += c.length;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    r.on('timeout', () => r.destroy(new Error(`no answer within ${options.timeout} ms`)));
    r.on('error', reject);
    r.end();
  });
}

/**
 * Repeats `check` until it returns a value (not `undefined`) or time runs out; returns the last value
 * or throws the last error/`describe()` when time is up.
 */
export async function retryUntil<T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; describe: () => string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`${opts.describe()}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

export interface ServedCertificate {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  /** Whole days until expiry (negative once expired). */
  daysLeft: number;
  altNames: string[];
}

/** The certificate a TLS server presents for `servername` (not verified: this is for reporting). */
export function servedCertificate(opts: {
  address?: string;
  port: number;
  servername: string;
  timeoutMs?: number;
}): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: opts.address ?? '127.0.0.1',
      port: opts.port,
      servername: opts.servername,
      rejectUnauthorized: false,
    });
    socket.setTimeout(opts.timeoutMs ?? 5000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      if (!cert || !cert.valid_to) {
        reject(new Error('the server presented no certificate'));
        return;
      }
      const validTo = new Date(cert.valid_to);
      resolve({
        subject: cert.subject?.CN ? String(cert.subject.CN) : '',
        issuer: cert.issuer?.CN ? String(cert.issuer.CN) : cert.issuer?.O ? String(cert.issuer.O) : '',
        validFrom: new Date(cert.valid_from).toISOString(),
        validTo: validTo.toISOString(),
        daysLeft: Math.floor((validTo.getTime() - Date.now()) / 86_400_000),
        altNames: (cert.subjectaltname ?? '')
          .split(',')
          .map((s) => s.trim().replace(/^DNS:/, ''))
          .filter(Boolean),
      });
    });
    socket.once('error', reject);
  });
}

/** Traefik's self-signed fallback, served until (or unless) the ACME certificate is obtained. */
export function isTraefikDefaultCertificate(cert: ServedCertificate): boolean {
  return /TRAEFIK DEFAULT CERT/i.test(cert.subject) || /TRAEFIK DEFAULT CERT/i.test(cert.issuer);
}
