import { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { UserPermissions } from '../../ops/users.js';
import type { Output } from '../../common/io.js';
import { outputFor, patternOptions, stackDir } from './day-two.js';
import { readStdinSecret } from '../../common/stdin.js';
import { defaultEngineFactory, type EngineFactory } from './stack-engine.js';

interface PermFlags {
  dir?: string;
  admin?: boolean;
  pull?: string[];
  push?: string[];
  delete?: string[];
  json?: boolean;
}

function describe(p: UserPermissions): string {
  if (p.admin) return 'admin (everything)';
  if (p.rules.length === 0) return 'nothing';
  return p.rules.map((r) => `${r.actions.join('+')} on ${r.repos}`).join('; ');
}

function permissionOptions(cmd: Command): Command {
  return patternOptions(
    cmd
      .option('--dir <dir>', 'stack directory (default: the current directory)')
      .option('--admin', 'every action on every repository, and the admin API'),
  ).option('--json', 'print one JSON document');
}

function reloadNote(out: Output, reloaded: boolean): void {
  if (reloaded) out.ok('The registry applied the change');
}

export function usersCommand(ctx: CliContext, engineFactory: EngineFactory = defaultEngineFactory): Command {
  const users = new Command('users').description('list, add, change and remove registry users and their permissions');

  users.addCommand(
    new Command('list')
      .description('list users, their permissions and whether they can sign in')
      .option('--dir <dir>', 'stack directory (default: the current directory)')
      .option('--json', 'print one JSON document')
      .action(async (flags: { dir?: string; json?: boolean }) => {
        const { listUsers, readUsersFiles } = await import('../../ops/users.js');
        const list = listUsers(await readUsersFiles(stackDir(ctx, flags.dir)));
        if (flags.json) {
          ctx.out.json(list);
          return;
        }
        const width = Math.max(4, ...list.map((u) => u.name.length));
        for (const u of list) {
          const notes = [u.envAdmin ? 'used by regctl (.env)' : '', u.hasPassword ? '' : 'no password: cannot sign in']
            .filter(Boolean)
            .join(', ');
          ctx.out.line(`${u.name.padEnd(width)}  ${describe(u)}${notes ? `  ${ctx.out.color.dim(`(${notes})`)}` : ''}`);
        }
      }),
  );

  users.addCommand(
    permissionOptions(
      new Command('add')
        .argument('<name>', 'user name')
        .description('add a user with a generated password (shown once) or one from stdin'),
    )
      .option('--password-stdin', 'read the password from stdin instead of generating one')
      .action(async (name: string, flags: PermFlags & { passwordStdin?: boolean }) => {
        const { addUser, permissionsFromFlags } = await import('../../ops/users.js');
        const out = outputFor(ctx.out, flags.json);
        const password = flags.passwordStdin ? await readStdinSecret(ctx.stdin) : undefined;
        const r = await addUser({
          dir: stackDir(ctx, flags.dir),
          name,
          permissions: permissionsFromFlags(flags),
          ...(password !== undefined ? { password } : {}),
          out,
          env: ctx.env,
          engine: engineFactory(ctx),
        });
        if (flags.json) {
          out.json(r);
          return;
        }
        out.ok(`User ${r.user} added: ${describe(r.permissions)}`);
        if (r.password) out.line(`  Password (shown once, not stored anywhere readable): ${r.password}`);
        reloadNote(out, r.reloaded);
      }),
  );

  users.addCommand(
    permissionOptions(
      new Command('set').argument('<name>', 'user name').description("replace a user's permissions"),
    ).action(async (name: string, flags: PermFlags) => {
      const { permissionsFromFlags, setUser } = await import('../../ops/users.js');
      const out = outputFor(ctx.out, flags.json);
      const r = await setUser({
        dir: stackDir(ctx, flags.dir),
        name,
        permissions: permissionsFromFlags(flags),
        out,
        env: ctx.env,
        engine: engineFactory(ctx),
      });
      if (flags.json) {
        out.json(r);
        return;
      }
      out.ok(`User ${r.user} now has: ${describe(r.permissions)}`);
      reloadNote(out, r.reloaded);
    }),
  );

  users.addCommand(
    new Command('remove')
      .argument('<name>', 'user name')
      .description('remove a user: password, permissions and pending grace secrets')
      .option('--dir <dir>', 'stack directory (default: the current directory)')
      .option('--json', 'print one JSON document')
      .action(async (name: string, flags: { dir?: string; json?: boolean }) => {
        const { removeUser } = await import('../../ops/users.js');
        const out = outputFor(ctx.out, flags.json);
        const r = await removeUser({
          dir: stackDir(ctx, flags.dir),
          name,
          out,
          env: ctx.env,
          engine: engineFactory(ctx),
        });
        if (flags.json) {
          out.json(r);
          return;
        }
        out.ok(`User ${r.user} removed`);
        reloadNote(out, r.reloaded);
      }),
  );
  return users;
}
