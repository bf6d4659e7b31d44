/**
 * PostgreSQL for the tests: the throwaway cluster lives in bench/lib/postgres.ts (the bench's S3 phase starts the
 * same one for its replicas' metadata); this adds the precondition, which under CI=true fails instead of skipping.
 */
import { postgresBinDir } from '../../bench/lib/postgres.js';
import { preconditionMet } from './peers.js';

export { postgresBinDir, startPostgres, writePasswordFile, type PostgresCluster } from '../../bench/lib/postgres.js';

/** For `describe.skipIf(!postgresAvailable())`: under CI=true a missing PostgreSQL fails instead. */
export function postgresAvailable(): boolean {
  return preconditionMet(
    'PostgreSQL',
    postgresBinDir() !== undefined,
    "Debian's postgresql is not installed; run: bash test/setup/provision.sh",
  );
}
