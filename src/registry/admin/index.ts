/** Every admin API module; add a module file next to these and list it here. */
import { backupModule } from './backup.js';
import { diskModule } from './disk.js';
import { eventsModule } from './events.js';
import { fenceModule } from './fence.js';
import { fsckModule } from './fsck.js';
import { gcModule } from './gc.js';
import { reloadModule } from './reload.js';
import { repositoryDeleteModule } from './repository-delete.js';
import { repositoryPoliciesModule } from './repository-policies.js';
import { retentionModule } from './retention.js';
import { robotsModule } from './robots.js';
import type { AdminModule } from './types.js';
import { usageModule } from './usage.js';
import { whoamiModule } from './whoami.js';

export const ADMIN_MODULES: AdminModule[] = [
  whoamiModule,
  usageModule,
  gcModule,
  fenceModule,
  fsckModule,
  reloadModule,
  backupModule,
  diskModule,
  retentionModule,
  repositoryDeleteModule,
  robotsModule,
  eventsModule,
  repositoryPoliciesModule,
];
