/**
 * Child process of the backlog benchmark: works every queued job of the database it is given
 * with a no-op worker, then reports the elapsed time, its own peak RSS and what it sized its heap
 * from on stdout as JSON.
 * Usage: node bench/backlog-runner.ts <database url>
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import { getHeapStatistics } from "node:v8"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"

const url = process.argv[2]!
const Noop = JobKind.make("bench_noop", { args: Schema.Struct({ n: Schema.Int }) })

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const started = performance.now()
  yield* Runner.make({
    queues: { default: { maxWorkers: 1_000 } },
    workers: [Worker.make(Noop, () => Effect.void)],
    fetchCooldown: "2 millis",
    fetchPollInterval: "20 millis"
  })
  while (true) {
    yield* Effect.sleep("250 millis")
    const [row] = yield* sql.unsafe<{ left: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM river_job WHERE state IN ('available', 'running')) AS left`
    )
    if (!row!.left) break
  }
  const seconds = (performance.now() - started) / 1000
  return {
    seconds,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    // What Node sized its default heap from, and the result (a memory cgroup lowers both).
    constrainedMb: process.constrainedMemory() / 1024 ** 2,
    heapLimitMb: getHeapStatistics().heap_size_limit / 1024 ** 2
  }
}).pipe(Effect.scoped)

const result = await Effect.runPromise(
  program.pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 8 })),
    Effect.provideService(References.MinimumLogLevel, "Warn")
  )
)
process.stdout.write(`${JSON.stringify(result)}\n`)


