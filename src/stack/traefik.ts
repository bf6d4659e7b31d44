/**
 * Traefik, as pure data: the label map of each routed service and the static configuration file.
 *
 * Routers: `registry` (registry.<host>) and `registry-ui` (registry-ui.<host>). Dev serves them on the `web`
 * entrypoint over HTTP and, with the stack's local CA (compose dev stacks), as `<router>-https` on `websecure` with
 * the leaf of `traefik/tls.yml`; plain HTTP stays (no redirect) so clients set up for it keep working. Prod serves them on `websecure` with the `le` ACME resolver, adds a `<router>-http`
 * router on `web` that redirects to HTTPS, and an HSTS headers middleware. The registry router carries a CORS
 * middleware for the UI's origin and never a buffering middleware (it would hold whole layers in memory).
 * Middlewares are named after their router so that no two containers define the same one.
 */
import type { StackMode } from './model.js';

export const ENTRYPOINT_HTTP = 'web';
export const ENTRYPOINT_HTTPS = 'websecure';
export const ENTRYPOINT_PING = 'ping';
export const CERT_RESOLVER = 'le';
export const ACME_STORAGE_DIR = '/letsencrypt';
export const STATIC_CONFIG_PATH = '/etc/traefik/traefik.yml';
export const ACME_CA_PATH = '/etc/traefik/acme-ca.pem';
export const HSTS_SECONDS = 31_536_000;
const PING_PORT = 8082;
const DASHBOARD_PORT = 8080;

export interface RouteContext {
  mode: StackMode;
  /** The network Traefik reaches the container on (`traefik.docker.network`). */
  network: string;
  /** Published HTTPS port on the host, for redirects (prod). */
  httpsPort: number;
  /** The provider that reads the labels; each has its own network label. Default docker. */
  provider?: 'docker' | 'swarm';
  /** dev: also route on `websecure` with the local CA's leaf (the default certificate of traefik/tls.yml). */
  devTls?: boolean;
}

export interface RoutedService {
  /** Router, service and middleware name prefix: `registry` or `registry-ui`. */
  router: string;
  hostname: string;
  /** Port the container listens on. */
  port: number;
  /** Origins allowed by CORS; empty means no CORS middleware. */
  corsOrigins: string[];
}

/** The whole Traefik label map of one routed service. */
export function routeLabels(ctx: RouteContext, svc: RoutedService): Record<string, string> {
  const r = `traefik.http.routers.${svc.router}`;
  const m = `traefik.http.middlewares.${svc.router}`;
  const rule = `Host(\`${svc.hostname}\`)`;
  const middlewares: string[] = [];
  const labels: Record<string, string> = {
    'traefik.enable': 'true',
    [`traefik.${ctx.provider ?? 'docker'}.network`]: ctx.network,
    [`${r}.rule`]: rule,
    [`${r}.service`]: svc.router,
    [`traefik.http.services.${svc.router}.loadbalancer.server.port`]: String(svc.port),
  };
  if (svc.corsOrigins.length > 0) {
    middlewares.push(`${svc.router}-cors`);
    Object.assign(labels, {
      [`${m}-cors.headers.accesscontrolalloworiginlist`]: svc.corsOrigins.join(','),
      [`${m}-cors.headers.accesscontrolallowmethods`]: 'GET,HEAD,OPTIONS,DELETE',
      [`${m}-cors.headers.accesscontrolallowheaders`]: 'Authorization,Accept,Content-Type',
      [`${m}-cors.headers.accesscontrolexposeheaders`]: 'Docker-Content-Digest,Link,Content-Length',
      [`${m}-cors.headers.accesscontrolallowcredentials`]: 'true',
      [`${m}-cors.headers.accesscontrolmaxage`]: '600',
      [`${m}-cors.headers.addvaryheader`]: 'true',
    });
  }
  if (ctx.mode === 'dev') {
    // Traefik answers TLS on every entrypoint (with its default certificate). dockerd tries HTTPS first on
    // an insecure registry, skips verification, and does not fall back to HTTP after a 404 from a router-less
    // TLS answer, so `docker push` fails unless the same route also exists for TLS on `web`.
    Object.assign(labels, {
      [`${r}.entrypoints`]: ENTRYPOINT_HTTP,
      [`${r}-tls.rule`]: rule,
      [`${r}-tls.entrypoints`]: ENTRYPOINT_HTTP,
      [`${r}-tls.service`]: svc.router,
      [`${r}-tls.tls`]: 'true',
    });
    if (ctx.devTls) {
      Object.assign(labels, {
        [`${r}-https.rule`]: rule,
        [`${r}-https.entrypoints`]: ENTRYPOINT_HTTPS,
        [`${r}-https.service`]: svc.router,
        [`${r}-https.tls`]: 'true',
      });
    }
  } else {
    middlewares.push(`${svc.router}-hsts`);
    Object.assign(labels, {
      [`${r}.entrypoints`]: ENTRYPOINT_HTTPS,
      [`${r}.tls`]: 'true',
      [`${r}.tls.certresolver`]: CERT_RESOLVER,
      [`${m}-hsts.headers.stsseconds`]: String(HSTS_SECONDS),
      [`${r}-http.rule`]: rule,
      [`${r}-http.entrypoints`]: ENTRYPOINT_HTTP,
      [`${r}-http.service`]: svc.router,
      [`${r}-http.middlewares`]: `${svc.router}-https-redirect`,
      [`${m}-https-redirect.redirectscheme.scheme`]: 'https',
      [`${m}-https-redirect.redirectscheme.permanent`]: 'true',
    });
    if (ctx.httpsPort !== 443) labels[`${m}-https-redirect.redirectscheme.port`] = String(ctx.httpsPort);
  }
  if (ctx.provider === 'swarm') {
    // A task leaving in a rolling update refuses connections before Traefik's next poll drops it: a request
    // that could not reach it is sent again to another task (only when nothing was sent back yet).
    middlewares.push(`${svc.router}-retry`);
    labels[`${m}-retry.retry.attempts`] = '3';
    labels[`${m}-retry.retry.initialinterval`] = '100ms';
  }
  if (middlewares.length > 0) labels[`${r}.middlewares`] = middlewares.join(',');
  if (ctx.mode === 'dev' && middlewares.length > 0) {
    labels[`${r}-tls.middlewares`] = middlewares.join(',');
    if (ctx.devTls) labels[`${r}-https.middlewares`] = middlewares.join(',');
  }
  return sortKeys(labels);
}

export interface StaticConfigInput {
  mode: StackMode;
  project: string;
  network: string;
  dashboard: boolean;
  readTimeout: string;
  writeTimeout: string;
  idleTimeout: string;
  accessLog: boolean;
  logLevel: string;
  acme: { email?: string | undefined; caServer: string };
  /** docker (default): containers of the compose project; swarm: services of the stack, polled every 2 s. */
  provider?: 'docker' | 'swarm';
  /** dev: a `websecure` entrypoint and the file provider reading the local CA's leaf from this path. */
  devTlsFile?: string;
}

/** How often Traefik's Swarm provider lists services and tasks (its default, 15 s, is slow for rolling updates). */
export const SWARM_REFRESH_SECONDS = 2;

/** Container ports Traefik listens on. */
export const TRAEFIK_PORTS = { http: 80, https: 443, ping: PING_PORT, dashboard: DASHBOARD_PORT } as const;

/** Traefik's static configuration (`traefik/traefik.yml` in dev, `traefik/traefik.prod.yml` in prod). */
export function traefikStaticConfig(input: StaticConfigInput): Record<string, unknown> {
  const transport = {
    respondingTimeouts: {
      readTimeout: input.readTimeout,
      writeTimeout: input.writeTimeout,
      idleTimeout: input.idleTimeout,
    },
  };
  const entryPoints: Record<string, unknown> = {
    [ENTRYPOINT_HTTP]: { address: `:${TRAEFIK_PORTS.http}`, transport },
  };
  if (input.mode === 'prod' || input.devTlsFile)
    entryPoints[ENTRYPOINT_HTTPS] = { address: `:${TRAEFIK_PORTS.https}`, transport };
  entryPoints[ENTRYPOINT_PING] = { address: `:${TRAEFIK_PORTS.ping}` };
  if (input.dashboard) entryPoints.traefik = { address: `:${TRAEFIK_PORTS.dashboard}` };

  const config: Record<string, unknown> = {
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    log: { level: input.logLevel },
    ...(input.accessLog ? { accessLog: {} } : {}),
    entryPoints,
    ping: { entryPoint: ENTRYPOINT_PING },
    providers:
      input.provider === 'swarm'
        ? {
            swarm: {
              endpoint: 'unix:///var/run/docker.sock',
              exposedByDefault: false,
              network: input.network,
              refreshSeconds: SWARM_REFRESH_SECONDS,
              constraints: `Label(\`com.docker.stack.namespace\`,\`${input.project}\`)`,
            },
          }
        : {
            docker: {
              endpoint: 'unix:///var/run/docker.sock',
              exposedByDefault: false,
              network: input.network,
              constraints: `Label(\`com.docker.compose.project\`,\`${input.project}\`)`,
            },
          },
  };
  if (input.dashboard) config.api = { dashboard: true, insecure: true };
  if (input.mode === 'dev' && input.devTlsFile) {
    (config.providers as Record<string, unknown>).file = { filename: input.devTlsFile };
  }
  if (input.mode === 'prod') {
    config.certificatesResolvers = {
      [CERT_RESOLVER]: {
        acme: {
          ...(input.acme.email ? { email: input.acme.email } : {}),
          storage: `${ACME_STORAGE_DIR}/acme.json`,
          caServer: input.acme.caServer,
          httpChallenge: { entryPoint: ENTRYPOINT_HTTP },
        },
      },
    };
  }
  return config;
}

function sortKeys(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
