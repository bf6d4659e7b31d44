/**
 * The admin API's extension point: each file under `admin/` exports an `AdminModule` that registers its routes
 * (paths under `/admin/v1/`), and `admin/index.ts` lists the modules. Routes are authenticated; `adminOnly`
 * ones also need an admin user.
 */
import type { AccessPolicy } from '../auth/access.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Fence } from '../fence.js';
import type { Ctx } from '../http/context.js';
import type { LogFn } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { RegistryStore } from '../storage/store.js';
import type { MaintenanceLock } from './maintenance-lock.js';

export interface AdminServices {
  store: RegistryStore;
  fence: Fence;
  /** Held by a backup or a sweeping GC: each refuses to start while the other runs. */
  maintenance: MaintenanceLock;
  auth: Authenticator | undefined;
  policy(): AccessPolicy;
  metrics: Metrics;
  log: LogFn;
  /** Age after which uploads count as stale. */
  uploadPurgeAgeMs: number;
  /** The data directory for filesystem storage (undefined for other drivers). */
  dataDir: string | undefined;
  /** The policies in force, when the registry has any configured. */
  policies?: PolicyHolder;
}

export interface AdminRequest {
  ctx: Ctx;
  user: string | undefined;
  isAdmin: boolean;
  services: AdminServices;
  /** The request body parsed as JSON (`{}` when empty); invalid JSON is a 400. */
  json: () => Promise<Record<string, unknown>>;
}

export interface AdminRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below `/admin/v1/`, e.g. `gc`. */
  path: string;
  adminOnly: boolean;
  handler(r: AdminRequest): Promise<void>;
}

export type AdminModule = (register: (route: AdminRoute) => void) => void;
