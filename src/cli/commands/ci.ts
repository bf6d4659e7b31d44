import { Command, Argument } from 'commander';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { RegctlError } from '../../common/errors.js';
import { createOutput } from '../output.js';
import {
  CI_SYSTEMS,
  DEFAULT_CREDENTIALS_ID,
  PIPELINE_FILE,
  renderPipeline,
  secretNames,
  type CiSystem,
} from '../../ops/ci.js';

interface CiOptions {
  dir?: string;
  image: string;
  context: string;
  registry?: string;
  prod?: boolean;
  repos?: string;
  user?: string;
  credentialsId: string;
  out?: string;
  deploy: boolean;
  createUser: boolean;
  expires: string;
  json?: boolean;
}

const REPO_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export function ciCommand(ctx: CliContext): Command {
  return new Command('ci')
    .description(
      'print a ready pipeline (build, tag, push, log out) and create its push-only user (a robot on token stacks)',
    )
    .addArgument(new Argument('<system>', 'CI system').choices([...CI_SYSTEMS]))
    .requiredOption('--image <name>', 'repository the pipeline pushes, e.g. minio or apps/api')
    .option('--context <dir>', 'build context in the project checkout', '.')
    .option('--dir <dir>', 'stack directory (default: the current directory)')
    .option('--registry <address>', 'registry address as image names write it (default: from the stack)')
    .option('--prod', 'use the prod (HTTPS) address of the stack')
    .option('--repos <pattern>', "repositories the pipeline user may push (default: the image's repository)")
    .option('--user <name>', 'name of the pipeline user (default ci-<image>)')
    .option('--credentials-id <id>', 'Jenkins credentials id / secret name prefix', DEFAULT_CREDENTIALS_ID)
    .option('--out <file>', 'write the pipeline to a file instead of stdout')
    .option('--no-deploy', 'Jenkins: leave out the stage that runs the pushed image on the agent')
    .option('--no-create-user', 'only print the pipeline; create no user')
    .option('--expires <duration>', 'token stacks: lifetime of the pipeline robot, e.g. 365d, or never', '365d')
    .option('--json', 'print one JSON document (pipeline, user, and the generated password)')
    .action(async (system: CiSystem, opts: CiOptions) => {
      const { clientAddress } = await import('../../ops/login.js');
      const { addUser } = await import('../../ops/users.js');
      const { atomicWrite } = await import('../../stack/write.js');
      const { addRobot, stackAuthMode } = await import('../../ops/robots.js');
      const { ROBOT_PREFIX } = await import('../../registry/auth/robots.js');
      const { out } = ctx;
      if (!REPO_NAME.test(opts.image)) {
        throw new RegctlError('USAGE', `--image "${opts.image}" is not a repository name`, {
          hint: 'lower-case letters, digits and separators, e.g. apps/api',
        });
      }
      const dir = resolve(ctx.cwd, opts.dir ?? '.');
      const registry = opts.registry ?? (await clientAddress(dir, opts.prod ? { prod: true } : {})).address;
      const name = opts.user ?? `ci-${opts.image.replace(/[^a-z0-9]+/g, '-')}`.slice(0, 63);
      const repos = opts.repos ?? opts.image;
      // Token stacks get a robot (token-only, expiring, revocable) instead of an htpasswd user.
      const robot = opts.createUser && (await stackAuthMode(dir)) === 'token';
      const user = robot ? `${ROBOT_PREFIX}${name}` : name;
      const pipeline = renderPipeline(system, {
        registry,
        image: opts.image,
        context: opts.context,
        credentialsId: opts.credentialsId,
        user,
        deploy: opts.deploy,
      });

      let password: string | undefined;
      const quiet = opts.json ? createOutput(undefined, { quiet: true }) : out;
      if (robot) {
        // Pull is needed too: docker push checks which layers the registry already has.
        const created = await addRobot({
          dir,
          name,
          patterns: { pull: [repos], push: [repos], delete: [] },
          expires: opts.expires,
          out: quiet,
          env: ctx.env,
        });
        password = created.secret;
      } else if (opts.createUser) {
        // Pull is needed too: docker push checks which layers the registry already has.
        const created = await addUser({
          dir,
          name: user,
          permissions: { admin: false, rules: [{ repos, actions: ['pull', 'push'] }] },
          out: quiet,
          env: ctx.env,
        });
        password = created.password;
      }
      if (opts.out) {
        const path = resolve(ctx.cwd, opts.out);
        await mkdir(dirname(path), { recursive: true });
        await atomicWrite(path, pipeline, 0o644);
      }
      if (opts.json) {
        out.json({
          system,
          file: opts.out ?? PIPELINE_FILE[system],
          registry,
          image: opts.image,
          pipeline,
          ...(opts.createUser ? { user, repos, password } : {}),
        });
        return;
      }
      if (!opts.out) process.stdout.write(pipeline);
      const stderr = (line: string) => process.stderr.write(`${line}\n`);
      if (opts.out) out.ok(`pipeline written to ${opts.out} (put it at ${PIPELINE_FILE[system]} in the project)`);
      if (opts.createUser && password) {
        const s = secretNames(opts.credentialsId);
        const where =
          system === 'jenkins'
            ? `Jenkins → Manage Jenkins → Credentials → Add: "Username with password", id ${opts.credentialsId}`
            : system === 'github'
              ? `repository secrets ${s.user} and ${s.password}`
              : `masked CI/CD variables ${s.user} and ${s.password}`;
        stderr(`${robot ? 'robot' : 'user'} ${user} may pull and push ${repos} (not delete); store it as ${where}:`);
        if (robot && system === 'gitlab')
          stderr(`  (untick "Expand variable reference" on ${s.user}: GitLab would read the $ in it as a variable)`);
        stderr(`  user:     ${user}`);
        stderr(`  password: ${password}   (shown once)`);
      }
    });
}
