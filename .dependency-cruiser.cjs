/**
 * The layering of src/ (lowest first): common ← config ← stack ← docker; registry and ui beside them; ops over
 * all of those; cli on top. `npm run lint:deps` fails on any import that points the wrong way or closes a cycle.
 * Type-only imports count: a type import up the stack is as much a layering break as a value import.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'common-is-the-bottom',
      comment: 'src/common holds project-wide building blocks and imports no other src directory.',
      severity: 'error',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'src/cli is the top: only the CLI turns errors into text and exit codes; no other layer imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'registry-does-not-import-ui',
      comment: 'The registry and the web UI are separate programs: they talk over HTTP, never by import.',
      severity: 'error',
      from: { path: '^src/registry/' },
      to: { path: '^src/ui/' },
    },
    {
      name: 'ui-does-not-import-registry',
      comment: 'The registry and the web UI are separate programs: they talk over HTTP, never by import.',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/registry/' },
    },
    {
      name: 'ops-is-above-the-domain',
      comment: 'src/ops composes config, stack, docker, registry and ui; none of those import it.',
      severity: 'error',
      from: { path: '^src/(config|stack|docker|registry|ui)/' },
      to: { path: '^src/ops/' },
    },
    {
      name: 'config-imports-common-only',
      comment: 'The config schema sits just above common: it describes settings, it does not act on them.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: '^src/(common|config)/' },
    },
    {
      name: 'stack-renders-from-config',
      comment:
        'src/stack is pure rendering from the config. Its one reach into the registry is process-env.ts, the node ' +
        'options and environment the registry process must run with, which the stack puts on its command line.',
      severity: 'error',
      from: { path: '^src/stack/' },
      to: { path: '^src/', pathNot: '^src/(common|config|stack)/|^src/registry/process-env[.]ts$' },
    },
    {
      name: 'docker-below-ops',
      comment: 'src/docker applies a rendered stack to the engine; it knows the stack model, not the programs inside.',
      severity: 'error',
      from: { path: '^src/docker/' },
      to: { path: '^src/(registry|ui)/' },
    },
    {
      name: 'registry-and-ui-stand-on-common',
      comment: 'The registry and the UI are programs of their own: besides themselves they import only src/common.',
      severity: 'error',
      from: { path: '^src/(registry|ui)/' },
      to: { path: '^src/(config|stack|docker)/' },
    },
    {
      name: 'chalk-only-in-output',
      comment: "Colours are the CLI output module's business; everything else writes through the Output interface.",
      severity: 'error',
      from: { pathNot: '^src/cli/output[.]ts$' },
      to: { path: 'node_modules/chalk/' },
    },
    {
      name: 'inquirer-only-in-prompts',
      comment: 'Questions go through the Prompts interface, so that tests can script the answers.',
      severity: 'error',
      from: { pathNot: '^src/cli/prompts[.]ts$' },
      to: { path: 'node_modules/(inquirer|@inquirer)/' },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles inside src.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
  },
};
