import { assert, describe, it } from "@effect/vitest"
import { DateTime, Deferred, Effect, Option, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Resumable from "../src/Resumable.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { advanceUntilEvent, awaitEvent, startRunner } from "./utils/runner.ts"

const Pipeline = JobKind.make("pipeline", { args: Schema.Struct({ mode: Schema.String }) })
const STEP = Resumable.STEP_KEY
const CURSOR = Resumable.CURSOR_KEY

/** A worker whose steps log what ran; `fail` decides, per attempt and step, how a step ends. */
const pipelineWorker = (
  log: Ref.Ref<Array<string>>,
  fail: (attempt: number, step: string) => Effect.Effect<void, unknown>
) =>
  Worker.make(Pipeline, (job) =>
    Effect.gen(function*() {
      for (const name of ["download", "transform", "load"]) {
        yield* Resumable.step(
          name,
          Effect.andThen(Ref.update(log, (xs) => [...xs, `${name}#${job.attempt}`]), fail(job.attempt, name))
        )
      }
    }))

describe("Resumable", () => {
  it.layer(freshDatabase("resumable"))((it) => {
    it.effect("a retry after a failure in step 2 skips step 1", () =>
      Effect.gen(function*() {
        const log = yield* Ref.make<Array<string>>([])
        const worker = pipelineWorker(log, (attempt, step) => attempt === 1 && step === "transform" ? Effect.fail("boom") : Effect.void)
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "x" })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.kind, "failed")
        assert.deepStrictEqual(first.job.metadata, { [STEP]: "download" })
        const { event } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.kind, "completed")
        assert.deepStrictEqual(yield* Ref.get(log), ["download#1", "transform#1", "transform#2", "load#2"])
        assert.deepStrictEqual(event.job.metadata, { [STEP]: "download" }, "nothing is rewritten on success")
      }))

    for (const [label, failure] of [
      ["a defect", Effect.die(new Error("defect"))],
      ["a thrown exception", Effect.sync(() => {
        throw new Error("thrown")
      })],
      ["a JobCancel", Effect.fail(Worker.JobCancel.of("stop"))],
      ["a JobSnooze", Effect.fail(Worker.JobSnooze.of("1 hour"))]
    ] as const) {
      it.effect(`${label} in a step keeps the checkpoint`, () =>
        Effect.gen(function*() {
          const log = yield* Ref.make<Array<string>>([])
          const worker = pipelineWorker(log, (_, step) => step === "load" ? failure : Effect.void)
          const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
          const { job } = yield* client.insert(Pipeline, { mode: label })
          yield* awaitEvent(events)
          const row = yield* client.get(job.id)
          assert.strictEqual(row.metadata[STEP], "transform")
        }))
    }

    it.effect("a cancel from the client and a runner stop keep the checkpoint", () =>
      Effect.gen(function*() {
        const inLoad = yield* Deferred.make<void>()
        const worker = Worker.make(Pipeline, () =>
          Effect.gen(function*() {
            yield* Resumable.step("download", Effect.void)
            yield* Resumable.stepCursor("load", Schema.Number, () =>
              Effect.gen(function*() {
                yield* Resumable.setCursor(41)
                yield* Deferred.succeed(inLoad, undefined)
                return yield* Effect.never
              }))
          }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const { job } = yield* client.insert(Pipeline, { mode: "remote" })
        yield* Deferred.await(inLoad)
        yield* client.cancel(job.id)
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.job.state, "cancelled")
        assert.strictEqual(event.job.metadata[STEP], "download")
        assert.deepStrictEqual(event.job.metadata[CURSOR], { load: 41 })
      }))

    it.effect("a cursor step resumes from the saved cursor; the stored format is River's", () =>
      Effect.gen(function*() {
        const seen = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Pipeline, (job) =>
          Effect.gen(function*() {
            yield* Resumable.step("step1", Effect.void)
            yield* Resumable.stepCursor("step2", Schema.Number, (cursor) =>
              Effect.gen(function*() {
                yield* Ref.update(seen, (xs) => [...xs, `attempt ${job.attempt}: ${Option.getOrElse(cursor, () => "none")}`])
                const start = Option.getOrElse(cursor, () => 0)
                for (let i = start + 1; i <= 3; i++) {
                  yield* Resumable.setCursor(i)
                  if (job.attempt === 1 && i === 1) return yield* Effect.fail("failed at 1")
                }
              }))
          }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "cursor" })
        const first = yield* awaitEvent(events)
        assert.deepStrictEqual(first.job.metadata, { [STEP]: "step1", [CURSOR]: { step2: 1 } })
        const { event } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.kind, "completed")
        assert.deepStrictEqual(yield* Ref.get(seen), ["attempt 1: none", "attempt 2: 1"])
      }))

    it.effect("a cursor set in the first step is kept although no step completed", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Pipeline, () =>
          Resumable.stepCursor("first", Schema.Number, () =>
            Effect.andThen(Resumable.setCursor(7), Effect.fail("later"))))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "first" })
        const event = yield* awaitEvent(events)
        assert.deepStrictEqual(event.job.metadata, { [CURSOR]: { first: 7 } })
      }))

    it.effect("two-level struct cursors, dates, bigints and DateTimes round-trip exactly", () =>
      Effect.gen(function*() {
        const Cursor = Schema.Struct({
          lastId: Schema.BigInt,
          lastSubId: Schema.Number,
          at: Schema.Date,
          dt: Schema.DateTimeUtc,
          label: Schema.String
        })
        const value = {
          lastId: 12345678901234567890n,
          lastSubId: 2.5,
          at: new Date("2031-01-02T03:04:05.678Z"),
          dt: DateTime.makeUnsafe("2031-01-02T03:04:05.678Z"),
          label: "é\"x"
        }
        const got = yield* Ref.make<Array<unknown>>([])
        const worker = Worker.make(Pipeline, (job) =>
          Resumable.stepCursor("walk", Cursor, (cursor) =>
            job.attempt === 1
              ? Effect.andThen(Resumable.setCursor(value), Effect.fail("again"))
              : Ref.update(got, (xs) => [...xs, Option.getOrUndefined(cursor)])))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "types" })
        const first = yield* awaitEvent(events)
        assert.deepStrictEqual((first.job.metadata[CURSOR] as Record<string, unknown>).walk, {
          lastId: "12345678901234567890",
          lastSubId: 2.5,
          at: "2031-01-02T03:04:05.678Z",
          dt: "2031-01-02T03:04:05.678Z",
          label: "é\"x"
        })
        yield* advanceUntilEvent(events, () => true)
        const [restored] = (yield* Ref.get(got)) as [typeof value]
        assert.strictEqual(restored.lastId, value.lastId)
        assert.strictEqual(restored.lastSubId, value.lastSubId)
        assert.strictEqual(restored.at.getTime(), value.at.getTime())
        assert.isTrue(DateTime.isDateTime(restored.dt))
        assert.strictEqual(DateTime.toEpochMillis(restored.dt), DateTime.toEpochMillis(value.dt))
        assert.strictEqual(restored.label, value.label)
      }))

    it.effect("scalar cursors of each kind round-trip", () =>
      Effect.gen(function*() {
        const cases = [
          [Schema.Number, 42],
          [Schema.String, "abc"],
          [Schema.Boolean, true],
          [Schema.BigInt, 9007199254740993n]
        ] as const
        for (const [schema, value] of cases) {
          const metadata = Resumable.resumeAt("s", schema as Schema.Codec<unknown, unknown>, value)
          const got = yield* Ref.make<unknown>(undefined)
          const worker = Worker.make(Pipeline, () =>
            Resumable.stepCursor("s", schema as Schema.Codec<unknown, unknown>, (cursor) => Ref.set(got, Option.getOrUndefined(cursor))))
          const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
          yield* client.insert(Pipeline, { mode: "scalar" }, { metadata })
          assert.strictEqual((yield* awaitEvent(events)).kind, "completed")
          assert.strictEqual(yield* Ref.get(got), value)
        }
      }))

    it.effect("a stored cursor that no longer decodes is a clear job error", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Pipeline, () => Resumable.stepCursor("walk", Schema.Number, () => Effect.void))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "bad" }, { metadata: { [CURSOR]: { walk: "not a number" } } })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "failed")
        assert.include(event.error!, `step "walk"`)
        assert.include(event.error!, "no longer decodes")
      }))

    it.effect("duplicate step names and a recorded step that no longer exists fail the attempt, naming the step", () =>
      Effect.gen(function*() {
        const ran = yield* Ref.make(0)
        const worker = Worker.make(Pipeline, (job) =>
          job.args.mode === "dup"
            ? Effect.andThen(Resumable.step("same", Effect.void), Resumable.step("same", Effect.void))
            : Effect.andThen(Resumable.step("a", Ref.update(ran, (n) => n + 1)), Resumable.step("b", Ref.update(ran, (n) => n + 1))))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const dup = yield* client.insert(Pipeline, { mode: "dup" })
        const gone = yield* client.insert(Pipeline, { mode: "gone" }, { metadata: Resumable.resumeAfter("renamed_step") })
        const e1 = yield* awaitEvent(events, (e) => e.job.id === dup.job.id)
        assert.include(e1.error!, `step "same"`)
        assert.include(e1.error!, "twice")
        const e2 = yield* awaitEvent(events, (e) => e.job.id === gone.job.id)
        assert.strictEqual(e2.kind, "failed")
        assert.include(e2.error!, `step "renamed_step"`)
        assert.include(e2.error!, "not a step of this worker")
        assert.strictEqual(yield* Ref.get(ran), 0, "no step ran")
      }))

    it.effect("resumeAfter starts a job after a given step", () =>
      Effect.gen(function*() {
        const log = yield* Ref.make<Array<string>>([])
        const worker = pipelineWorker(log, () => Effect.void)
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "after" }, { metadata: Resumable.resumeAfter("transform") })
        yield* awaitEvent(events)
        assert.deepStrictEqual(yield* Ref.get(log), ["load#1"])
      }))

    it.effect("a transactional checkpoint commits with the caller's rows; a rolled-back one is not kept", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const afterCommit = yield* Deferred.make<unknown>()
        const proceed = yield* Deferred.make<void>()
        const worker = Worker.make(Pipeline, (job) =>
          Effect.gen(function*() {
            const table = `"${job.args.mode}".business`
            yield* Resumable.step("write", sql.withTransaction(Effect.gen(function*() {
              yield* sql.unsafe(`INSERT INTO ${table} (v) VALUES ('written')`)
              yield* Resumable.commitStep
            })))
            const [row] = yield* sql.unsafe<{ metadata: unknown }>(`SELECT metadata FROM "${job.args.mode}".river_job WHERE id = $1`, [job.id])
            yield* Deferred.succeed(afterCommit, row!.metadata)
            yield* Deferred.await(proceed)
            yield* Resumable.stepCursor("batches", Schema.Number, () =>
              Effect.gen(function*() {
                yield* Resumable.setCursor(3)
                yield* sql.withTransaction(Effect.gen(function*() {
                  yield* sql.unsafe(`INSERT INTO ${table} (v) VALUES ('rolled back')`)
                  yield* Resumable.commitCursor(5)
                  return yield* Effect.fail("roll back")
                }))
              }))
          }))
        const { client, events, schema } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* sql.unsafe(`CREATE TABLE "${schema}".business (v text)`)
        yield* client.insert(Pipeline, { mode: schema })
        const committed = yield* Deferred.await(afterCommit)
        assert.deepStrictEqual(committed, { [STEP]: "write", [CURSOR]: null }, "durable before the attempt ends")
        yield* Deferred.succeed(proceed, undefined)
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "failed")
        assert.deepStrictEqual(event.job.metadata, { [STEP]: "write", [CURSOR]: { batches: 3 } })
        const rows = yield* sql.unsafe<{ v: string }>(`SELECT v FROM "${schema}".business`)
        assert.deepStrictEqual(rows.map((r) => r.v), ["written"])
      }))

    it.effect("a cursor step whose cursor was committed and that then completed does not run again on the next attempt", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const log = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Pipeline, (job) =>
          Effect.gen(function*() {
            const note = (s: string) => Ref.update(log, (xs) => [...xs, `${s}#${job.attempt}`])
            yield* Resumable.step("a", note("a"))
            yield* Resumable.stepCursor("b", Schema.Number, (cursor) =>
              Effect.gen(function*() {
                yield* note(`b from ${Option.getOrElse(cursor, () => 0)}`)
                for (let i = Option.getOrElse(cursor, () => 0) + 1; i <= 3; i++) {
                  yield* sql.withTransaction(Resumable.commitCursor(i))
                }
              }))
            yield* Resumable.step("c", Effect.andThen(note("c"), job.attempt === 1 ? Effect.fail("c failed") : Effect.void))
          }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* client.insert(Pipeline, { mode: "committed-cursor" })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.kind, "failed")
        assert.deepStrictEqual(first.job.metadata, { [STEP]: "b", [CURSOR]: null }, "b's consumed cursor is cleared, as River does")
        const { event } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.kind, "completed")
        assert.deepStrictEqual(yield* Ref.get(log), ["a#1", "b from 0#1", "c#1", "c#2"])
      }))

    it.effect("cursor-only progress needs its cursor step: a plain step of that name or a missing one fails, keeping the checkpoint", () =>
      Effect.gen(function*() {
        const ran = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Pipeline, (job) =>
          job.args.mode === "plain"
            ? Effect.andThen(Resumable.step("load", Ref.update(ran, (xs) => [...xs, "plain load"])), Resumable.step("after", Effect.void))
            : Resumable.step("other", Ref.update(ran, (xs) => [...xs, "other"])))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        // A cursor saved by a first cursor step that failed before any step completed (River's format).
        const metadata = { [CURSOR]: { load: 5 } }
        const plain = yield* client.insert(Pipeline, { mode: "plain" }, { metadata })
        const missing = yield* client.insert(Pipeline, { mode: "missing" }, { metadata })
        const e1 = yield* awaitEvent(events, (e) => e.job.id === plain.job.id)
        assert.strictEqual(e1.kind, "failed")
        assert.include(e1.error!, `step "load"`)
        assert.include(e1.error!, "cursor step")
        assert.deepStrictEqual(e1.job.metadata, metadata, "the checkpoint is kept for a fixed worker")
        const e2 = yield* awaitEvent(events, (e) => e.job.id === missing.job.id)
        assert.strictEqual(e2.kind, "failed")
        assert.include(e2.error!, `step "load"`)
        assert.include(e2.error!, "not a step of this worker")
        assert.deepStrictEqual(e2.job.metadata, metadata)
        assert.deepStrictEqual(yield* Ref.get(ran), ["other"], "a plain step never runs in place of the cursor step")
      }))

    it.effect("a transactional checkpoint holding what jsonb cannot store is written with U+FFFD", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const schema = yield* Testing.freshSchema("nul")
        const client = yield* Client.make({ schema })
        const worker = Worker.make(Pipeline, () =>
          Resumable.stepCursor("scan", Schema.String, () =>
            Effect.gen(function*() {
              yield* sql.withTransaction(Resumable.commitCursor("a\u0000b\ud800"))
              return yield* Effect.fail("page failed")
            })))
        const { job } = yield* client.insert(Pipeline, { mode: "nul" })
        const result = yield* Testing.workJob(worker, job.id, { schema })
        assert.strictEqual(result.error, "page failed")
        // River's transactional checkpoint: the current step and its cursor, stored as U+FFFD.
        assert.deepStrictEqual(result.job.metadata, { [STEP]: "scan", [CURSOR]: { scan: "a\ufffdb\ufffd" } })
      }))

    it.effect("a transactional checkpoint of an attempt that was rescued and refetched is refused", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const started = yield* Deferred.make<void>()
        const proceed = yield* Deferred.make<void>()
        const refused = yield* Deferred.make<Resumable.ResumableError>()
        const worker = Worker.make(Pipeline, () =>
          Effect.gen(function*() {
            yield* Deferred.succeed(started, undefined)
            yield* Deferred.await(proceed)
            const error = yield* Effect.flip(Resumable.step("write", sql.withTransaction(Resumable.commitStep)))
            yield* Deferred.succeed(refused, error as Resumable.ResumableError)
          }))
        const schema = yield* Testing.freshSchema("r")
        const client = yield* Client.make({ schema })
        // The runner is stopped (which writes every outcome) before the row is read: attempt 1's
        // outcome does not apply to attempt 2, so no event would say when it was written.
        const job = yield* Effect.scoped(Effect.gen(function*() {
          const { client: own } = yield* startRunner({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker] })
          const { job } = yield* own.insert(Pipeline, { mode: "stale" })
          yield* Deferred.await(started)
          // Meanwhile another runner rescued the job and started attempt 2.
          yield* sql.unsafe(`UPDATE "${schema}".river_job SET attempt = attempt + 1 WHERE id = $1`, [job.id])
          yield* Deferred.succeed(proceed, undefined)
          const error = yield* Deferred.await(refused)
          assert.strictEqual(error.reason, "JobNotRunning")
          return job
        }))
        const row = yield* client.get(job.id)
        assert.strictEqual(row.state, "running", "attempt 1's outcome does not touch attempt 2")
        assert.strictEqual(row.attempt, 2)
        assert.deepStrictEqual(row.metadata, {})
      }))

    it.effect("steps outside a worker are a typed error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Resumable.step("x", Effect.void))
        assert.instanceOf(error, Resumable.ResumableError)
        assert.strictEqual((error as Resumable.ResumableError).reason, "NotInJob")
        const cursorError = yield* Effect.flip(Resumable.setCursor(1))
        assert.strictEqual(cursorError.reason, "NotInJob")
      }))

    it.effect("setCursor outside a cursor step and nested steps are typed errors", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Pipeline, (job) =>
          job.args.mode === "nested"
            ? Resumable.step("outer", Resumable.step("inner", Effect.void))
            : Resumable.step("plain", Resumable.setCursor(1)))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const a = yield* client.insert(Pipeline, { mode: "nested" })
        const b = yield* client.insert(Pipeline, { mode: "plain" })
        assert.include((yield* awaitEvent(events, (e) => e.job.id === a.job.id)).error!, "inside step \"outer\"")
        assert.include((yield* awaitEvent(events, (e) => e.job.id === b.job.id)).error!, "inside stepCursor")
      }))
  })
})
