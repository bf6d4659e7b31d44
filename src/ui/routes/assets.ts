/** `/healthz` and `/static/<file>`: answered to anyone, before sessions or forms are looked at. */
import { ASSET_VERSION, ASSETS } from '../assets/index.js';
import { send, type RouteEntry, type RouteOf } from '../http.js';

export const healthz: RouteEntry<RouteOf<'healthz'>> = {
  access: 'open',
  handle: ({ res }) => send(res, 200, '{"status":"ok"}\n', 'application/json'),
};

/** A versioned link (`?v=` the current version) may be cached for a year; any other is revalidated by ETag. */
export const staticFile: RouteEntry<RouteOf<'static'>> = {
  access: 'open',
  handle: ({ req, res, route, url }) => {
    const asset = ASSETS[route.file];
    if (!asset) return send(res, 404, 'not found\n', 'text/plain; charset=utf-8');
    res.setHeader(
      'Cache-Control',
      url.searchParams.get('v') === ASSET_VERSION ? 'public, max-age=31536000, immutable' : 'no-cache',
    );
    res.setHeader('ETag', `"${ASSET_VERSION}"`);
    if (req.headers['if-none-match'] === `"${ASSET_VERSION}"`) {
      res.statusCode = 304;
      res.end();
      return;
    }
    send(res, 200, asset.body, asset.type);
  },
};
