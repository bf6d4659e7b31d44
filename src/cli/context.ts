import type { Output, Prompts } from '../common/io.js';

/** What every command receives: nothing global, so each test builds its own. */
export interface CliContext {
  out: Output;
  prompts: Prompts;
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream;
}
