/** The optional slow, large synthetic upload through Traefik (`regctl doctor --upload-test`). */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { formatBytes } from '../../common/units.js';
import { probe } from '../http-probe.js';
import type { Check } from './types.js';

/**
 * Streams `bytes` of zeros as one PATCH, paced to last `seconds`, through Traefik; resolves with the
 * status. The upload session is cancelled afterwards either way.
 */
async function slowUpload(o: {
  address: string;
  port: number;
  host: string;
  tls: boolean;
  auth: { username: string; password: string };
  bytes: number;
  seconds: number;
  onProgress?: (text: string) => void;
}): Promise<{ status: number; elapsedMs: number; error?: string }> {
  const auth = `Basic ${Buffer.from(`${o.auth.username}:${o.auth.password}`).toString('base64')}`;
  const start = await probe({
    address: o.address,
    port: o.port,
    host: o.host,
    tls: o.tls,
    insecure: true,
    path: '/v2/regctl-doctor/blobs/uploads/',
    method: 'POST',
    auth: o.auth,
  });
  const location = start.headers.location;
  if (start.status !== 202 || !location)
    return { status: start.status, elapsedMs: 0, error: `upload did not start (HTTP ${start.status})` };
  const path = location.startsWith('http') ? new URL(location).pathname + new URL(location).search : location;
  const began = Date.now();
  const result = await new Promise<{ status: number; error?: string }>((resolve) => {
    const req = (o.tls ? httpsRequest : httpRequest)(
      {
        host: o.address,
        port: o.port,
        path,
        method: 'PATCH',
        headers: {
          host: o.host,
          authorization: auth,
          'content-type': 'application/octet-stream',
          'content-length': String(o.bytes),
        },
        ...(o.tls ? { servername: o.host, rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    const chunk = Buffer.alloc(64 * 1024);
    const perTick = Math.max(1, Math.ceil(o.bytes / (o.seconds * 4)));
    let sent = 0;
    const timer = setInterval(() => {
      let budget = Math.min(perTick, o.bytes - sent);
      while (budget > 0) {
        const n = Math.min(budget, chunk.length);
        req.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        sent += n;
        budget -= n;
      }
      o.onProgress?.(
        `synthetic upload: ${formatBytes(sent)} of ${formatBytes(o.bytes)}, ${Math.round((Date.now() - began) / 1000)} s`,
      );
      if (sent >= o.bytes) {
        clearInterval(timer);
        req.end();
      }
    }, 250);
    req.on('close', () => clearInterval(timer));
  });
  await probe({
    address: o.address,
    port: o.port,
    host: o.host,
    tls: o.tls,
    insecure: true,
    path,
    method: 'DELETE',
    auth: o.auth,
  }).catch(() => undefined);
  return { ...result, elapsedMs: Date.now() - began };
}

/** Over Traefik's 60 s default read timeout and the 100 MB body limit common in front of registries. */
export const uploadCheck: Check = {
  id: 'upload',
  title: 'Slow large upload through Traefik',
  async run(ctx) {
    if (!ctx.opts.uploadTest) return undefined;
    if (!ctx.running || !ctx.creds)
      return { status: 'skip', detail: ctx.running ? 'no admin credentials in .env' : 'Traefik is not running' };
    const seconds = ctx.opts.uploadSeconds ?? 65;
    const bytes = ctx.opts.uploadBytes ?? 128 * 1024 * 1024;
    const onProgress = ctx.opts.onProgress;
    const r = await slowUpload({
      address: ctx.address,
      port: ctx.publicPort,
      host: ctx.registryHost,
      tls: ctx.tls,
      auth: ctx.creds,
      bytes,
      seconds,
      ...(onProgress ? { onProgress } : {}),
    });
    const over = `${formatBytes(bytes)} over ${Math.round(r.elapsedMs / 1000)} s`;
    return r.status === 202
      ? { status: 'pass', detail: `${over} accepted` }
      : {
          status: 'fail',
          detail: `${over}: ${r.error ?? `HTTP ${r.status}`}`,
          fix: "raise the proxy's read timeout (traefik.readTimeout: 0s) and remove body size limits or buffering middlewares on the registry route",
        };
  },
};
