/**
 * The UI's static files, served under /static/. `ASSET_VERSION` changes whenever one of them does: pages link
 * `?v=<version>`, which may be cached for a year.
 */
import { createHash } from 'node:crypto';
import { APP_JS } from './app-js.js';
import { STYLE_CSS } from './style.js';

export const ASSETS: Readonly<Record<string, { body: string; type: string }>> = {
  'app.js': { body: APP_JS, type: 'text/javascript; charset=utf-8' },
  'style.css': { body: STYLE_CSS, type: 'text/css; charset=utf-8' },
};

export const ASSET_VERSION = createHash('sha256').update(APP_JS).update(STYLE_CSS).digest('hex').slice(0, 10);
