import { RegistryError } from '../errors.js';
import { sendJson } from '../http/context.js';
import { isValidName } from '../reference.js';
import { RetentionBusyError, runRetention } from '../policy/retention-run.js';
import type { AdminModule } from './types.js';

function invalid(field: string, reason: string): RegistryError {
  return new RegistryError('INVALID_REQUEST', { field, reason }, { message: 'invalid retention request' });
}

/**
 * POST /admin/v1/retention { dryRun?, repository? } runs the retention rules now (policy/retention-run.ts) and
 * answers the report: every tag and manifest of each governed repository, kept or removed, with the reason.
 * `dryRun` defaults to true: removing is asked for explicitly (`regctl retention run`). Blobs are left to the GC.
 * A run while another runs anywhere is refused with 409 `RETENTION_RUNNING` naming it.
 */
export const retentionModule: AdminModule = (register) =>
  register({
    method: 'POST',
    path: 'retention',
    adminOnly: true,
    handler: async ({ ctx, services, json }) => {
      const body = await json();
      if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw invalid('dryRun', 'must be a boolean');
      const repository = body.repository;
      if (repository !== undefined && (typeof repository !== 'string' || !isValidName(repository)))
        throw invalid('repository', 'must be a repository name');
      const policies = services.policies?.current;
      if (!policies || policies.retention.rules.length === 0)
        throw new RegistryError(
          'INVALID_REQUEST',
          { reason: 'no retention rules are configured (policies.retention.rules in the config file)' },
          { message: 'no retention rules' },
        );
      try {
        const report = await runRetention(services.store, policies, {
          dryRun: body.dryRun !== false,
          ...(repository !== undefined ? { repository } : {}),
          beforeRemoving: () => services.fence.waitWritable(),
        });
        services.log('info', 'retention', { dryRun: report.dryRun, removed: report.removed, trigger: 'admin API' });
        sendJson(ctx, 200, report);
      } catch (err) {
        if (err instanceof RetentionBusyError)
          throw new RegistryError(
            'RETENTION_RUNNING',
            { reason: err.message, ...(err.heldBy ? { runningRetention: err.heldBy } : {}) },
            { headers: { 'Retry-After': '30' } },
          );
        throw err;
      }
    },
  });
