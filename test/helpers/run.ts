import { execFile } from 'node:child_process';

/** Runs a program to completion; resolves with its output (stdout then stderr, or stdout only), rejects with both on failure. */
export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string; stdoutOnly?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 240_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(opts.stdoutOnly ? stdout : `${stdout}${stderr}`);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
