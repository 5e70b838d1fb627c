/**
 * Example 30: a worker cancels its own job.
 *
 * `ship_order` finds that the order was withdrawn and returns `JobCancel.of(reason)`. The job has
 * ten attempts, yet it is not retried: it ends `cancelled` after one run, with the reason in its
 * `errors` (River's `JobCancelError: <reason>`).
 *
 * Run it: `DATABASE_URL=postgres://... node examples/30_cancel-from-inside.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Effect, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobCancel, JobKind, Migrator, Runner, Worker } from "../src/index.ts"

const schema = "example_cancel_from_inside"

const ShipOrder = JobKind.make("ship_order", {
  args: Schema.Struct({ orderId: Schema.Int }),
  options: { maxAttempts: 10 }
})

/** Orders the customer withdrew (in real life: a lookup). */
const withdrawn = new Set([42])

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })

  const runs = yield* Ref.make(0)
  const shipOrder = Worker.make(ShipOrder, (job) =>
    Effect.gen(function*() {
      yield* Ref.update(runs, (n) => n + 1)
      if (withdrawn.has(job.args.orderId)) {
        // Cancels for good, whatever attempts remain.
        return yield* JobCancel.of(`order ${job.args.orderId} was withdrawn`)
      }
      // ... ship it ...
    }))

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [shipOrder],
    fetchPollInterval: "100 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ShipOrder, { orderId: 42 })
    let event = yield* PubSub.take(events)
    while (event.job.id !== job.id) event = yield* PubSub.take(events)

    const row = yield* client.get(job.id)
    return {
      outcome: event.kind,
      state: row.state,
      attempt: row.attempt,
      maxAttempts: row.maxAttempts,
      finalized: row.finalizedAt !== null,
      errors: row.errors.map((e) => e.error),
      runs: yield* Ref.get(runs)
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
