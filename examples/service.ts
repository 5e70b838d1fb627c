/**
 * A long-running worker process, as you would deploy one.
 *
 * - Configuration from the environment through Effect `Config`: `DATABASE_URL` (required),
 *   `RIVER_SCHEMA` (default: the connection's search_path), `RIVER_QUEUES` (`name:maxWorkers,…`,
 *   default `default:10`), `RIVER_SOFT_STOP_TIMEOUT` (default `10 seconds`). A missing or bad
 *   variable stops the process at start with one message naming it.
 * - River's migrations are applied before the runner starts (`Migrator.layer`), so the runner never
 *   meets a schema that is behind.
 * - `Layer.launch` keeps the runner up until the process is told to stop; `NodeRuntime.runMain`
 *   turns SIGINT/SIGTERM into interruption, which closes the runner's scope: a graceful stop. It
 *   stops fetching, lets running jobs finish for up to `RIVER_SOFT_STOP_TIMEOUT`, interrupts the
 *   rest (they go back to `available`, their attempt given back) and writes every outcome.
 * - A second SIGINT/SIGTERM during that wait stops at once: `runner.interruptRunning` interrupts
 *   the running jobs now (back to `available` as well), and the process exits.
 * - Exit code 0 after a stop by signal; 1 when the service fails (a database it cannot reach…).
 *
 * Run it: `DATABASE_URL=postgres://… node examples/service.ts`, insert `example_sleep` jobs (args
 * `{ "millis": 1000 }`) from anywhere — another process, River in Go, `psql` — and press Ctrl-C.
 * `examples/service.test.ts` runs it as a child process.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Cause, Config, Effect, Exit, Layer, Option, Runtime, Schema } from "effect"
import { JobKind, Migrator, Runner, Worker } from "../src/index.ts"

/** A job that takes `millis` of work; interruptible, as Effect work is. */
export const Sleep = JobKind.make("example_sleep", { args: Schema.Struct({ millis: Schema.Int }) })

const SleepWorker = Worker.make(Sleep, (job) =>
  Effect.sleep(job.args.millis).pipe(
    Effect.andThen(Effect.logInfo("slept")),
    Effect.annotateLogs({ jobId: String(job.id), millis: job.args.millis })
  ))

const schema = Config.String("RIVER_SCHEMA").pipe(Config.option, Config.map(Option.getOrUndefined))

/** Migrations for the configured schema, applied when the layer is built. */
const MigrationsLive = Layer.unwrap(Effect.map(schema, (schema) => Migrator.layer({ schema })))

const RunnerLive = Runner.layerConfig({
  workers: [SleepWorker],
  schema,
  queues: Runner.queuesConfig("RIVER_QUEUES", "default:10"),
  softStopTimeout: Config.Duration("RIVER_SOFT_STOP_TIMEOUT").pipe(Config.withDefault("10 seconds"))
})

/**
 * A second SIGINT/SIGTERM interrupts the running jobs at once, so the graceful stop the first one
 * started finishes now. (The first is `NodeRuntime.runMain`'s: it interrupts the program.)
 */
const SecondSignalLive = Layer.effectDiscard(Effect.gen(function*() {
  const runner = yield* Runner.Runner
  const context = yield* Effect.context<never>()
  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1
    if (signals === 1) {
      Effect.runForkWith(context)(Effect.logInfo(`${signal}: stopping gracefully (again to stop at once)`))
    } else if (signals === 2) {
      Effect.runForkWith(context)(
        Effect.logWarning(`${signal} again: interrupting the running jobs now`).pipe(Effect.andThen(runner.interruptRunning))
      )
    }
  }
  // Not removed on release: it must outlive the runner's release (the graceful stop), and the
  // process exits right after.
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  yield* Effect.logInfo("worker started").pipe(Effect.annotateLogs({ queues: runner.queues.join(","), id: runner.id }))
}))

const DatabaseLive = PgClient.layerConfig({ url: Config.Redacted("DATABASE_URL") })

/** The whole service: database → migrations → runner → signal handling. */
export const ServiceLive = SecondSignalLive.pipe(
  Layer.provide(RunnerLive),
  Layer.provide(MigrationsLive),
  Layer.provide(DatabaseLive)
)

/** Exit 0 for a stop by signal (an interruption), the default codes otherwise. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

if (import.meta.main) {
  Layer.launch(ServiceLive).pipe(NodeRuntime.runMain({ teardown }))
}
