import { sendJson } from '../http/context.js';
import { runFsck } from '../storage/fsck.js';
import type { AdminModule } from './types.js';

/** GET /admin/v1/fsck[?repair=1] → { problems, repaired, blobsChecked } */
export const fsckModule: AdminModule = (register) =>
  register({
    method: 'GET',
    path: 'fsck',
    adminOnly: true,
    handler: async ({ ctx, services }) => {
      const repair = ['1', 'true'].includes(ctx.url.searchParams.get('repair') ?? '');
      if (repair) await services.fence.waitWritable();
      const report = await runFsck(services.store, { repair });
      sendJson(ctx, 200, report);
    },
  });
