/**
 * The route table, mirroring the endpoint list of the OCI Distribution Spec v1.1:
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#endpoints
 * Each method carries what the app needs to dispatch it: the action the access policy checks (pull, push,
 * delete, or `base` / `catalog`), how it meets the read-only fence, whether it needs free space, and whether
 * it may mount from another repository; the app reads these fields and never compares ids.
 * Repository names may contain slashes; they are captured loosely here and validated by the app, so an
 * invalid name is NAME_INVALID rather than a 404.
 */
import { deleteBlob, getBlob } from './blobs.js';
import type { Ctx } from './context.js';
import { listReferrers, listTags } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

export type RouteAction = 'base' | 'catalog' | 'pull' | 'push' | 'delete';

/**
 * How a write meets the read-only fence: `counted` writes (manifest, tag and blob-link changes) are counted
 * while they run so that a backup's fence waits for them to finish; `wait` writes (upload traffic) only wait
 * for the fence to lift before they start.
 */
export type FenceMode = 'counted' | 'wait';

export interface RouteMethod {
  /** The label in metrics and logs: the spec's endpoint id where it has one. */
  id: string;
  action: RouteAction;
  /** Set on writes; reads pass a raised fence. */
  fence?: FenceMode;
  /** Refused with 503 while the data directory's free space is below the configured minimum. */
  needsFreeSpace?: boolean;
  /** Takes `?mount=&from=`: without a pull right on `from`, the mount is dropped and an upload session starts. */
  mountsFrom?: boolean;
  handler: (ctx: Ctx) => Promise<void>;
}

export interface Route {
  name: string;
  pattern: RegExp;
  keys: string[];
  methods: Partial<Record<string, RouteMethod>>;
}

const NAME = '(.+)';

export const ROUTES: Route[] = [
  {
    name: 'base',
    pattern: /^\/v2\/?$/,
    keys: [],
    methods: { GET: { id: 'end-1', action: 'base', handler: async () => undefined } },
  },
  {
    name: 'catalog',
    pattern: /^\/v2\/_catalog$/,
    keys: [],
    methods: { GET: { id: 'catalog', action: 'catalog', handler: async () => undefined } },
  },
  {
    name: 'upload',
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/([^/]+)$`),
    keys: ['name', 'id'],
    methods: {
      PATCH: { id: 'end-5', action: 'push', fence: 'wait', needsFreeSpace: true, handler: patchUpload },
      PUT: { id: 'end-6', action: 'push', fence: 'wait', needsFreeSpace: true, handler: putUpload },
      GET: { id: 'end-13', action: 'push', fence: 'wait', needsFreeSpace: true, handler: uploadStatus },
      DELETE: { id: 'upload-cancel', action: 'push', fence: 'wait', handler: cancelUpload },
    },
  },
  {
    name: 'uploads',
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/?$`),
    keys: ['name'],
    methods: {
      POST: {
        id: 'end-4',
        action: 'push',
        fence: 'wait',
        needsFreeSpace: true,
        mountsFrom: true,
        handler: startUpload,
      },
    },
  },
  {
    name: 'blob',
    pattern: new RegExp(`^/v2/${NAME}/blobs/([^/]+)$`),
    keys: ['name', 'digest'],
    methods: {
      GET: { id: 'end-2', action: 'pull', handler: getBlob },
      HEAD: { id: 'end-2', action: 'pull', handler: getBlob },
      DELETE: { id: 'end-10', action: 'delete', fence: 'counted', handler: deleteBlob },
    },
  },
  {
    name: 'manifest',
    pattern: new RegExp(`^/v2/${NAME}/manifests/([^/]+)$`),
    keys: ['name', 'reference'],
    methods: {
      GET: { id: 'end-3', action: 'pull', handler: getManifest },
      HEAD: { id: 'end-3', action: 'pull', handler: getManifest },
      PUT: { id: 'end-7', action: 'push', fence: 'counted', needsFreeSpace: true, handler: putManifest },
      DELETE: { id: 'end-9', action: 'delete', fence: 'counted', handler: deleteManifest },
    },
  },
  {
    name: 'tags',
    pattern: new RegExp(`^/v2/${NAME}/tags/list$`),
    keys: ['name'],
    methods: { GET: { id: 'end-8', action: 'pull', handler: listTags } },
  },
  {
    name: 'referrers',
    pattern: new RegExp(`^/v2/${NAME}/referrers/([^/]+)$`),
    keys: ['name', 'digest'],
    methods: { GET: { id: 'end-12', action: 'pull', handler: listReferrers } },
  },
];

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

export function matchRoute(pathname: string): RouteMatch | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(pathname);
    if (!m) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((k, i) => (params[k] = m[i + 1] as string));
    return { route, params };
  }
  return undefined;
}
