/**
 * Example 43: steps whose checkpoint commits with the work, in one transaction.
 *
 * `import_orders` copies orders in batches. Each batch runs in `sql.withTransaction`: it inserts
 * the batch's rows and writes the checkpoint with `Resumable.commitCursor(batch)` on the same
 * connection, so both commit or neither does. The first step (`open_import`) does the same with
 * `Resumable.commitStep`.
 *
 * On the first attempt, batch 2 fails after inserting its rows and writing its checkpoint: the
 * transaction rolls back, leaving neither. The retry skips `open_import`, starts after batch 1
 * (the last committed one), and every order ends up imported once. Unlike `setCursor`, the
 * checkpoint is in the database as soon as the batch commits, so even a crash of the process
 * would lose nothing.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/43_transactional-step.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, Option, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Resumable, Runner, Worker } from "../src/index.ts"

const schema = "example_transactional_step"

const ImportOrders = JobKind.make("import_orders", { args: Schema.Struct({ source: Schema.String }) })

/** The source, in batches of order numbers (in real life: pages of an API). */
const batches: ReadonlyArray<ReadonlyArray<number>> = [[101, 102], [103, 104], [105, 106]]

class InvalidBatch extends Data.TaggedError("InvalidBatch")<{ readonly batch: number }> {
  override get message(): string {
    return `batch ${this.batch} failed validation`
  }
}

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })
  yield* sql.unsafe(`CREATE TABLE ${schema}.imports (job_id bigint PRIMARY KEY, source text)`)
  yield* sql.unsafe(`CREATE TABLE ${schema}.orders (order_no int, job_id bigint, batch int)`)

  const log = yield* Ref.make<ReadonlyArray<string>>([])
  const note = (line: string) => Ref.update(log, (lines) => [...lines, line])

  /** The cursor as stored in the database right now (outside any transaction of the worker). */
  const storedCursor = (id: bigint) =>
    Effect.map(
      sql<{ cursor: unknown }>`SELECT metadata -> ${Resumable.CURSOR_KEY} -> 'copy_batches' AS cursor
        FROM ${sql(schema)}.river_job WHERE id = ${id}`,
      (rows) => rows[0]?.cursor ?? null
    )

  const importOrders = Worker.make(
    ImportOrders,
    (job) =>
      Effect.gen(function*() {
        yield* Resumable.step(
          "open_import",
          sql.withTransaction(Effect.gen(function*() {
            yield* note(`attempt ${job.attempt}: open_import`)
            yield* sql`INSERT INTO ${sql(schema)}.imports (job_id, source) VALUES (${job.id}, ${job.args.source})`
            yield* Resumable.commitStep // the step is recorded as completed in this transaction
          }))
        )

        yield* Resumable.stepCursor("copy_batches", Schema.Int, (cursor) =>
          Effect.gen(function*() {
            const after = Option.getOrElse(cursor, () => 0)
            const [{ n }] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.orders`
            yield* note(`attempt ${job.attempt}: copy_batches starts after batch ${after}, ${n} orders in the table`)

            for (let batch = after + 1; batch <= batches.length; batch++) {
              yield* sql.withTransaction(Effect.gen(function*() {
                for (const orderNo of batches[batch - 1]!) {
                  yield* sql`INSERT INTO ${sql(schema)}.orders (order_no, job_id, batch) VALUES (${orderNo}, ${job.id}, ${batch})`
                }
                yield* Resumable.commitCursor(batch)
                // Something goes wrong after the rows and the checkpoint were written: both roll back.
                if (job.attempt === 1 && batch === 2) return yield* new InvalidBatch({ batch })
              }))
              yield* note(`attempt ${job.attempt}: batch ${batch} committed, stored cursor ${yield* storedCursor(job.id)}`)
            }
          }))
      }),
    { retryPolicy: () => "50 millis" }
  )

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [importOrders],
    fetchCooldown: "10 millis",
    fetchPollInterval: "25 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ImportOrders, { source: "legacy-shop" })
    const outcomes: Array<{ kind: string; metadata: unknown }> = []
    while (outcomes.at(-1)?.kind !== "completed") {
      const event = yield* PubSub.take(events)
      if (event.job.id === job.id) outcomes.push({ kind: event.kind, metadata: event.job.metadata })
    }

    const orders = yield* sql<{ orderNo: number }>`SELECT order_no AS "orderNo" FROM ${sql(schema)}.orders ORDER BY 1`
    const imports = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(schema)}.imports`
    const row = yield* client.get(job.id)
    return {
      outcomes,
      log: yield* Ref.get(log),
      state: row.state,
      attempt: row.attempt,
      errors: row.errors.map((e) => e.error),
      orders: orders.map((o) => o.orderNo),
      imports: imports[0]!.n
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
