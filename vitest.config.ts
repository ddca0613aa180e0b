import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration tests bind their own free ports, so files can run in parallel; two workers match CI's 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
