/**
 * The embedded PostgreSQL the demo, the test harness and the benchmarks start; implemented in
 * `src/internal/embeddedPostgres.ts`, which `Testing.embeddedPostgres` also uses.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
export * from "../internal/embeddedPostgres.ts"
