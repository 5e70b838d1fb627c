/**
 * Example 41: a cursor loop that resumes where it stopped.
 *
 * `resize_images` walks the `images` table in id order inside `Resumable.stepCursor`, and records
 * each finished id with `Resumable.setCursor(id)`. On the first attempt image 6 fails; the
 * cursor (5) is saved in the job's metadata (`river:resumable_cursor`), and the retry starts
 * after it: every image is resized exactly once.
 *
 * `setCursor` keeps the cursor in memory and the runner writes it when the attempt fails; see
 * example 43 for a cursor written in the same transaction as the work.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/41_cursor-loop.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, Option, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Resumable, Runner, Worker } from "../src/index.ts"

const schema = "example_cursor_loop"

const ResizeImages = JobKind.make("resize_images", { args: Schema.Struct({ width: Schema.Int }) })

class ResizeFailed extends Data.TaggedError("ResizeFailed")<{ readonly id: number }> {
  override get message(): string {
    return `could not resize image ${this.id}`
  }
}

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })
  yield* sql.unsafe(`CREATE TABLE ${schema}.images (id int PRIMARY KEY, resized int NOT NULL DEFAULT 0)`)
  yield* sql.unsafe(`INSERT INTO ${schema}.images (id) SELECT generate_series(1, 10)`)

  const starts = yield* Ref.make<ReadonlyArray<string>>([])

  const resizeImages = Worker.make(
    ResizeImages,
    (job) =>
      Resumable.stepCursor("resize", Schema.Number, (cursor) =>
        Effect.gen(function*() {
          const after = Option.getOrElse(cursor, () => 0)
          yield* Ref.update(starts, (xs) => [...xs, `attempt ${job.attempt} starts after ${after}`])
          const images = yield* sql<{ id: number }>`
            SELECT id FROM ${sql(schema)}.images WHERE id > ${after} ORDER BY id`
          for (const { id } of images) {
            if (job.attempt === 1 && id === 6) return yield* new ResizeFailed({ id })
            yield* sql`UPDATE ${sql(schema)}.images SET resized = resized + 1 WHERE id = ${id}` // the work
            yield* Resumable.setCursor(id)
          }
        })),
    { retryPolicy: () => "50 millis" }
  )

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [resizeImages],
    fetchCooldown: "10 millis",
    fetchPollInterval: "25 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ResizeImages, { width: 200 })
    const outcomes: Array<{ kind: string; cursors: unknown }> = []
    while (outcomes.at(-1)?.kind !== "completed") {
      const event = yield* PubSub.take(events)
      if (event.job.id === job.id) {
        outcomes.push({ kind: event.kind, cursors: event.job.metadata[Resumable.CURSOR_KEY] ?? null })
      }
    }

    const images = yield* sql<{ id: number; resized: number }>`
      SELECT id, resized FROM ${sql(schema)}.images ORDER BY id`
    const row = yield* client.get(job.id)
    return {
      outcomes,
      starts: yield* Ref.get(starts),
      state: row.state,
      attempt: row.attempt,
      resizedOnce: images.filter((i) => i.resized === 1).map((i) => i.id),
      resizedTwiceOrMore: images.filter((i) => i.resized > 1).map((i) => i.id),
      notResized: images.filter((i) => i.resized === 0).map((i) => i.id)
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
