// Lint for the whole TypeScript tree: typescript-eslint's type-checked recommended rules, plus the size limits
// the project keeps (a file over 450 lines or a function over 120 is a room to split). Formatting is Prettier's
// job (`npm run format`), the import layering dependency-cruiser's (`npm run lint:deps`).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'bench/out/**', 'node_modules/**', 'stacks/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // An async function without await still turns a throw into a rejection, which callers rely on.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'max-lines': ['error', { max: 450 }],
      'max-lines-per-function': ['error', { max: 120 }],
    },
  },
  {
    // A test file's describe() callback groups its cases; it is not a function to split. Helpers are.
    files: ['test/**/*.test.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },
  {
    // Tests read JSON answers and use vitest's asymmetric matchers (expect.any, expect.objectContaining), which are
    // typed \`any\`: checking their shape is what the assertions themselves do.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
);
