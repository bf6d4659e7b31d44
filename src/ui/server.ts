/**
 * The web UI's HTTP server. `createUiHandler(opts)` returns a plain Node `(req, res)` handler that renders every
 * page server-side and talks to the registry with the signed-in user's credentials; it works at `/` or under a
 * path prefix (`basePath: '/ui'`, for `regctl serve --ui`), whether or not the mounting server strips the prefix.
 * `createUiServer(opts)` wraps it in a `node:http` server for `regctl ui`.
 *
 * The pages are the route table of routes/index.ts; what every request goes through first is in http.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, normaliseBase, type UiOptions } from './app.js';
import { requestHandler } from './http.js';
import { ROUTES } from './routes/index.js';
import type { SessionStore } from './sessions.js';

export type { UiOptions } from './app.js';

export type UiHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { readonly sessions: SessionStore };

export function createUiHandler(opts: UiOptions): UiHandler {
  const app = createApp(opts);
  return Object.assign(requestHandler(app, ROUTES), { sessions: app.sessions });
}

export interface UiServer {
  listen(): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
  readonly server: Server;
  readonly handler: UiHandler;
}

export function createUiServer(opts: UiOptions & { host?: string; port?: number }): UiServer {
  const handler = createUiHandler(opts);
  const server = createServer(handler);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  return {
    server,
    handler,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          resolve({ port: addr.port, url: `http://${host}:${addr.port}${normaliseBase(opts.basePath)}/` });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
