/**
 * Example 40: a resumable pipeline, download → transform → load.
 *
 * Each stage is a `Resumable.step`. The transform fails on the first attempt; the retry skips
 * the download, which the first attempt completed (the job's metadata records
 * `river:resumable_step = "download"`), so the file is downloaded once.
 *
 * Steps return nothing across attempts (as in River): a step leaves its result where the next
 * one can find it, here an object store keyed by job id, and the loaded rows in a table.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/40_resumable-pipeline.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Resumable, Runner, Worker } from "../src/index.ts"

const schema = "example_resumable_pipeline"

const ImportSales = JobKind.make("import_sales", { args: Schema.Struct({ url: Schema.String }) })

class ParserUnavailable extends Data.TaggedError("ParserUnavailable")<{}> {
  override get message(): string {
    return "parser service unavailable"
  }
}

/** The "remote file" the job downloads. */
const remoteCsv = "sku,qty\napple,3\npear,5\nplum,2"

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })
  yield* sql.unsafe(`CREATE TABLE ${schema}.sales (job_id bigint, sku text, qty int)`)

  const downloads = yield* Ref.make(0)
  const log = yield* Ref.make<ReadonlyArray<string>>([])
  // Where steps leave their results for later steps (S3, a disk, a table...).
  const store = yield* Ref.make(new Map<string, string>())
  const put = (key: string, value: string) => Ref.update(store, (m) => new Map(m).set(key, value))
  const get = (key: string) => Effect.map(Ref.get(store), (m) => m.get(key)!)

  const importSales = Worker.make(
    ImportSales,
    (job) =>
      Effect.gen(function*() {
        const note = (stage: string) => Ref.update(log, (lines) => [...lines, `${stage} (attempt ${job.attempt})`])

        yield* Resumable.step(
          "download",
          Effect.gen(function*() {
            yield* note("download")
            yield* Ref.update(downloads, (n) => n + 1)
            yield* put(`${job.id}/raw.csv`, remoteCsv) // pretend: fetch job.args.url
          })
        )

        yield* Resumable.step(
          "transform",
          Effect.gen(function*() {
            yield* note("transform")
            if (job.attempt === 1) return yield* new ParserUnavailable()
            const [, ...lines] = (yield* get(`${job.id}/raw.csv`)).split("\n")
            const rows = lines.map((line) => {
              const [sku, qty] = line.split(",")
              return { sku: sku!, qty: Number(qty) }
            })
            yield* put(`${job.id}/rows.json`, JSON.stringify(rows))
          })
        )

        yield* Resumable.step(
          "load",
          Effect.gen(function*() {
            yield* note("load")
            const rows = JSON.parse(yield* get(`${job.id}/rows.json`)) as Array<{ sku: string; qty: number }>
            for (const row of rows) {
              yield* sql`INSERT INTO ${sql(schema)}.sales (job_id, sku, qty) VALUES (${job.id}, ${row.sku}, ${row.qty})`
            }
          })
        )
      }),
    { retryPolicy: () => "50 millis" } // River's first retry would wait ~1 s
  )

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [importSales],
    fetchCooldown: "10 millis",
    fetchPollInterval: "25 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ImportSales, { url: "https://example.com/sales.csv" })
    const outcomes: Array<{ kind: string; checkpoint: unknown }> = []
    while (outcomes.at(-1)?.kind !== "completed") {
      const event = yield* PubSub.take(events)
      if (event.job.id === job.id) {
        outcomes.push({ kind: event.kind, checkpoint: event.job.metadata[Resumable.STEP_KEY] ?? null })
      }
    }

    const row = yield* client.get(job.id)
    const loaded = yield* sql<{ sku: string; qty: number }>`
      SELECT sku, qty FROM ${sql(schema)}.sales WHERE job_id = ${job.id} ORDER BY sku`
    return {
      outcomes,
      state: row.state,
      attempt: row.attempt,
      downloads: yield* Ref.get(downloads),
      log: yield* Ref.get(log),
      loaded: loaded.map((r) => `${r.sku}=${r.qty}`)
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
