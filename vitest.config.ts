import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // The River conformance suite needs Go: `npm run test:river` (vitest.river.config.ts).
    exclude: [...configDefaults.exclude, "test/river/**"],
    globalSetup: ["./test/globalSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file gets its own database; two files at a time keeps a 2-core machine responsive.
    maxWorkers: 2,
    fileParallelism: true
  }
})
