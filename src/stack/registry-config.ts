/**
 * `auth/registry.yaml`: the registry's own config file (`regctl serve --config`), rendered when regctl.yaml has
 * `policies:`. It sits beside auth/access.yaml in the directory the registry already mounts, so a re-render is seen
 * by the running registry, which re-reads it when it changes (policy/holder.ts) with no restart. Without policies
 * there is no file and no `--config`, so stacks without policies render exactly as before.
 */
import { stringify } from 'yaml';
import type { StackConfig } from '../config/schema.js';

export const REGISTRY_CONFIG_FILE = 'auth/registry.yaml';

const HEADER = [
  '# The registry config file (regctl serve --config), rendered by regctl from the policies: and events: of regctl.yaml.',
  '# Edit regctl.yaml, then `regctl init --force`: the running registry applies the new policies within seconds.',
].join('\n');

/**
 * The file's text, or undefined when the config has neither policies nor events. An event endpoint's
 * `secretFile` is read relative to this file, so a secret put in the stack's `auth/` is named by its file name.
 */
export function registryConfigText(config: StackConfig): string | undefined {
  if (config.policies === undefined && config.events === undefined) return undefined;
  return `${HEADER}\n${stringify({
    ...(config.policies ? { policies: config.policies } : {}),
    ...(config.events ? { events: config.events } : {}),
  })}`;
}
