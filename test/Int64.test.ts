import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Result, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Resumable from "../src/Resumable.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"

// A Go int64 that a float64 cannot hold: JSON.parse reads it as 1460323737035677700.
const BIG = 1460323737035677698n
const BIG_TEXT = "1460323737035677698"

/** Inserts a row as a Go River client would, with jsonb text written by hand. */
const insertGoRow = (schema: string, kind: string, argsText: string, metadataText = "{}", state = "available") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ id: bigint }>(
      `INSERT INTO "${schema}".river_job (args, kind, max_attempts, metadata, priority, queue, state, scheduled_at)
       VALUES ($1::jsonb, $2, 25, $3::jsonb, 1, 'default', $4::"${schema}".river_job_state, now()) RETURNING id`,
      [argsText, kind, metadataText, state]
    )
    return rows[0]!.id
  })

const Transfer = JobKind.make("transfer", {
  args: Schema.Struct({ account: JobKind.Int64, amount: Schema.Number, memo: Schema.optional(Schema.String) })
})
const Loose = JobKind.make("loose", { args: Schema.Struct({ account: Schema.Number }) })
const Paged = JobKind.make("paged", { args: Schema.Struct({}) })

describe("JSON integers beyond 2^53", () => {
  it.layer(freshDatabase("int64"))((it) => {
    it.effect("client.get and client.list return a Go job's int64 args and metadata exactly", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("get")
        const client = yield* Client.make({ schema })
        const id = yield* insertGoRow(
          schema,
          "transfer",
          `{"account": ${BIG_TEXT}, "amount": 1.5, "nested": [-${BIG_TEXT}]}`,
          `{"trace_id": ${BIG_TEXT}, "small": 42}`
        )
        const job = yield* client.get(id)
        assert.deepStrictEqual(job.args, { account: BIG, amount: 1.5, nested: [-BIG] })
        assert.deepStrictEqual(job.metadata, { trace_id: BIG, small: 42 })
        const page = yield* client.list({ kinds: ["transfer"] })
        assert.deepStrictEqual(page.jobs.map((j) => j.args), [{ account: BIG, amount: 1.5, nested: [-BIG] }])
        assert.deepStrictEqual(page.jobs.map((j) => j.metadata.trace_id), [BIG])
      }))

    it.effect("JobKind.Int64 args: inserted as a bare JSON number, decoded exactly by the worker", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("args")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Transfer, { account: BIG, amount: 2 })
        const [stored] = yield* sql.unsafe<{ type: string; text: string }>(
          `SELECT jsonb_typeof(args->'account') AS type, args->>'account' AS text FROM "${schema}".river_job WHERE id = $1`,
          [job.id]
        )
        assert.deepStrictEqual(stored, { type: "number", text: BIG_TEXT })
        assert.strictEqual((job.args as { account: unknown }).account, BIG)

        const seen: Array<bigint> = []
        const worker = Worker.make(Transfer, (j) => Effect.sync(() => void seen.push(j.args.account)))
        const goId = yield* insertGoRow(schema, "transfer", `{"account": ${BIG_TEXT}, "amount": 3}`)
        const result = yield* Testing.workJob(worker, goId, { schema })
        assert.strictEqual(result.kind, "completed")
        assert.deepStrictEqual(seen, [BIG])
      }))

    it.effect("metadata and a resumable cursor written by Go come back unchanged after an attempt", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cursor")
        const sql = yield* SqlClient.SqlClient
        const seen: Array<Option.Option<bigint>> = []
        const worker = Worker.make(Paged, () =>
          Effect.gen(function*() {
            yield* Resumable.stepCursor("scan", JobKind.Int64, (cursor) =>
              Effect.gen(function*() {
                seen.push(cursor)
                yield* Resumable.setCursor(Option.getOrElse(cursor, () => 0n) + 1n)
                return yield* Effect.fail("page failed")
              }))
          }))
        const id = yield* insertGoRow(
          schema,
          "paged",
          "{}",
          `{"trace_id": ${BIG_TEXT}, "${Resumable.CURSOR_KEY}": {"scan": ${BIG_TEXT}}}`
        )
        const result = yield* Testing.workJob(worker, id, { schema, commit: true })
        assert.strictEqual(result.kind, "failed")
        assert.deepStrictEqual(seen, [Option.some(BIG)])
        const [row] = yield* sql.unsafe<{ trace: string; cursor: string; type: string }>(
          `SELECT metadata->>'trace_id' AS trace, metadata->'${Resumable.CURSOR_KEY}'->>'scan' AS cursor,
             jsonb_typeof(metadata->'${Resumable.CURSOR_KEY}'->'scan') AS type
           FROM "${schema}".river_job WHERE id = $1`,
          [id]
        )
        assert.deepStrictEqual(row, { trace: BIG_TEXT, cursor: "1460323737035677699", type: "number" })
        assert.deepStrictEqual(result.job.metadata.trace_id, BIG)
      }))

    it.effect("a Schema.Number field given an integer beyond 2^53 fails the attempt with InvalidArgs, not a rounded value", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("loose")
        const seen: Array<number> = []
        const worker = Worker.make(Loose, (j) => Effect.sync(() => void seen.push(j.args.account)))
        const id = yield* insertGoRow(schema, "loose", `{"account": ${BIG_TEXT}}`)
        const result = yield* Testing.workJob(worker, id, { schema })
        assert.strictEqual(result.kind, "failed")
        assert.deepStrictEqual(seen, [])
        assert.match(result.error ?? "", /invalid args for job kind "loose"/)
        assert.match(result.error ?? "", /JobKind\.Int64/)
      }))

    it.effect("insert metadata holding a bigint is stored as a bare JSON number", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("meta")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Paged, {}, { metadata: { trace_id: BIG } })
        assert.strictEqual(job.metadata.trace_id, BIG)
        const [row] = yield* sql.unsafe<{ text: string }>(
          `SELECT metadata->>'trace_id' AS text FROM "${schema}".river_job WHERE id = $1`,
          [job.id]
        )
        assert.strictEqual(row!.text, BIG_TEXT)
      }))
  })
})

describe("JobKind.Int64", () => {
  const decode = Schema.decodeUnknownResult(Schema.toCodecJson(JobKind.Int64))
  const encode = Schema.encodeUnknownResult(Schema.toCodecJson(JobKind.Int64))

  it("decodes a JSON integer (number or bigint) and, leniently, an integer string", () => {
    assert.deepStrictEqual(decode(42), Result.succeed(42n))
    assert.deepStrictEqual(decode(BIG), Result.succeed(BIG))
    assert.deepStrictEqual(decode(BIG_TEXT), Result.succeed(BIG))
    assert.deepStrictEqual(decode("-9223372036854775808"), Result.succeed(-(2n ** 63n)))
  })

  it("rejects fractions, rounded numbers, non-integers and values outside int64", () => {
    for (const bad of [1.5, 2 ** 60, "12a", "", null, 2n ** 63n, "9223372036854775808", -(2n ** 63n) - 1n]) {
      assert.isTrue(Result.isFailure(decode(bad)), String(bad))
    }
    assert.isTrue(Result.isFailure(encode(2n ** 63n)))
  })

  it("encodes to a bigint, which the stored JSON writes as a bare number", () => {
    assert.deepStrictEqual(encode(BIG) as unknown, Result.succeed(BIG))
    assert.deepStrictEqual(Transfer.encode({ account: BIG, amount: 1 }), Result.succeed(`{"account":${BIG_TEXT},"amount":1}`))
  })
})
