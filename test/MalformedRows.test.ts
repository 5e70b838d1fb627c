/**
 * Rows another client could write (the columns accept them) must never stall other jobs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../src/Client.ts"
import { makePgDriver } from "../src/internal/driver/pg/driver.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"

const Task = JobKind.make("task", { args: Schema.Struct({ n: Schema.Number }) })

/** Inserts a job with column values written by hand, as another client could. */
const insertRaw = (schema: string, columns: { readonly metadata?: string; readonly attempt?: number; readonly n: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ id: bigint }>(
      `INSERT INTO "${schema}".river_job (args, kind, max_attempts, metadata, priority, queue, state, scheduled_at, attempt)
       VALUES ($1::jsonb, 'task', 32767, $2::jsonb, 1, 'default', 'available', now() - interval '1 minute', $3)
       RETURNING id`,
      [JSON.stringify({ n: columns.n }), columns.metadata ?? "{}", columns.attempt ?? 0]
    )
    return rows[0]!.id
  })

const storedMetadata = (schema: string, id: bigint) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql.unsafe<{ metadata: string }>(`SELECT metadata::text AS metadata FROM "${schema}".river_job WHERE id = $1`, [id]),
      (rows) => rows[0]!.metadata
    ))

describe("malformed rows", () => {
  it.layer(freshDatabase("malformed"))((it) => {
    it.effect("a job whose metadata is null, a scalar or an array snoozes, fails and completes like any other", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("meta")
        const snoozer = Worker.make(Task, () => Worker.JobSnooze.of("1 hour"))
        const failer = Worker.make(Task, () => Effect.fail("boom"))
        for (const metadata of ["null", "5", "[1]", `"text"`]) {
          const id = yield* insertRaw(schema, { metadata, n: 1 })
          const snoozed = yield* Testing.workJob(snoozer, id, { schema, commit: true })
          assert.strictEqual(snoozed.kind, "snoozed", metadata)
          assert.deepStrictEqual(snoozed.job.metadata, { snoozes: 1 }, metadata)
          assert.strictEqual(yield* storedMetadata(schema, id), `{"snoozes": 1}`, metadata)

          const other = yield* insertRaw(schema, { metadata, n: 2 })
          const failed = yield* Testing.workJob(failer, other, { schema, commit: true })
          assert.strictEqual(failed.kind, "failed", metadata)
          assert.strictEqual(failed.job.state, "available")
          assert.deepStrictEqual(failed.job.metadata, {}, `${metadata} reads as {}`)
        }
      }))

    it.effect("a job whose args carry keys the schema does not declare is worked; the keys are ignored, as Go does", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("extra")
        const seen: Array<unknown> = []
        const worker = Worker.make(Task, (job) => Effect.sync(() => void seen.push(job.args)))
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql.unsafe<{ id: bigint }>(
          `INSERT INTO "${schema}".river_job (args, kind, max_attempts, priority, queue, state)
           VALUES ('{"n": 1, "added_by_a_newer_go_struct": true}', 'task', 25, 1, 'default', 'available') RETURNING id`
        )
        const result = yield* Testing.workJob(worker, row!.id, { schema })
        assert.strictEqual(result.kind, "completed")
        assert.deepStrictEqual(seen, [{ n: 1 }])
      }))

    it.effect("a job whose metadata is null can be cancelled", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cancel")
        const client = yield* Client.make({ schema })
        const id = yield* insertRaw(schema, { metadata: "null", n: 1 })
        const job = yield* client.cancel(id)
        assert.strictEqual(job.state, "cancelled")
        assert.hasAllKeys(job.metadata, ["cancel_attempted_at"])
      }))

    it.effect("an available row at attempt 32767 is discarded by the fetch with a reason; its queue keeps working", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("attempt")
        const sql = yield* SqlClient.SqlClient
        const driver = makePgDriver(sql, schema)
        const client = yield* Client.make({ schema })
        const poison = yield* insertRaw(schema, { attempt: 32767, n: 0 })
        const good = yield* insertRaw(schema, { n: 1 })
        const now = new Date()
        const fetched = yield* driver.jobGetAvailable({ queue: "default", max: 10, now, clientId: "fetcher" })
        assert.deepStrictEqual(fetched.map((r) => r.id), [good])
        assert.strictEqual(fetched[0]!.attempt, 1)
        const discarded = yield* client.get(poison)
        assert.strictEqual(discarded.state, "discarded")
        assert.strictEqual(discarded.attempt, 32767)
        assert.strictEqual(discarded.finalizedAt?.getTime(), now.getTime())
        assert.strictEqual(discarded.errors.length, 1)
        assert.match(discarded.errors[0]!.error, /attempt 32767 .*cannot be fetched again/)
        const again = yield* driver.jobGetAvailable({ queue: "default", max: 10, now, clientId: "fetcher" })
        assert.deepStrictEqual(again, [])
        // A retry of it cannot raise max_attempts past what the column holds; it is available again
        // (and the next fetch discards it again) instead of failing with smallint out of range.
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET max_attempts = 32767 WHERE id = $1`, [poison])
        const retried = yield* client.retry(poison)
        assert.strictEqual(retried.state, "available")
        assert.strictEqual(retried.maxAttempts, 32767)
      }))
  })
})
