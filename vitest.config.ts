import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          setupFiles: ['test/helpers/after-file.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          globalSetup: ['test/e2e/global-setup.ts'],
          setupFiles: ['test/helpers/after-file.ts'],
          // Real servers on a two-core machine: one file at a time keeps timings honest.
          fileParallelism: false,
        },
      },
    ],
  },
})
