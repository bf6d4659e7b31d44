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
