/**
 * The Traefik binary provisioned as a Go peer, run as a local process (not a container) in front of registry
 * processes: one entrypoint on a free loopback port, the file provider, one router for every path and one
 * load-balanced service over the given servers (weighted round robin with equal weights, no sticky sessions).
 *
 * Failover is configurable because it is what the replica tests are about:
 * - `retry`: Traefik's retry middleware. It retries only when the backend received nothing of the request
 *   (connection refused, reset before the headers were written), each time through the balancer, so a request that
 *   round robin sends to a dead replica goes to a live one at once. A request already streaming its body to a
 *   replica that dies is not retried: that one fails to the client, which retries.
 * - `healthCheck`: Traefik's active health check on `/healthz`. It takes a dead replica out of the rotation, but only
 *   after an interval, so on its own it leaves a window where every other request fails.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

import { freePort, requirePeer } from './peers.js';
import { stopChild } from '../../bench/lib/child.js';

export interface TraefikOptions {
  /** Backend base URLs, e.g. http://127.0.0.1:41234. */
  servers: string[];
  /** Retry middleware attempts (0: no retry middleware). Default 3. */
  retryAttempts?: number;
  /** Active health check on /healthz (false: none). Default true. */
  healthCheck?: boolean;
  /**
   * Also route TLS on the entrypoint, as the dev stack does: Traefik answers TLS on every entrypoint with its
   * default certificate, and dockerd, trying HTTPS first on an insecure registry, takes the 404 of a router-less
   * TLS answer as final. Clients that try HTTPS first (crane --insecure) then speak HTTP/2 to Traefik.
   */
  tlsRoute?: boolean;
  /** Traefik's rateLimit middleware in front of the service (answers 429 with Retry-After once the burst is spent). */
  rateLimit?: { average: number; period: string; burst: number };
}

export interface TraefikProcess {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, as clients name the registry. */
  host: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startTraefik(opts: TraefikOptions): Promise<TraefikProcess> {
  const bin = requirePeer('traefik');
  const dir = await mkdtemp(join(tmpdir(), 'regctl-traefik-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dynamicFile = join(dir, 'dynamic.yml');
  const attempts = opts.retryAttempts ?? 3;
  const staticConfig = {
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    // Uploads may stream for a while; Traefik's 60 s default read timeout would cut a slow PATCH.
    entryPoints: { web: { address: host, transport: { respondingTimeouts: { readTimeout: '0s' } } } },
    providers: { file: { filename: dynamicFile, watch: false } },
    log: { level: 'ERROR' },
  };
  const middlewares = [...(opts.rateLimit ? ['ratelimit'] : []), ...(attempts > 0 ? ['retry'] : [])];
  const dynamicConfig = {
    http: {
      routers: {
        registry: {
          rule: 'PathPrefix(`/`)',
          entryPoints: ['web'],
          service: 'registry',
          ...(middlewares.length > 0 ? { middlewares } : {}),
        },
        ...(opts.tlsRoute
          ? {
              'registry-tls': {
                rule: 'PathPrefix(`/`)',
                entryPoints: ['web'],
                service: 'registry',
                tls: {},
                ...(middlewares.length > 0 ? { middlewares } : {}),
              },
            }
          : {}),
      },
      ...(middlewares.length > 0
        ? {
            middlewares: {
              ...(attempts > 0 ? { retry: { retry: { attempts, initialInterval: '50ms' } } } : {}),
              ...(opts.rateLimit ? { ratelimit: { rateLimit: opts.rateLimit } } : {}),
            },
          }
        : {}),
      services: {
        registry: {
          loadBalancer: {
            servers: opts.servers.map((url) => ({ url })),
            passHostHeader: true,
            ...(opts.healthCheck === false ? {} : { healthCheck: { path: '/healthz', interval: '1s', timeout: '2s' } }),
          },
        },
      },
    },
  };
  await writeFile(join(dir, 'traefik.yml'), stringify(staticConfig));
  await writeFile(dynamicFile, stringify(dynamicConfig));
  let out = '';
  const child = spawn(bin, [`--configFile=${join(dir, 'traefik.yml')}`], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (c: Buffer): void => {
    out = (out + c.toString('utf8')).slice(-16_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };

  // Ready once the router forwards: the registry answers /v2/ (200 or 401), where Traefik alone answers 404.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`traefik exited before routing (${child.exitCode ?? child.signalCode}):\n${out}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`traefik did not route ${host} to the registry within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://${host}`, host, output: () => out, stop };
}
