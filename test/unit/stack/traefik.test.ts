import { describe, expect, test } from 'vitest';
import { routeLabels, traefikStaticConfig, type StaticConfigInput } from '../../../src/stack/traefik.js';

const registry = {
  router: 'registry',
  hostname: 'registry.example.com',
  port: 5000,
  corsOrigins: ['https://registry-ui.example.com'],
};
const ui = { router: 'registry-ui', hostname: 'registry-ui.example.com', port: 8080, corsOrigins: [] };

describe('route labels', () => {
  test('dev registry: HTTP on web, CORS for the UI origin, no buffering', () => {
    expect(
      routeLabels(
        { mode: 'dev', network: 'regctl_proxy', httpsPort: 443 },
        { ...registry, corsOrigins: ['http://registry-ui.example.com'] },
      ),
    ).toEqual({
      'traefik.enable': 'true',
      'traefik.docker.network': 'regctl_proxy',
      'traefik.http.routers.registry.rule': 'Host(`registry.example.com`)',
      'traefik.http.routers.registry.entrypoints': 'web',
      'traefik.http.routers.registry.service': 'registry',
      'traefik.http.routers.registry.middlewares': 'registry-cors',
      'traefik.http.routers.registry-tls.rule': 'Host(`registry.example.com`)',
      'traefik.http.routers.registry-tls.entrypoints': 'web',
      'traefik.http.routers.registry-tls.service': 'registry',
      'traefik.http.routers.registry-tls.tls': 'true',
      'traefik.http.routers.registry-tls.middlewares': 'registry-cors',
      'traefik.http.services.registry.loadbalancer.server.port': '5000',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolalloworiginlist': 'http://registry-ui.example.com',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowmethods': 'GET,HEAD,OPTIONS,DELETE',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowheaders': 'Authorization,Accept,Content-Type',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolexposeheaders':
        'Docker-Content-Digest,Link,Content-Length',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowcredentials': 'true',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolmaxage': '600',
      'traefik.http.middlewares.registry-cors.headers.addvaryheader': 'true',
    });
  });

  test('dev UI: no middleware at all; a TLS twin router on web', () => {
    expect(routeLabels({ mode: 'dev', network: 'n', httpsPort: 443 }, ui)).toEqual({
      'traefik.enable': 'true',
      'traefik.docker.network': 'n',
      'traefik.http.routers.registry-ui.rule': 'Host(`registry-ui.example.com`)',
      'traefik.http.routers.registry-ui.entrypoints': 'web',
      'traefik.http.routers.registry-ui.service': 'registry-ui',
      'traefik.http.routers.registry-ui-tls.rule': 'Host(`registry-ui.example.com`)',
      'traefik.http.routers.registry-ui-tls.entrypoints': 'web',
      'traefik.http.routers.registry-ui-tls.service': 'registry-ui',
      'traefik.http.routers.registry-ui-tls.tls': 'true',
      'traefik.http.services.registry-ui.loadbalancer.server.port': '8080',
    });
  });

  test('prod registry: websecure + ACME resolver, HSTS, CORS, and an HTTP router that redirects', () => {
    expect(routeLabels({ mode: 'prod', network: 'regctl_proxy', httpsPort: 443 }, registry)).toEqual({
      'traefik.enable': 'true',
      'traefik.docker.network': 'regctl_proxy',
      'traefik.http.routers.registry.rule': 'Host(`registry.example.com`)',
      'traefik.http.routers.registry.entrypoints': 'websecure',
      'traefik.http.routers.registry.tls': 'true',
      'traefik.http.routers.registry.tls.certresolver': 'le',
      'traefik.http.routers.registry.service': 'registry',
      'traefik.http.routers.registry.middlewares': 'registry-cors,registry-hsts',
      'traefik.http.services.registry.loadbalancer.server.port': '5000',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolalloworiginlist': 'https://registry-ui.example.com',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowmethods': 'GET,HEAD,OPTIONS,DELETE',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowheaders': 'Authorization,Accept,Content-Type',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolexposeheaders':
        'Docker-Content-Digest,Link,Content-Length',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolallowcredentials': 'true',
      'traefik.http.middlewares.registry-cors.headers.accesscontrolmaxage': '600',
      'traefik.http.middlewares.registry-cors.headers.addvaryheader': 'true',
      'traefik.http.middlewares.registry-hsts.headers.stsseconds': '31536000',
      'traefik.http.routers.registry-http.rule': 'Host(`registry.example.com`)',
      'traefik.http.routers.registry-http.entrypoints': 'web',
      'traefik.http.routers.registry-http.service': 'registry',
      'traefik.http.routers.registry-http.middlewares': 'registry-https-redirect',
      'traefik.http.middlewares.registry-https-redirect.redirectscheme.scheme': 'https',
      'traefik.http.middlewares.registry-https-redirect.redirectscheme.permanent': 'true',
    });
  });

  test('prod UI on a non-standard HTTPS port: the redirect names the port', () => {
    expect(routeLabels({ mode: 'prod', network: 'x_proxy', httpsPort: 8443 }, ui)).toEqual({
      'traefik.enable': 'true',
      'traefik.docker.network': 'x_proxy',
      'traefik.http.routers.registry-ui.rule': 'Host(`registry-ui.example.com`)',
      'traefik.http.routers.registry-ui.entrypoints': 'websecure',
      'traefik.http.routers.registry-ui.tls': 'true',
      'traefik.http.routers.registry-ui.tls.certresolver': 'le',
      'traefik.http.routers.registry-ui.service': 'registry-ui',
      'traefik.http.routers.registry-ui.middlewares': 'registry-ui-hsts',
      'traefik.http.services.registry-ui.loadbalancer.server.port': '8080',
      'traefik.http.middlewares.registry-ui-hsts.headers.stsseconds': '31536000',
      'traefik.http.routers.registry-ui-http.rule': 'Host(`registry-ui.example.com`)',
      'traefik.http.routers.registry-ui-http.entrypoints': 'web',
      'traefik.http.routers.registry-ui-http.service': 'registry-ui',
      'traefik.http.routers.registry-ui-http.middlewares': 'registry-ui-https-redirect',
      'traefik.http.middlewares.registry-ui-https-redirect.redirectscheme.scheme': 'https',
      'traefik.http.middlewares.registry-ui-https-redirect.redirectscheme.permanent': 'true',
      'traefik.http.middlewares.registry-ui-https-redirect.redirectscheme.port': '8443',
    });
  });

  test('dev with the local CA: the same routers plus an HTTPS one on websecure, served the default certificate', () => {
    const plain = routeLabels({ mode: 'dev', network: 'n', httpsPort: 443 }, registry);
    const withCa = routeLabels({ mode: 'dev', network: 'n', httpsPort: 443, devTls: true }, registry);
    expect(withCa).toEqual({
      ...plain,
      'traefik.http.routers.registry-https.rule': 'Host(`registry.example.com`)',
      'traefik.http.routers.registry-https.entrypoints': 'websecure',
      'traefik.http.routers.registry-https.service': 'registry',
      'traefik.http.routers.registry-https.tls': 'true',
      'traefik.http.routers.registry-https.middlewares': 'registry-cors',
    });
    // No ACME resolver and no redirect: HTTP keeps working for clients set up for it.
    expect(Object.keys(withCa).filter((k) => k.includes('certresolver') || k.includes('redirect'))).toEqual([]);
  });

  test('labels come sorted by key, so rendered files are stable', () => {
    const keys = Object.keys(routeLabels({ mode: 'prod', network: 'n', httpsPort: 443 }, registry));
    expect(keys).toEqual([...keys].sort());
  });

  test('no buffering middleware on any route', () => {
    for (const mode of ['dev', 'prod'] as const) {
      const labels = routeLabels({ mode, network: 'n', httpsPort: 443 }, registry);
      expect(Object.keys(labels).filter((k) => k.includes('buffering'))).toEqual([]);
    }
  });
});

const base: StaticConfigInput = {
  mode: 'dev',
  project: 'regctl',
  network: 'regctl_proxy',
  dashboard: false,
  readTimeout: '0s',
  writeTimeout: '0s',
  idleTimeout: '180s',
  accessLog: true,
  logLevel: 'INFO',
  acme: { caServer: 'https://acme-v02.api.letsencrypt.org/directory' },
};
const timeouts = { respondingTimeouts: { readTimeout: '0s', writeTimeout: '0s', idleTimeout: '180s' } };

describe('Traefik static config', () => {
  test('dev: web entrypoint with raised timeouts, docker provider on one network, ping, no API', () => {
    expect(traefikStaticConfig(base)).toEqual({
      global: { checkNewVersion: false, sendAnonymousUsage: false },
      log: { level: 'INFO' },
      accessLog: {},
      entryPoints: {
        web: { address: ':80', transport: timeouts },
        ping: { address: ':8082' },
      },
      ping: { entryPoint: 'ping' },
      providers: {
        docker: {
          endpoint: 'unix:///var/run/docker.sock',
          exposedByDefault: false,
          network: 'regctl_proxy',
          constraints: 'Label(`com.docker.compose.project`,`regctl`)',
        },
      },
    });
  });

  test('dev with the local CA: websecure beside web, and the file provider reading the leaf', () => {
    const config = traefikStaticConfig({ ...base, devTlsFile: '/etc/traefik/tls.yml' });
    expect(config.entryPoints).toEqual({
      web: { address: ':80', transport: timeouts },
      websecure: { address: ':443', transport: timeouts },
      ping: { address: ':8082' },
    });
    expect(config.providers).toMatchObject({
      file: { filename: '/etc/traefik/tls.yml' },
      docker: { network: 'regctl_proxy' },
    });
    expect(config).not.toHaveProperty('certificatesResolvers');
  });

  test('prod: websecure too, and the ACME resolver with HTTP challenge on web', () => {
    const config = traefikStaticConfig({
      ...base,
      mode: 'prod',
      acme: { email: 'ops@example.com', caServer: 'https://pebble:14000/dir' },
    });
    expect(config.entryPoints).toEqual({
      web: { address: ':80', transport: timeouts },
      websecure: { address: ':443', transport: timeouts },
      ping: { address: ':8082' },
    });
    expect(config.certificatesResolvers).toEqual({
      le: {
        acme: {
          email: 'ops@example.com',
          storage: '/letsencrypt/acme.json',
          caServer: 'https://pebble:14000/dir',
          httpChallenge: { entryPoint: 'web' },
        },
      },
    });
    expect(config.api).toBeUndefined();
  });

  test('prod without an email leaves it out; dashboard on adds the API and its entrypoint; access log off', () => {
    const config = traefikStaticConfig({
      ...base,
      mode: 'prod',
      dashboard: true,
      accessLog: false,
      readTimeout: '24h',
    });
    expect((config.certificatesResolvers as { le: { acme: Record<string, unknown> } }).le.acme).not.toHaveProperty(
      'email',
    );
    expect(config.api).toEqual({ dashboard: true, insecure: true });
    expect(config.entryPoints).toMatchObject({
      traefik: { address: ':8080' },
      web: { transport: { respondingTimeouts: { readTimeout: '24h' } } },
    });
    expect(config).not.toHaveProperty('accessLog');
  });
});
