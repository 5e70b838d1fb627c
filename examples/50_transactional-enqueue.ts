/**
 * Example 50: enqueue a job in the same transaction as your business rows.
 *
 * `client.insert` joins the caller's `sql.withTransaction`. A checkout that fails after inserting
 * its order and its `send_receipt` job rolls back both: no order, no job, no notification, and
 * the worker never hears of it. A checkout that commits keeps both, and the runner sends the
 * receipt. (The transactional outbox without an outbox table.)
 *
 * Run it: `DATABASE_URL=postgres://... node examples/50_transactional-enqueue.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Runner, Worker } from "../src/index.ts"

const schema = "example_transactional_enqueue"

const SendReceipt = JobKind.make("send_receipt", { args: Schema.Struct({ orderId: Schema.Int }) })

class OutOfStock extends Data.TaggedError("OutOfStock")<{ readonly sku: string }> {}

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })
  yield* sql.unsafe(`CREATE TABLE ${schema}.orders (id int PRIMARY KEY, sku text)`)

  const receipts = yield* Ref.make<ReadonlyArray<number>>([])
  const sendReceipt = Worker.make(SendReceipt, (job) => Ref.update(receipts, (xs) => [...xs, job.args.orderId]))

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [sendReceipt],
    fetchPollInterval: "100 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    /** The order row and its receipt job, in one transaction. */
    const checkout = (orderId: number, sku: string) =>
      sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO ${sql(schema)}.orders (id, sku) VALUES (${orderId}, ${sku})`
        const { job } = yield* client.insert(SendReceipt, { orderId })
        if (sku === "sold-out") return yield* new OutOfStock({ sku }) // rolls back the order and the job
        return job.id
      }))

    const count = Effect.gen(function*() {
      const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.orders`
      const { jobs } = yield* client.list({ kinds: ["send_receipt"] })
      return { orders: n, jobs: jobs.length }
    })

    // 1. The transaction fails after both inserts.
    const failed = yield* Effect.flip(checkout(1, "sold-out"))
    const afterRollback = yield* count

    // 2. The transaction commits; the runner picks the job up.
    const jobId = yield* checkout(2, "in-stock")
    const afterCommit = yield* count
    let event = yield* PubSub.take(events)
    while (event.job.id !== jobId) event = yield* PubSub.take(events)

    return {
      rolledBack: { error: failed._tag, ...afterRollback },
      committed: afterCommit,
      outcome: event.kind,
      receiptsSent: yield* Ref.get(receipts)
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
