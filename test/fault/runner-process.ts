/**
 * A runner in a process of its own for the fault suite.
 *
 * `node test/fault/runner-process.ts '<RunnerConfig JSON>'`, forked with an IPC channel by
 * fault.test.ts. Sends `{ type: "ready" }` once the runner runs (LISTEN up, election started).
 * SIGTERM (or a `stop` message) is a graceful stop; a lost parent exits at once.
 * Every handler execution is recorded in `<schema>.fault_executions` (autocommit insert, or
 * inside the step's transaction for the two-step job).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Resumable from "../../src/Resumable.ts"
import * as Runner from "../../src/Runner.ts"
import * as Worker from "../../src/Worker.ts"
import { type ChildMessage, Flow, Noop, type RunnerConfig, Sleep, TwoSteps } from "./kinds.ts"

const raw = process.argv[2]
if (raw === undefined || process.send === undefined) {
  console.error("usage: forked by test/fault/fault.test.ts with a RunnerConfig JSON argument")
  process.exit(2)
}
const config = JSON.parse(raw) as RunnerConfig
const send = (message: ChildMessage) => {
  try {
    process.send?.(message)
  } catch {
    // parent gone
  }
}

let stop: () => void = () => {}
const stopped = new Promise<void>((resolve) => {
  stop = resolve
})
process.on("SIGTERM", () => stop())
process.on("message", (message: { type?: string }) => {
  if (message?.type === "stop") stop()
})
process.on("disconnect", () => process.exit(1))

const table = `${config.schema}.fault_executions`

const record = (jobId: bigint, attempt: number, step = "run") =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`INSERT INTO ${table} (job_id, runner_id, step, attempt) VALUES ($1, $2, $3, $4)`, [
      jobId,
      config.id,
      step,
      attempt
    ]))

const NoopWorker = Worker.make(Noop, (job) => record(job.id, job.attempt))

const SleepWorker = Worker.make(Sleep, (job) => Effect.andThen(record(job.id, job.attempt), Effect.sleep(job.args.ms)))

const FlowWorker = Worker.make(Flow, (job) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(
      `INSERT INTO ${config.schema}.flow_log (job_id, attempt, runner_id, customer) VALUES ($1, $2, $3, $4)`,
      [job.id, job.attempt, config.id, job.args.customer]
    )
    yield* Effect.sleep(job.args.ms)
    yield* sql.unsafe(
      `UPDATE ${config.schema}.flow_log SET ended_at = clock_timestamp() WHERE job_id = $1 AND attempt = $2`,
      [job.id, job.attempt]
    )
  }))

const TwoStepsWorker = Worker.make(TwoSteps, (job) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Resumable.step(
      "first",
      sql.withTransaction(Effect.andThen(record(job.id, job.attempt, "first"), Resumable.commitStep))
    )
    yield* Resumable.step(
      "second",
      Effect.andThen(
        record(job.id, job.attempt, "second"),
        job.attempt === 1 ? Effect.sleep("1 minute") : Effect.void
      )
    )
  }), { timeout: config.stepsTimeout })

const program = Effect.gen(function*() {
  yield* Runner.make({
    id: config.id,
    schema: config.schema,
    queues: {
      default: {
        maxWorkers: config.maxWorkers,
        fetchPollInterval: config.fetchPollInterval,
        ...config.limits,
        rateLimit: config.limits?.rateLimit === undefined
          ? undefined
          : { limit: config.limits.rateLimit.limit, per: config.limits.rateLimit.per }
      }
    },
    workers: [NoopWorker, SleepWorker, TwoStepsWorker, FlowWorker],
    jobTimeout: config.jobTimeout,
    rescueStuckJobsAfter: config.rescueStuckJobsAfter,
    rescuerInterval: config.rescuerInterval,
    schedulerInterval: config.schedulerInterval,
    fetchPollInterval: config.fetchPollInterval,
    softStopTimeout: config.softStopTimeout,
    leadership: config.leadership,
    retryPolicy: () => "100 millis",
    retention: { completed: "forever", cancelled: "forever", discarded: "forever" }
  })
  send({ type: "ready", id: config.id, pid: process.pid })
  yield* Effect.promise(() => stopped)
})

Effect.runPromise(
  program.pipe(
    Effect.scoped,
    // The runner's id names its connections, so the suite can tell when a killed runner's
    // statements are all over (its backends are gone).
    Effect.provide(PgClient.layer({ url: Redacted.make(config.url), maxConnections: config.maxConnections, applicationName: config.id }))
  )
).then(
  () => process.exit(0),
  (error: unknown) => {
    send({ type: "error", message: String(error) })
    console.error(`runner ${config.id} failed:`, error)
    process.exit(1)
  }
)
