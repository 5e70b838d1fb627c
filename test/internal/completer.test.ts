import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../../src/Client.ts"
import * as Completer from "../../src/internal/completer.ts"
import { makePgDriver } from "../../src/internal/driver/pg/driver.ts"
import type { JobRow } from "../../src/Job.ts"
import * as JobKind from "../../src/JobKind.ts"
import * as Testing from "../../src/Testing.ts"
import { freshDatabase } from "../utils/db.ts"

const Task = JobKind.make("task", { args: Schema.Struct({ n: Schema.Number }) })

/** A schema with `count` jobs fetched (running), and a completer writing to it. */
const setup = (count: number, options: Partial<Completer.CompleterOptions> = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Testing.freshSchema("comp")
    const driver = makePgDriver(sql, schema)
    const client = yield* Client.make({ schema })
    for (let start = 0; start < count; start += 5_000) {
      const size = Math.min(5_000, count - start)
      yield* client.insertMany(Array.from({ length: size }, (_, i) => Task.of({ n: start + i })))
    }
    const now = yield* Clock.currentTimeMillis
    const fetched = yield* driver.jobGetAvailable({ queue: "default", max: count, now: new Date(now), clientId: "test-client" })
    if (fetched.length !== count) return yield* Effect.die(new Error(`fetched ${fetched.length} of ${count} jobs`))
    const rows = [...fetched].sort((a, b) => Number(a.id - b.id))
    const written: Array<JobRow> = []
    const completer = yield* Completer.make({
      driver,
      flushInterval: Duration.millis(0),
      onCompleted: (rows) => Effect.sync(() => void written.push(...rows.map((r) => r.job))),
      ...options
    })
    return { sql, schema, rows, completer, written, driver }
  })

const completion = (job: JobRow, patch: Partial<Completer.Completion> = {}): Completer.Completion => ({
  id: job.id,
  state: "completed",
  finalizedAt: new Date(1_000),
  kind: "completed",
  job,
  startedAt: 0,
  finishedAt: 0,
  ...patch
})

const states = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ state: string; n: number }>(
      `SELECT state::text, count(*)::int AS n FROM "${schema}".river_job GROUP BY state ORDER BY state`
    )
    return Object.fromEntries(rows.map((r) => [r.state, r.n]))
  })

describe("completer", () => {
  it.layer(freshDatabase("completer"))((it) => {
    it.effect("writes outcomes and reports each written row", () =>
      Effect.gen(function*() {
        const { completer, rows, schema, written } = yield* setup(3)
        yield* completer.enqueue(completion(rows[0]!))
        yield* completer.enqueue(completion(rows[1]!, {
          state: "retryable",
          finalizedAt: undefined,
          scheduledAt: new Date(60_000),
          error: { at: "1970-01-01T00:00:00.000Z", attempt: 1, error: "boom", trace: "" },
          metadata: { note: "x" },
          kind: "failed"
        }))
        yield* completer.enqueue(completion(rows[2]!, {
          state: "available",
          finalizedAt: undefined,
          attempt: 0,
          scheduledAt: new Date(5_000),
          metadata: { snoozes: 1 },
          kind: "snoozed"
        }))
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { available: 1, completed: 1, retryable: 1 })
        const byId = new Map(written.map((r) => [r.id, r]))
        assert.strictEqual(byId.get(rows[0]!.id)!.finalizedAt?.getTime(), 1_000)
        const retry = byId.get(rows[1]!.id)!
        assert.strictEqual(retry.scheduledAt.getTime(), 60_000)
        assert.strictEqual(retry.errors[0]!.error, "boom")
        assert.deepStrictEqual(retry.metadata, { note: "x" })
        const snoozed = byId.get(rows[2]!.id)!
        assert.strictEqual(snoozed.attempt, 0)
        assert.deepStrictEqual(snoozed.metadata, { snoozes: 1 })
      }))

    it.effect("a job that left running is never overwritten; its metadata still merges", () =>
      Effect.gen(function*() {
        const { completer, driver, rows, schema, sql } = yield* setup(2)
        const [a, b] = rows
        // Meanwhile: a was completed elsewhere (in a user transaction), b was deleted.
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'completed', finalized_at = $2, metadata = '{"kept": true}' WHERE id = $1`,
          [a!.id, new Date(500)]
        )
        yield* sql.unsafe(`DELETE FROM "${schema}".river_job WHERE id = $1`, [b!.id])
        yield* completer.enqueue(completion(a!, {
          state: "retryable",
          finalizedAt: undefined,
          scheduledAt: new Date(99_000),
          error: { at: "x", attempt: 1, error: "late failure", trace: "" },
          metadata: { merged: 1 },
          kind: "failed"
        }))
        yield* completer.enqueue(completion(b!))
        yield* completer.close
        const job = (yield* driver.jobGetById({ id: a!.id }))!
        assert.strictEqual(job.state, "completed")
        assert.strictEqual(job.finalizedAt?.getTime(), 500)
        assert.deepStrictEqual(job.errors, [])
        assert.deepStrictEqual(job.metadata, { kept: true, merged: 1 })
        assert.deepStrictEqual(yield* states(schema), { completed: 1 })
      }))

    it.effect("a late outcome of an earlier attempt changes nothing, not even metadata", () =>
      Effect.gen(function*() {
        const { completer, rows, schema, sql } = yield* setup(2)
        const [stale, rescued] = rows
        // Both jobs were rescued meanwhile and fetched again: attempt 2 runs (stale) or waits (rescued).
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET attempt = 2, metadata = '{"attempt2": true}' WHERE id = $1`,
          [stale!.id]
        )
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'retryable', attempt = 2 WHERE id = $1`,
          [rescued!.id]
        )
        assert.strictEqual(stale!.attempt, 1)
        yield* completer.enqueue(completion(stale!, { metadata: { from_attempt_1: true } }))
        yield* completer.enqueue(completion(rescued!, { metadata: { from_attempt_1: true } }))
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { retryable: 1, running: 1 })
        const after = yield* sql.unsafe<{ id: bigint; metadata: unknown; finalized_at: Date | null }>(
          `SELECT id, metadata, finalized_at FROM "${schema}".river_job ORDER BY id`
        )
        assert.deepStrictEqual(after.map((r) => [r.metadata, r.finalized_at]), [[{ attempt2: true }, null], [{}, null]])
      }))

    it.effect("without wantsRows it writes, returns ids only and skips onCompleted", () =>
      Effect.gen(function*() {
        let asked = 0
        const { completer, rows, schema, written } = yield* setup(3, {
          wantsRows: () => {
            asked++
            return false
          }
        })
        for (const row of rows) yield* completer.enqueue(completion(row))
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { completed: 3 })
        assert.strictEqual(written.length, 0)
        assert.isAbove(asked, 0)
      }))

    it.effect("a cancel requested meanwhile turns a retry, snooze or shutdown return into cancelled", () =>
      Effect.gen(function*() {
        const { completer, rows, schema, sql } = yield* setup(4)
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET metadata = jsonb_build_object('cancel_attempted_at', '2030-01-01T00:00:00Z')`
        )
        const [retryable, soonRetry, snooze, done] = rows
        yield* completer.enqueue(completion(retryable!, { state: "retryable", finalizedAt: undefined, scheduledAt: new Date(99_000), kind: "failed" }))
        yield* completer.enqueue(completion(soonRetry!, { state: "available", finalizedAt: undefined, scheduledAt: new Date(2_000), kind: "failed" }))
        yield* completer.enqueue(completion(snooze!, { state: "scheduled", finalizedAt: undefined, attempt: 0, scheduledAt: new Date(99_000), kind: "snoozed" }))
        yield* completer.enqueue(completion(done!))
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { cancelled: 3, completed: 1 })
      }))

    it.effect("an error text or metadata that jsonb cannot store is written with U+FFFD and blocks nothing", () =>
      Effect.gen(function*() {
        const { completer, driver, rows, schema } = yield* setup(4)
        const [nul, lone, keys, plain] = rows
        const truncated = "😀 truncated".slice(1) // a lone low surrogate, then " truncated"
        yield* completer.enqueue(completion(nul!, {
          state: "retryable",
          finalizedAt: undefined,
          scheduledAt: new Date(60_000),
          error: { at: "1970-01-01T00:00:00.000Z", attempt: 1, error: "bad\u0000byte", trace: "at \\u0000 \u0000" },
          kind: "failed"
        }))
        yield* completer.enqueue(completion(lone!, { metadata: { note: truncated } }))
        yield* completer.enqueue(completion(keys!, { metadata: { "k\u0000": "\ud83d", "pair": "😀" } }))
        yield* completer.enqueue(completion(plain!))
        yield* waitFor(Effect.map(states(schema), (s) => s.completed === 3 && s.retryable === 1))
        const jobs = yield* Effect.forEach(rows, (row) => Effect.map(driver.jobGetById({ id: row.id }), (job) => job!))
        assert.strictEqual(jobs[0]!.errors[0]!.error, "bad\ufffdbyte")
        assert.strictEqual(jobs[0]!.errors[0]!.trace, "at \\u0000 \ufffd", "an escaped backslash is text, not an escape")
        assert.deepStrictEqual(jobs[1]!.metadata, { note: "\ufffd truncated" })
        assert.deepStrictEqual(jobs[2]!.metadata, { "k\ufffd": "\ufffd", pair: "😀" })
        yield* completer.close
        assert.strictEqual(yield* completer.pending, 0)
      }))

    it.effect("a row the database refuses is isolated: the rest completes, the row ends with a readable error", () =>
      Effect.gen(function*() {
        const { completer, driver, rows, schema, sql } = yield* setup(5)
        const [a, poisoned, c, hopeless, e] = rows
        // Outcomes the database refuses for one row each: metadata a trigger or constraint rejects,
        // and a row that may never leave running.
        yield* sql.unsafe(`ALTER TABLE "${schema}".river_job ADD CONSTRAINT test_no_poison CHECK (NOT metadata ? 'poison')`)
        yield* sql.unsafe(
          `ALTER TABLE "${schema}".river_job ADD CONSTRAINT test_stuck CHECK (state = 'running' OR id <> ${hopeless!.id})`
        )
        for (const row of [a, c, hopeless, e]) yield* completer.enqueue(completion(row!))
        yield* completer.enqueue(completion(poisoned!, { metadata: { poison: true } }))
        yield* waitFor(Effect.map(states(schema), (s) => s.completed === 4))
        const byId = new Map(
          (yield* Effect.forEach(rows, (row) => Effect.map(driver.jobGetById({ id: row.id }), (job) => job!))).map((j) => [j.id, j])
        )
        for (const row of [a, c, e]) assert.deepStrictEqual(byId.get(row!.id)!.errors, [])
        const written = byId.get(poisoned!.id)!
        assert.strictEqual(written.state, "completed")
        assert.deepStrictEqual(written.metadata, {}, "stored without the metadata it could not store")
        assert.strictEqual(written.errors.length, 1)
        assert.match(written.errors[0]!.error, /outcome could not be stored as decided/)
        assert.match(written.errors[0]!.error, /test_no_poison/)
        assert.strictEqual(byId.get(hopeless!.id)!.state, "running", "left to the rescuer")
        assert.strictEqual(yield* completer.pending, 0, "nothing is retried forever")
        yield* completer.close
        assert.strictEqual(yield* completer.pending, 0)
      }))

    it.effect("10,000 pending outcomes are all written when it closes", () =>
      Effect.gen(function*() {
        const { completer, rows, schema, written } = yield* setup(10_000, {
          flushInterval: Duration.hours(1),
          flushAt: 1_000_000
        })
        for (const row of rows) yield* completer.enqueue(completion(row))
        assert.strictEqual(yield* completer.pending, 10_000)
        assert.deepStrictEqual(yield* states(schema), { running: 10_000 })
        yield* completer.close
        assert.strictEqual(yield* completer.pending, 0)
        assert.deepStrictEqual(yield* states(schema), { completed: 10_000 })
        assert.strictEqual(written.length, 10_000)
      }), { timeout: 120_000 })

    it.effect("writes at most maxBatch outcomes per statement", () =>
      Effect.gen(function*() {
        const { completer, rows, schema, sql } = yield* setup(25, {
          flushInterval: Duration.hours(1),
          flushAt: 1_000,
          maxBatch: 10
        })
        for (const row of rows) yield* completer.enqueue(completion(row))
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { completed: 25 })
        // Each statement is its own transaction: count the writing transactions.
        const [{ n }] = (yield* sql.unsafe<{ n: number }>(
          `SELECT count(DISTINCT xmin::text)::int AS n FROM "${schema}".river_job`
        )) as unknown as [{ n: number }]
        assert.strictEqual(n, 3)
      }))

    it.effect("flushes on its interval, or at once when flushAt are pending", () =>
      Effect.gen(function*() {
        const { completer, rows, schema } = yield* setup(13, { flushInterval: Duration.seconds(1), flushAt: 10 })
        for (const row of rows.slice(0, 3)) yield* completer.enqueue(completion(row))
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        assert.deepStrictEqual(yield* states(schema), { running: 13 }, "nothing written before the interval")
        yield* TestClock.adjust("1 second")
        yield* waitFor(Effect.map(states(schema), (s) => s.completed === 3))
        // Ten more: the tenth pending one triggers a write without the clock moving.
        for (const row of rows.slice(3)) yield* completer.enqueue(completion(row))
        yield* waitFor(Effect.map(states(schema), (s) => s.completed === 13))
      }))

    it.effect("applies backpressure at backpressureAt pending until below resumeBelow", () =>
      Effect.gen(function*() {
        const { completer, rows, schema } = yield* setup(30, {
          flushInterval: Duration.hours(1),
          flushAt: 1_000,
          backpressureAt: 20,
          resumeBelow: 5
        })
        const producer = yield* Effect.forkChild(Effect.forEach(rows, (row) => completer.enqueue(completion(row)), { discard: true }))
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        assert.strictEqual(yield* completer.pending, 20)
        assert.isUndefined(producer.pollUnsafe(), "the 21st enqueue waits")
        yield* TestClock.adjust("1 hour") // the interval flush makes room
        yield* Fiber.join(producer)
        yield* completer.close
        assert.deepStrictEqual(yield* states(schema), { completed: 30 })
      }))
  })
})

const waitFor = (check: Effect.Effect<boolean, unknown, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400; i++) {
      if (yield* check) return
      yield* TestClock.withLive(Effect.sleep("10 millis"))
    }
    return yield* Effect.die(new Error("condition not reached"))
  })
