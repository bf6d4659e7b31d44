import { defineConfig } from 'vitest/config';

// Three groups, run in this order by `npm test`:
// - unit: pure code and in-process servers, parallel;
// - integration: real peers (docker engine, registry clients, browsers), a few files at a time;
// - e2e: whole stacks on the real engine behind Traefik; they share ports 80/443, so one file at a time.
// `long` holds the soak and many-kill runs, only for `npm run test:long`.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/browser/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'long',
          include: ['test/long/**/*.test.ts'],
          testTimeout: 3_600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
