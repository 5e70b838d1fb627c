/**
 * Example 31: cancel a running job from the client.
 *
 * `export_report` holds a resource (released by a finalizer) and runs for a long time. Once it
 * is running, `client.cancel(id)` marks it (`metadata.cancel_attempted_at`) and River's control
 * notification tells the runner to interrupt it: the finalizer runs, and the row ends
 * `cancelled` with `JobCancelError: job cancelled remotely` in its errors.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/31_cancel-from-client.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Deferred, Effect, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Runner, Worker } from "../src/index.ts"

const schema = "example_cancel_from_client"

const ExportReport = JobKind.make("export_report", { args: Schema.Struct({ reportId: Schema.Int }) })

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })

  const started = yield* Deferred.make<void>()
  const log = yield* Ref.make<ReadonlyArray<string>>([])
  const note = (line: string) => Ref.update(log, (lines) => [...lines, line])

  const exportReport = Worker.make(ExportReport, (job) =>
    Effect.gen(function*() {
      // A resource held while the job runs: its release runs however the job ends.
      yield* Effect.acquireRelease(
        note(`opened export file for report ${job.args.reportId}`),
        () => note("closed export file")
      )
      yield* Deferred.succeed(started, undefined)
      yield* Effect.sleep("1 hour") // a long export
    }).pipe(Effect.scoped), { timeout: "2 hours" })

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [exportReport],
    fetchPollInterval: "100 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ExportReport, { reportId: 7 })
    yield* Deferred.await(started)

    // The job is running: cancel asks the runner that runs it to stop it.
    const afterCancel = yield* client.cancel(job.id)

    let event = yield* PubSub.take(events)
    while (event.job.id !== job.id) event = yield* PubSub.take(events)

    const row = yield* client.get(job.id)
    return {
      stateWhenCancelReturned: afterCancel.state,
      cancelRequested: typeof afterCancel.metadata.cancel_attempted_at === "string",
      outcome: event.kind,
      state: row.state,
      errors: row.errors.map((e) => e.error),
      log: yield* Ref.get(log),
      stillRunning: (yield* runner.running).length
    }
  }).pipe(Effect.scoped, Effect.provide(RunnerLive))
})

if (import.meta.main) {
  program.pipe(
    Effect.tap((result) => Console.log(JSON.stringify(result, null, 2))),
    Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "postgres://localhost:5432/postgres") })),
    NodeRuntime.runMain
  )
}
