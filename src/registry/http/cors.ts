/**
 * CORS for the browser clients named in `corsOrigins` (the web UI's origin in the stack), and the answer to
 * `OPTIONS`, which is given without authentication.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { send, type Ctx } from './context.js';

const EXPOSED_HEADERS = [
  'Docker-Content-Digest',
  'Docker-Upload-UUID',
  'Location',
  'Range',
  'Link',
  'OCI-Subject',
  'OCI-Filters-Applied',
  'OCI-Deleted-Tags',
  'WWW-Authenticate',
  'Content-Range',
].join(', ');

const METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** Sets the CORS response headers when the request's Origin is one of `allowed` (or `allowed` holds `*`). */
export function cors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): void {
  const origin = req.headers.origin;
  if (!origin || allowed.length === 0) return;
  if (!allowed.includes('*') && !allowed.includes(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
}

/** 204 with `Allow`, plus the preflight headers when `cors` accepted the origin. */
export function answerOptions(ctx: Ctx): void {
  const { res } = ctx;
  res.setHeader('Allow', METHODS);
  if (res.hasHeader('Access-Control-Allow-Origin')) {
    res.setHeader('Access-Control-Allow-Methods', METHODS);
    res.setHeader(
      'Access-Control-Allow-Headers',
      'Authorization, Content-Type, Accept, Range, Content-Range, Docker-Content-Digest',
    );
    res.setHeader('Access-Control-Max-Age', '600');
  }
  send(ctx, 204, {});
}
