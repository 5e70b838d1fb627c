import { defineConfig } from "vitest/config"

/**
 * The River conformance suite (`npm run test:river`): real River (Go) processes and River UI
 * against effect-river on one embedded PostgreSQL. Needs Go; the default config excludes it.
 */
export default defineConfig({
  test: {
    include: ["test/river/**/*.test.ts"],
    globalSetup: ["./test/globalSetup.ts", "./test/river/globalSetup.ts"],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Each file runs Go processes and effect-river runners of its own: two files at a time.
    maxWorkers: 2,
    fileParallelism: true
  }
})
