/**
 * The driver conformance suite: each method of `src/internal/driver/driver.ts`, its contract as
 * written there, checked against a real database. It uses nothing but the `Driver` interface (rows
 * are set up with `jobInsertFull`, times are passed in), so a second implementation runs it
 * unchanged: give {@link driverConformance} a layer and a way to get a driver on a fresh schema,
 * as `pg.test.ts` does for PostgreSQL. (River's `riverdrivertest` is the model.)
 *
 * What the interface cannot observe is tested elsewhere: notifications (test/Client.test.ts,
 * test/Cancellation.test.ts), `SKIP LOCKED` under concurrent fetches (test/Runner.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, type Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import type { Driver, JobInsertFullParams, JobInsertParams } from "../../src/internal/driver/driver.ts"
import type { AttemptError, JobRow } from "../../src/Job.ts"

/** What the suite needs from an implementation. */
export interface ConformanceTarget<R> {
  readonly name: string
  /** The layer the suite runs in (a database of its own). */
  readonly layer: Layer.Layer<R, unknown>
  /** A driver on a new, migrated schema of its own, removed with the scope. */
  readonly freshDriver: Effect.Effect<Driver, unknown, R | Scope.Scope>
}

const T0 = Date.parse("2031-05-06T07:08:09.123Z")
const at = (offsetMillis: number) => new Date(T0 + offsetMillis)
const SECOND = 1_000
const HOUR = 3_600_000

const job = (overrides: Partial<JobInsertParams> = {}): JobInsertParams => ({
  args: "{}",
  kind: "kind_a",
  maxAttempts: 25,
  metadata: "{}",
  priority: 1,
  queue: "default",
  scheduledAt: at(-SECOND),
  state: "available",
  tags: [],
  ...overrides
})

const full = (overrides: Partial<JobInsertFullParams> = {}): JobInsertFullParams => ({
  kind: "kind_a",
  createdAt: at(-HOUR),
  scheduledAt: at(-SECOND),
  ...overrides
})

const running = (overrides: Partial<JobInsertFullParams> = {}): JobInsertFullParams =>
  full({ state: "running", attempt: 1, attemptedAt: at(-SECOND), attemptedBy: ["someone"], ...overrides })

const insertFull = (driver: Driver, ...rows: ReadonlyArray<JobInsertFullParams>) => driver.jobInsertFull({ jobs: rows })

const get = (driver: Driver, id: bigint) => Effect.map(driver.jobGetById({ id }), (row) => row!)

const anError = (attempt: number, error = "boom"): AttemptError => ({ at: at(0).toISOString(), attempt, error, trace: "" })

/** A 32-byte key as lowercase hex (what `unique_key` holds). */
const hexKey = (n: number) => n.toString(16).padStart(64, "0")

/** Registers the suite for one implementation. */
export const driverConformance = <R>(target: ConformanceTarget<R>) =>
  describe(`driver conformance: ${target.name}`, () => {
    it.layer(target.layer)((it) => {
      const test = (name: string, body: (driver: Driver) => Effect.Effect<void, unknown, R | Scope.Scope>) =>
        it.effect(name, () => Effect.flatMap(target.freshDriver, body) as Effect.Effect<void, unknown, never>)

      describe("river_job", () => {
        test("jobInsertMany inserts in input order with the given columns, created at now", (driver) =>
          Effect.gen(function*() {
            const results = yield* driver.jobInsertMany({
              jobs: [
                job({ args: `{"n": 1}`, kind: "kind_b", priority: 2, tags: ["t_one", "t_two"], metadata: `{"m": 1}` }),
                job({ state: "scheduled", scheduledAt: at(HOUR), queue: "other", maxAttempts: 3 }),
                job({ state: "pending" })
              ],
              now: at(0),
              notifyQueues: ["default"]
            })
            assert.deepStrictEqual(results.map((r) => r.skipped), [false, false, false])
            const [a, b, c] = results.map((r) => r.job)
            assert.isTrue(a!.id < b!.id && b!.id < c!.id)
            assert.deepStrictEqual(a!.args, { n: 1 })
            assert.strictEqual(a!.kind, "kind_b")
            assert.strictEqual(a!.priority, 2)
            assert.deepStrictEqual(a!.tags, ["t_one", "t_two"])
            assert.deepStrictEqual(a!.metadata, { m: 1 })
            assert.strictEqual(a!.state, "available")
            assert.strictEqual(a!.attempt, 0)
            assert.strictEqual(a!.createdAt.getTime(), T0)
            assert.strictEqual(a!.scheduledAt.getTime(), T0 - SECOND)
            assert.isNull(a!.uniqueKey)
            assert.strictEqual(b!.state, "scheduled")
            assert.strictEqual(b!.queue, "other")
            assert.strictEqual(b!.maxAttempts, 3)
            assert.strictEqual(b!.scheduledAt.getTime(), T0 + HOUR)
            assert.strictEqual(c!.state, "pending")
            assert.deepStrictEqual(yield* get(driver, a!.id), a)
          }))

        test("jobInsertMany returns the row holding a unique key in a covered state instead of inserting, skipped", (driver) =>
          Effect.gen(function*() {
            const unique = { uniqueKey: hexKey(1), uniqueStates: "11110101" } // River's default states
            const [first] = yield* driver.jobInsertMany({ jobs: [job(unique)], now: at(0), notifyQueues: [] })
            assert.isFalse(first!.skipped)
            assert.deepStrictEqual(first!.job.uniqueStates, ["available", "completed", "pending", "retryable", "running", "scheduled"])
            assert.strictEqual(Buffer.from(first!.job.uniqueKey!).toString("hex"), hexKey(1))
            const again = yield* driver.jobInsertMany({
              jobs: [job({ args: `{"n": 0}` }), job(unique), job({ uniqueKey: hexKey(2), uniqueStates: "11110101" })],
              now: at(0),
              notifyQueues: []
            })
            assert.deepStrictEqual(again.map((r) => r.skipped), [false, true, false])
            assert.strictEqual(again[1]!.job.id, first!.job.id)
            // A discarded holder does not cover the key (bit 3 is off): a new job is inserted.
            const [holder] = yield* insertFull(driver, full({ state: "discarded", finalizedAt: at(0), uniqueKey: hexKey(3), uniqueStates: "11110101" }))
            const [fresh] = yield* driver.jobInsertMany({ jobs: [job({ uniqueKey: hexKey(3), uniqueStates: "11110101" })], now: at(0), notifyQueues: [] })
            assert.isFalse(fresh!.skipped)
            assert.notStrictEqual(fresh!.job.id, holder!.id)
          }))

        test("jobInsertManyFast inserts like jobInsertMany and returns only the count; covered unique keys are skipped, not counted", (driver) =>
          Effect.gen(function*() {
            const inserted = yield* driver.jobInsertManyFast({
              jobs: [
                job({ args: `{"n": 1}`, kind: "kind_b", priority: 2, tags: ["t_one", "t_two"], metadata: `{"m": 1}` }),
                job({ state: "scheduled", scheduledAt: at(HOUR), queue: "other", maxAttempts: 3 })
              ],
              now: at(0),
              notifyQueues: ["default"]
            })
            assert.strictEqual(inserted, 2)
            const [a, b] = (yield* driver.jobList({ orderBy: "id", order: "asc", limit: 10 })).map((r) => r.job)
            assert.isTrue(a!.id < b!.id)
            assert.deepStrictEqual(a!.args, { n: 1 })
            assert.strictEqual(a!.kind, "kind_b")
            assert.strictEqual(a!.priority, 2)
            assert.deepStrictEqual(a!.tags, ["t_one", "t_two"])
            assert.deepStrictEqual(a!.metadata, { m: 1 })
            assert.strictEqual(a!.state, "available")
            assert.strictEqual(a!.createdAt.getTime(), T0)
            assert.strictEqual(b!.state, "scheduled")
            assert.strictEqual(b!.queue, "other")
            assert.strictEqual(b!.maxAttempts, 3)
            assert.strictEqual(b!.scheduledAt.getTime(), T0 + HOUR)
            const unique = { uniqueKey: hexKey(1), uniqueStates: "11110101" }
            assert.strictEqual(yield* driver.jobInsertManyFast({ jobs: [job(unique)], now: at(0), notifyQueues: [] }), 1)
            const again = yield* driver.jobInsertManyFast({
              jobs: [job({ args: `{"n": 0}` }), job(unique), job({ uniqueKey: hexKey(2), uniqueStates: "11110101" })],
              now: at(0),
              notifyQueues: []
            })
            assert.strictEqual(again, 2)
            const rows = (yield* driver.jobList({ orderBy: "id", order: "asc", limit: 10 })).map((r) => r.job)
            assert.strictEqual(rows.length, 5)
            // Ids follow the input order, unique or not.
            assert.deepStrictEqual(rows.slice(3).map((r) => r.args), [{ n: 0 }, {}])
            assert.strictEqual(Buffer.from(rows[4]!.uniqueKey!).toString("hex"), hexKey(2))
            assert.strictEqual(yield* driver.jobInsertManyFast({ jobs: [], now: at(0), notifyQueues: [] }), 0)
            // Jobs differing only in args (the statement sends the other columns once).
            const same = { kind: "kind_c", priority: 3, tags: ["t_a", "t_b"], metadata: `{"m": 2}`, scheduledAt: at(HOUR), state: "scheduled" } as const
            assert.strictEqual(
              yield* driver.jobInsertManyFast({
                jobs: [job({ ...same, args: `{"u": 1}` }), job({ ...same, args: `{"u": 2}` })],
                now: at(5),
                notifyQueues: []
              }),
              2
            )
            const uniform = (yield* driver.jobList({ orderBy: "id", order: "asc", limit: 10, kinds: ["kind_c"] })).map((r) => r.job)
            assert.deepStrictEqual(uniform.map((r) => r.args), [{ u: 1 }, { u: 2 }])
            for (const r of uniform) {
              assert.strictEqual(r.priority, 3)
              assert.deepStrictEqual(r.tags, ["t_a", "t_b"])
              assert.deepStrictEqual(r.metadata, { m: 2 })
              assert.strictEqual(r.state, "scheduled")
              assert.strictEqual(r.scheduledAt.getTime(), T0 + HOUR)
              assert.strictEqual(r.createdAt.getTime(), T0 + 5)
              assert.strictEqual(r.maxAttempts, 25)
              assert.strictEqual(r.queue, "default")
            }
          }))

        test("jobInsertFull stores every column as given, metadata of any JSON included", (driver) =>
          Effect.gen(function*() {
            const [row] = yield* insertFull(driver, full({
              args: `{"big": 9007199254740993}`,
              attempt: 3,
              attemptedAt: at(-5 * SECOND),
              attemptedBy: ["a", "b"],
              errors: [anError(1), anError(2, "again")],
              finalizedAt: at(-SECOND),
              kind: "kind_c",
              maxAttempts: 7,
              metadata: "null",
              priority: 4,
              queue: "q_full",
              state: "discarded",
              tags: ["x_y"],
              uniqueKey: hexKey(9),
              uniqueStates: "11110101"
            }))
            assert.deepStrictEqual(row!.args, { big: 9007199254740993n })
            assert.strictEqual(row!.attempt, 3)
            assert.strictEqual(row!.attemptedAt!.getTime(), T0 - 5 * SECOND)
            assert.deepStrictEqual(row!.attemptedBy, ["a", "b"])
            assert.deepStrictEqual(row!.errors.map((e) => e.error), ["boom", "again"])
            assert.strictEqual(row!.finalizedAt!.getTime(), T0 - SECOND)
            assert.deepStrictEqual(row!.metadata, {}, "metadata that is not an object reads as {}")
            assert.strictEqual(row!.state, "discarded")
            assert.deepStrictEqual(row!.tags, ["x_y"])
            assert.strictEqual(Buffer.from(row!.uniqueKey!).toString("hex"), hexKey(9))
            assert.deepStrictEqual(yield* get(driver, row!.id), row)
          }))

        test("jobGetById returns undefined for a job that does not exist", (driver) =>
          Effect.gen(function*() {
            assert.isUndefined(yield* driver.jobGetById({ id: 123_456n }))
          }))

        test("jobGetAvailable takes due jobs of its queue by priority, time and id, and marks them running", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(
              driver,
              full({ priority: 2, scheduledAt: at(-3 * SECOND) }), // third
              full({ priority: 1, scheduledAt: at(-SECOND) }), // second
              full({ priority: 1, scheduledAt: at(-2 * SECOND) }), // first
              full({ priority: 1, scheduledAt: at(SECOND) }), // not due
              full({ queue: "other" }), // another queue
              full({ state: "scheduled" }), // not available
              full({ priority: 3, attemptedBy: Array.from({ length: 100 }, (_, i) => `c${i}`), attempt: 4 })
            )
            const fetched = yield* driver.jobGetAvailable({ queue: "default", max: 3, now: at(0), clientId: "me" })
            assert.deepStrictEqual(fetched.map((r) => r.id), [rows[2]!.id, rows[1]!.id, rows[0]!.id])
            for (const row of fetched) {
              assert.strictEqual(row.state, "running")
              assert.strictEqual(row.attempt, 1)
              assert.strictEqual(row.attemptedAt!.getTime(), T0)
              assert.deepStrictEqual(row.attemptedBy, ["me"])
            }
            assert.deepStrictEqual(yield* get(driver, rows[2]!.id), fetched[0])
            const [last] = yield* driver.jobGetAvailable({ queue: "default", max: 10, now: at(0), clientId: "me" })
            assert.strictEqual(last!.id, rows[6]!.id)
            assert.strictEqual(last!.attempt, 5)
            assert.strictEqual(last!.attemptedBy.length, 100, "River keeps the last 100 entries")
            assert.deepStrictEqual([last!.attemptedBy[0], last!.attemptedBy[99]], ["c1", "me"])
            assert.deepStrictEqual(yield* driver.jobGetAvailable({ queue: "default", max: 10, now: at(0), clientId: "me" }), [])
          }))

        test("jobGetAvailable discards a row at attempt 32767 instead of failing, and does not return it", (driver) =>
          Effect.gen(function*() {
            const [poison, good] = yield* insertFull(driver, full({ attempt: 32767, maxAttempts: 32767 }), full())
            const fetched = yield* driver.jobGetAvailable({ queue: "default", max: 10, now: at(0), clientId: "me" })
            assert.deepStrictEqual(fetched.map((r) => r.id), [good!.id])
            const discarded = yield* get(driver, poison!.id)
            assert.strictEqual(discarded.state, "discarded")
            assert.strictEqual(discarded.attempt, 32767)
            assert.strictEqual(discarded.finalizedAt!.getTime(), T0)
            assert.match(discarded.errors[0]!.error, /attempt 32767/)
          }))

        test("jobSetStateIfRunningMany writes each outcome and returns the rows afterwards", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(driver, running(), running({ metadata: `{"keep": 1}` }), running({ attempt: 2 }), running())
            const [done, retry, snooze, gone] = rows
            const written = yield* driver.jobSetStateIfRunningMany({
              jobs: [
                { id: done!.id, state: "completed", finalizedAt: at(0), job: done! },
                {
                  id: retry!.id,
                  state: "retryable",
                  scheduledAt: at(HOUR),
                  error: anError(1),
                  metadata: { note: "x" },
                  job: retry!
                },
                { id: snooze!.id, state: "scheduled", attempt: 1, scheduledAt: at(HOUR), metadata: { snoozes: 1 }, job: snooze! },
                { id: 999_999n, state: "completed", finalizedAt: at(0), job: gone! }
              ],
              now: at(0)
            })
            const byId = new Map(written.map((r) => [r.job.id, r.job]))
            assert.strictEqual(written.length, 3, "a job that does not exist is not returned")
            assert.strictEqual(byId.get(done!.id)!.state, "completed")
            assert.strictEqual(byId.get(done!.id)!.finalizedAt!.getTime(), T0)
            const r = byId.get(retry!.id)!
            assert.strictEqual(r.state, "retryable")
            assert.strictEqual(r.scheduledAt.getTime(), T0 + HOUR)
            assert.deepStrictEqual(r.errors.map((e) => e.error), ["boom"])
            assert.deepStrictEqual(r.metadata, { keep: 1, note: "x" })
            assert.isNull(r.finalizedAt)
            const s = byId.get(snooze!.id)!
            assert.strictEqual(s.state, "scheduled")
            assert.strictEqual(s.attempt, 1)
            assert.deepStrictEqual(s.metadata, { snoozes: 1 })
            assert.deepStrictEqual(yield* get(driver, retry!.id), r)
            assert.deepStrictEqual(written.map((w) => w.applied), [true, true, true], "each outcome applied")
          }))

        test("jobSetStateIfRunningMany applies an outcome only at the attempt that ran; a row that left running only merges metadata", (driver) =>
          Effect.gen(function*() {
            const [later, left] = yield* insertFull(
              driver,
              running({ attempt: 2, metadata: `{"attempt2": true}` }),
              full({ state: "completed", attempt: 1, finalizedAt: at(-SECOND), metadata: `{"kept": true}` })
            )
            const written = yield* driver.jobSetStateIfRunningMany({
              jobs: [
                { id: later!.id, state: "completed", finalizedAt: at(0), metadata: { late: true }, job: { ...later!, attempt: 1 } },
                { id: left!.id, state: "retryable", scheduledAt: at(HOUR), error: anError(1), metadata: { merged: 1 }, job: left! }
              ],
              now: at(0)
            })
            const byId = new Map(written.map((r) => [r.job.id, r.job]))
            assert.strictEqual(byId.get(later!.id)!.state, "running")
            assert.deepStrictEqual(byId.get(later!.id)!.metadata, { attempt2: true }, "an earlier attempt's outcome changes nothing")
            const l = byId.get(left!.id)!
            assert.strictEqual(l.state, "completed")
            assert.strictEqual(l.finalizedAt!.getTime(), T0 - SECOND)
            assert.deepStrictEqual(l.errors, [])
            assert.deepStrictEqual(l.metadata, { kept: true, merged: 1 })
            assert.strictEqual(written.length, 2)
            assert.isTrue(written.every((w) => !w.applied), "neither outcome applied")
          }))

        test("jobSetStateIfRunningMany cancels a non-final outcome whose cancel was requested during the attempt", (driver) =>
          Effect.gen(function*() {
            const requested = `{"cancel_attempted_at": "2031-05-06T07:00:00Z"}`
            const rows = yield* insertFull(
              driver,
              running({ metadata: requested }),
              running({ metadata: requested }),
              running({ metadata: requested }),
              running({ metadata: requested }),
              running({ metadata: requested })
            )
            const [retry, soon, snooze, done, old] = rows
            const written = yield* driver.jobSetStateIfRunningMany({
              jobs: [
                { id: retry!.id, state: "retryable", scheduledAt: at(HOUR), error: anError(1), job: { ...retry!, metadata: {} } },
                { id: soon!.id, state: "available", scheduledAt: at(SECOND), job: { ...soon!, metadata: {} } },
                { id: snooze!.id, state: "scheduled", attempt: 0, scheduledAt: at(HOUR), job: { ...snooze!, metadata: {} } },
                { id: done!.id, state: "completed", finalizedAt: at(0), job: { ...done!, metadata: {} } },
                // The request was already there when this attempt was fetched: not this attempt's.
                { id: old!.id, state: "retryable", scheduledAt: at(HOUR), error: anError(1), job: old! }
              ],
              now: at(0)
            })
            const byId = new Map(written.map((r) => [r.job.id, r.job]))
            for (const row of [retry, soon, snooze]) {
              const w = byId.get(row!.id)!
              assert.strictEqual(w.state, "cancelled", `job ${row!.id}`)
              assert.strictEqual(w.finalizedAt!.getTime(), T0)
            }
            assert.deepStrictEqual(byId.get(retry!.id)!.errors.map((e) => e.error), ["boom"], "keeps the outcome's own error")
            assert.strictEqual(byId.get(snooze!.id)!.attempt, 1, "a cancelled snooze keeps its attempt")
            assert.strictEqual(byId.get(done!.id)!.state, "completed")
            assert.strictEqual(byId.get(old!.id)!.state, "retryable")
          }))

        test("jobSetStateIfRunningMany treats metadata that is not an object as {}", (driver) =>
          Effect.gen(function*() {
            const [row] = yield* insertFull(driver, running({ metadata: "[1]" }))
            const [written] = yield* driver.jobSetStateIfRunningMany({
              jobs: [{ id: row!.id, state: "available", attempt: 0, scheduledAt: at(SECOND), metadata: { snoozes: 1 }, job: row! }],
              now: at(0)
            })
            assert.deepStrictEqual(written!.job.metadata, { snoozes: 1 })
          }))

        test("jobCompleteManyIfRunning completes plain successes as jobSetStateIfRunningMany would, fenced by attempt", (driver) =>
          Effect.gen(function*() {
            const [a, b, later, left, cancelled, twin] = yield* insertFull(
              driver,
              running(),
              running({ metadata: `{"keep": 1}` }),
              running({ attempt: 2 }),
              full({ state: "available" }),
              running({ metadata: `{"cancel_attempted_at": "2031-05-06T07:08:09.123Z"}` }),
              running()
            )
            // A cancel requested during b's attempt and a checkpoint: metadata another writer changed.
            yield* driver.jobMergeMetadataIfRunning({ id: b!.id, attempt: 1, metadata: { step: "two" } })
            const done = yield* driver.jobCompleteManyIfRunning({
              jobs: [
                { id: b!.id, finalizedAt: at(2), job: b! },
                { id: a!.id, finalizedAt: at(1), job: a! },
                { id: later!.id, finalizedAt: at(0), job: { ...later!, attempt: 1 } }, // an earlier attempt's success
                { id: left!.id, finalizedAt: at(0), job: left! }, // no longer running
                { id: cancelled!.id, finalizedAt: at(3), job: cancelled! },
                { id: 999_999n, finalizedAt: at(0), job: a! }
              ],
              wantRows: true
            })
            assert.deepStrictEqual([...done.ids].sort(), [a!.id, b!.id, cancelled!.id].sort())
            const byId = new Map(done.rows.map((r) => [r.id, r]))
            for (const [row, offset] of [[a!, 1], [b!, 2], [cancelled!, 3]] as const) {
              const stored = yield* get(driver, row.id)
              assert.strictEqual(stored.state, "completed", "a success stays completed, a cancel requested meanwhile or not")
              assert.strictEqual(stored.finalizedAt!.getTime(), T0 + offset)
              assert.deepStrictEqual(byId.get(row.id), stored, "the returned row is the row as written")
            }
            assert.deepStrictEqual(byId.get(b!.id)!.metadata, { keep: 1, step: "two" })
            assert.strictEqual((yield* get(driver, later!.id)).state, "running")
            assert.strictEqual((yield* get(driver, left!.id)).state, "available")
            const ids = yield* driver.jobCompleteManyIfRunning({ jobs: [{ id: twin!.id, finalizedAt: at(0), job: twin! }], wantRows: false })
            assert.deepStrictEqual(ids, { ids: [twin!.id], rows: [] })
            assert.strictEqual((yield* get(driver, twin!.id)).state, "completed")
          }))

        test("jobSetStateIfRunningManyIds writes the same and returns the ids it changed", (driver) =>
          Effect.gen(function*() {
            const [a, b] = yield* insertFull(driver, running(), full({ state: "completed", finalizedAt: at(0) }))
            const ids = yield* driver.jobSetStateIfRunningManyIds({
              jobs: [
                { id: a!.id, state: "completed", finalizedAt: at(0), job: a! },
                { id: b!.id, state: "completed", finalizedAt: at(0), job: { ...b!, attempt: 1 } }
              ],
              now: at(0)
            })
            assert.deepStrictEqual(ids, [a!.id])
            assert.strictEqual((yield* get(driver, a!.id)).state, "completed")
          }))

        test("jobCancel cancels a queued job at once, marks a running one, leaves a finalized one", (driver) =>
          Effect.gen(function*() {
            const [queued, run, done, nullMeta] = yield* insertFull(
              driver,
              full(),
              running(),
              full({ state: "completed", finalizedAt: at(-SECOND) }),
              full({ state: "scheduled", metadata: "null" })
            )
            const a = (yield* driver.jobCancel({ id: queued!.id, now: at(0) }))!
            assert.isTrue(a.changed)
            assert.strictEqual(a.job.state, "cancelled")
            assert.strictEqual(a.job.finalizedAt!.getTime(), T0)
            assert.strictEqual(a.job.metadata.cancel_attempted_at, at(0).toISOString())
            const b = (yield* driver.jobCancel({ id: run!.id, now: at(0) }))!
            assert.isTrue(b.changed)
            assert.strictEqual(b.job.state, "running")
            assert.isNull(b.job.finalizedAt)
            assert.strictEqual(b.job.metadata.cancel_attempted_at, at(0).toISOString())
            const c = (yield* driver.jobCancel({ id: done!.id, now: at(0) }))!
            assert.isFalse(c.changed)
            assert.deepStrictEqual(c.job, done)
            const d = (yield* driver.jobCancel({ id: nullMeta!.id, now: at(0) }))!
            assert.deepStrictEqual(Object.keys(d.job.metadata), ["cancel_attempted_at"])
            assert.isUndefined(yield* driver.jobCancel({ id: 999_999n, now: at(0) }))
          }))

        test("jobRetry makes any job but a running one available now, as River does", (driver) =>
          Effect.gen(function*() {
            const [discarded, run, due] = yield* insertFull(
              driver,
              full({
                state: "discarded",
                attempt: 3,
                maxAttempts: 3,
                finalizedAt: at(-SECOND),
                errors: [anError(3)],
                metadata: `{"cancel_attempted_at": "x", "other": 1}`
              }),
              running(),
              full({ scheduledAt: at(-SECOND) })
            )
            const a = (yield* driver.jobRetry({ id: discarded!.id, now: at(0) }))!
            assert.isTrue(a.changed)
            assert.strictEqual(a.job.state, "available")
            assert.strictEqual(a.job.scheduledAt.getTime(), T0)
            assert.isNull(a.job.finalizedAt)
            assert.strictEqual(a.job.attempt, 3)
            assert.strictEqual(a.job.maxAttempts, 4)
            assert.strictEqual(a.job.errors.length, 1)
            assert.deepStrictEqual(a.job.metadata, { other: 1 })
            const b = (yield* driver.jobRetry({ id: run!.id, now: at(0) }))!
            assert.isFalse(b.changed)
            assert.strictEqual(b.job.state, "running")
            const c = (yield* driver.jobRetry({ id: due!.id, now: at(0) }))!
            assert.isFalse(c.changed)
            assert.deepStrictEqual(c.job, due)
            assert.isUndefined(yield* driver.jobRetry({ id: 999_999n, now: at(0) }))
          }))

        test("jobDelete deletes a job unless it is running", (driver) =>
          Effect.gen(function*() {
            const [done, run] = yield* insertFull(driver, full({ state: "completed", finalizedAt: at(0) }), running())
            const a = (yield* driver.jobDelete({ id: done!.id }))!
            assert.isTrue(a.deleted)
            assert.deepStrictEqual(a.job, done)
            assert.isUndefined(yield* driver.jobGetById({ id: done!.id }))
            const b = (yield* driver.jobDelete({ id: run!.id }))!
            assert.isFalse(b.deleted)
            assert.isDefined(yield* driver.jobGetById({ id: run!.id }))
            assert.isUndefined(yield* driver.jobDelete({ id: done!.id }))
          }))

        test("jobMarkRunning marks a job running as a fetch would, whatever its state", (driver) =>
          Effect.gen(function*() {
            const [row, done] = yield* insertFull(
              driver,
              full({ state: "retryable", attempt: 2, attemptedBy: ["x"] }),
              full({ state: "discarded", finalizedAt: at(-SECOND) })
            )
            const marked = (yield* driver.jobMarkRunning({ id: row!.id, now: at(0), clientId: "tester" }))!
            assert.strictEqual(marked.state, "running")
            assert.strictEqual(marked.attempt, 3)
            assert.strictEqual(marked.attemptedAt!.getTime(), T0)
            assert.deepStrictEqual(marked.attemptedBy, ["x", "tester"])
            const revived = (yield* driver.jobMarkRunning({ id: done!.id, now: at(0), clientId: "tester" }))!
            assert.strictEqual(revived.state, "running")
            assert.isNull(revived.finalizedAt)
            assert.isUndefined(yield* driver.jobMarkRunning({ id: 999_999n, now: at(0), clientId: "tester" }))
          }))

        test("jobMergeMetadataIfRunning merges only while the job runs the given attempt", (driver) =>
          Effect.gen(function*() {
            const [row, done] = yield* insertFull(driver, running({ attempt: 2, metadata: `{"a": 1}` }), full({ state: "completed", finalizedAt: at(0) }))
            assert.isTrue(yield* driver.jobMergeMetadataIfRunning({ id: row!.id, attempt: 2, metadata: { b: 2 } }))
            assert.isFalse(yield* driver.jobMergeMetadataIfRunning({ id: row!.id, attempt: 1, metadata: { c: 3 } }))
            assert.isFalse(yield* driver.jobMergeMetadataIfRunning({ id: done!.id, attempt: 0, metadata: { c: 3 } }))
            assert.deepStrictEqual((yield* get(driver, row!.id)).metadata, { a: 1, b: 2 })
          }))

        test("jobGetCancelRequested finds the running jobs whose cancel was requested since they were fetched", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(driver, running(), running(), running(), full({ state: "completed", finalizedAt: at(0) }))
            const [requested, stale, quiet, done] = rows
            const fetched = [...rows]
            yield* driver.jobCancel({ id: requested!.id, now: at(0) })
            yield* driver.jobCancel({ id: stale!.id, now: at(0) })
            // `stale` carried this very request when it was fetched: not a request of this attempt.
            fetched[1] = yield* get(driver, stale!.id)
            yield* driver.jobCancel({ id: done!.id, now: at(0) })
            const found = yield* driver.jobGetCancelRequested({ jobs: fetched })
            assert.deepStrictEqual(found, [requested!.id])
            assert.deepStrictEqual(yield* driver.jobGetCancelRequested({ jobs: [quiet!] }), [])
          }))

        test("jobSchedule makes due retryable and scheduled jobs available and reports their queues", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(
              driver,
              full({ state: "retryable", scheduledAt: at(-SECOND), queue: "q_a" }),
              full({ state: "scheduled", scheduledAt: at(3 * SECOND), queue: "q_b" }),
              full({ state: "scheduled", scheduledAt: at(HOUR) })
            )
            const result = yield* driver.jobSchedule({ now: at(0), scheduleBefore: at(5 * SECOND), notifyBefore: at(5), max: 10 })
            assert.strictEqual(result.scheduled, 2)
            assert.strictEqual(result.discarded, 0)
            assert.deepStrictEqual([...result.queues].sort(), ["q_a", "q_b"])
            const states = yield* Effect.forEach(rows, (r) => Effect.map(get(driver, r.id), (j) => j.state))
            assert.deepStrictEqual(states, ["available", "available", "scheduled"])
            assert.strictEqual((yield* get(driver, rows[1]!.id)).scheduledAt.getTime(), T0 + 3 * SECOND, "scheduled_at is kept")
          }))

        test("jobSchedule promotes at most max jobs per call", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, ...Array.from({ length: 5 }, () => full({ state: "scheduled", scheduledAt: at(-SECOND) })))
            const first = yield* driver.jobSchedule({ now: at(0), scheduleBefore: at(5 * SECOND), notifyBefore: at(5), max: 3 })
            assert.strictEqual(first.scheduled, 3)
            const second = yield* driver.jobSchedule({ now: at(0), scheduleBefore: at(5 * SECOND), notifyBefore: at(5), max: 3 })
            assert.strictEqual(second.scheduled, 2)
          }))

        test("jobSchedule discards a due unique job whose key is held, and all but the first due job of a key", (driver) =>
          Effect.gen(function*() {
            const held = { uniqueKey: hexKey(7), uniqueStates: "11110101" }
            const free = { uniqueKey: hexKey(8), uniqueStates: "11110101" }
            const [holder, blocked, first, second] = yield* insertFull(
              driver,
              full({ state: "available", ...held }),
              full({ state: "retryable", scheduledAt: at(-2 * SECOND), ...held, uniqueStates: "11010101" }),
              full({ state: "retryable", scheduledAt: at(-2 * SECOND), ...free, uniqueStates: "11010101" }),
              full({ state: "retryable", scheduledAt: at(-SECOND), ...free, uniqueStates: "11010101" })
            )
            const result = yield* driver.jobSchedule({ now: at(0), scheduleBefore: at(5 * SECOND), notifyBefore: at(5), max: 10 })
            assert.strictEqual(result.scheduled, 1)
            assert.strictEqual(result.discarded, 2)
            assert.strictEqual((yield* get(driver, holder!.id)).state, "available")
            assert.strictEqual((yield* get(driver, first!.id)).state, "available")
            for (const row of [blocked, second]) {
              const j = yield* get(driver, row!.id)
              assert.strictEqual(j.state, "discarded")
              assert.strictEqual(j.finalizedAt!.getTime(), T0)
              assert.strictEqual(j.metadata.unique_key_conflict, "scheduler_discarded")
            }
          }))

        test("jobGetStuck lists running jobs attempted before the horizon, after an id, in id order", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(
              driver,
              running({ attemptedAt: at(-2 * HOUR) }),
              running({ attemptedAt: at(-2 * HOUR) }),
              running({ attemptedAt: at(-60 * SECOND) }),
              full({ state: "available", attemptedAt: at(-2 * HOUR) }),
              running({ attemptedAt: at(-3 * HOUR) })
            )
            const stuck = yield* driver.jobGetStuck({ stuckHorizon: at(-HOUR), afterId: 0n, max: 10 })
            assert.deepStrictEqual(stuck.map((r) => r.id), [rows[0]!.id, rows[1]!.id, rows[4]!.id])
            const page = yield* driver.jobGetStuck({ stuckHorizon: at(-HOUR), afterId: rows[0]!.id, max: 1 })
            assert.deepStrictEqual(page.map((r) => r.id), [rows[1]!.id])
          }))

        test("jobRescueMany applies rescues to jobs still at the attempt read and still stuck, counting rescues", (driver) =>
          Effect.gen(function*() {
            const [retry, discard, moved, again] = yield* insertFull(
              driver,
              running({ attemptedAt: at(-2 * HOUR), metadata: `{"river:rescue_count": "many"}` }),
              running({ attemptedAt: at(-2 * HOUR), metadata: "null" }),
              running({ attempt: 2, attemptedAt: at(-SECOND) }),
              running({ attemptedAt: at(-2 * HOUR), metadata: `{"river:rescue_count": 2}` })
            )
            const rescued = yield* driver.jobRescueMany({
              jobs: [
                { id: retry!.id, attempt: 1, state: "retryable", scheduledAt: at(SECOND), error: anError(1, "rescued") },
                { id: discard!.id, attempt: 1, state: "discarded", finalizedAt: at(0), error: anError(1, "rescued") },
                { id: moved!.id, attempt: 1, state: "retryable", scheduledAt: at(SECOND), error: anError(1, "rescued") },
                { id: again!.id, attempt: 1, state: "cancelled", finalizedAt: at(0), error: anError(1, "rescued") }
              ],
              stuckHorizon: at(-HOUR)
            })
            assert.strictEqual(rescued, 3)
            const r = yield* get(driver, retry!.id)
            assert.strictEqual(r.state, "retryable")
            assert.strictEqual(r.scheduledAt.getTime(), T0 + SECOND)
            assert.strictEqual(r.attempt, 1)
            assert.deepStrictEqual(r.errors.map((e) => e.error), ["rescued"])
            assert.strictEqual(r.metadata["river:rescue_count"], 1)
            const d = yield* get(driver, discard!.id)
            assert.strictEqual(d.state, "discarded")
            assert.strictEqual(d.finalizedAt!.getTime(), T0)
            assert.deepStrictEqual(d.metadata, { "river:rescue_count": 1 })
            assert.strictEqual((yield* get(driver, moved!.id)).state, "running", "fetched again since it was read")
            assert.strictEqual((yield* get(driver, again!.id)).metadata["river:rescue_count"], 3)
          }))

        test("jobDeleteFinalized deletes finalized jobs past each state's horizon, at most max, and keeps a state without one", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(
              driver,
              full({ state: "completed", finalizedAt: at(-25 * HOUR) }),
              full({ state: "completed", finalizedAt: at(-25 * HOUR) }),
              full({ state: "completed", finalizedAt: at(-23 * HOUR) }),
              full({ state: "cancelled", finalizedAt: at(-25 * HOUR) }),
              full({ state: "discarded", finalizedAt: at(-30 * 24 * HOUR) }),
              full({ state: "available" })
            )
            const params = { cancelledBefore: at(-24 * HOUR), completedBefore: at(-24 * HOUR), discardedBefore: undefined }
            assert.strictEqual(yield* driver.jobDeleteFinalized({ ...params, max: 2 }), 2)
            assert.strictEqual(yield* driver.jobDeleteFinalized({ ...params, max: 2 }), 1)
            assert.strictEqual(yield* driver.jobDeleteFinalized({ ...params, max: 2 }), 0)
            const left = yield* driver.jobList({ orderBy: "id", order: "asc", limit: 10 })
            assert.deepStrictEqual(left.map((r) => r.job.state), ["completed", "discarded", "available"])
          }))

        test("jobGetLatestScheduledAt answers the latest scheduled_at of the jobs whose metadata contains the object", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(
              driver,
              full({ scheduledAt: at(-HOUR), metadata: `{"river:periodic_job_id": "p", "x": 1}` }),
              full({ scheduledAt: at(-SECOND), metadata: `{"river:periodic_job_id": "p"}` }),
              full({ scheduledAt: at(HOUR), metadata: `{"river:periodic_job_id": "q"}` })
            )
            const latest = yield* driver.jobGetLatestScheduledAt({ metadataContains: { "river:periodic_job_id": "p" } })
            assert.strictEqual(latest!.getTime(), T0 - SECOND)
            assert.isUndefined(yield* driver.jobGetLatestScheduledAt({ metadataContains: { "river:periodic_job_id": "none" } }))
          }))

        test("jobList filters, orders and continues after a row", (driver) =>
          Effect.gen(function*() {
            const rows = yield* insertFull(
              driver,
              full({ kind: "k_a", queue: "q_a", priority: 1, tags: ["t_a"], scheduledAt: at(-3 * SECOND), metadata: `{"m": 1}` }),
              full({ kind: "k_b", queue: "q_a", priority: 2, tags: ["t_a", "t_b"], scheduledAt: at(-1 * SECOND) }),
              full({ kind: "k_a", queue: "q_b", priority: 3, scheduledAt: at(-2 * SECOND), state: "completed", finalizedAt: at(0) })
            )
            const ids = (page: ReadonlyArray<{ readonly job: JobRow }>) => page.map((r) => r.job.id)
            const [a, b, c] = rows.map((r) => r.id)
            const list = (params: Partial<Parameters<Driver["jobList"]>[0]>) =>
              driver.jobList({ orderBy: "id", order: "asc", limit: 10, ...params })
            assert.deepStrictEqual(ids(yield* list({})), [a, b, c])
            assert.deepStrictEqual(ids(yield* list({ order: "desc", limit: 2 })), [c, b])
            assert.deepStrictEqual(ids(yield* list({ kinds: ["k_a"] })), [a, c])
            assert.deepStrictEqual(ids(yield* list({ queues: ["q_a"], priorities: [2] })), [b])
            assert.deepStrictEqual(ids(yield* list({ states: ["completed"] })), [c])
            assert.deepStrictEqual(ids(yield* list({ ids: [a!, c!] })), [a, c])
            assert.deepStrictEqual(ids(yield* list({ tagsAny: ["t_b", "t_z"] })), [b])
            assert.deepStrictEqual(ids(yield* list({ tagsAll: ["t_a"] })), [a, b])
            assert.deepStrictEqual(ids(yield* list({ metadataContains: `{"m": 1}` })), [a])
            assert.deepStrictEqual(ids(yield* list({ orderBy: "finalizedAt" })), [c])
            const byTime = yield* list({ orderBy: "scheduledAt", limit: 2 })
            assert.deepStrictEqual(ids(byTime), [a, c])
            assert.strictEqual(byTime[0]!.orderValueMicros, BigInt(T0 - 3 * SECOND) * 1000n)
            const next = yield* list({
              orderBy: "scheduledAt",
              after: { id: byTime[1]!.job.id, orderValueMicros: String(byTime[1]!.orderValueMicros) }
            })
            assert.deepStrictEqual(ids(next), [b])
            assert.deepStrictEqual(ids(yield* list({ after: { id: a!, orderValueMicros: null } })), [b, c])
            assert.isNull((yield* list({ limit: 1 }))[0]!.orderValueMicros)
          }))
      })

      describe("flow control (jobGetAvailableLimited)", () => {
        const limited = (
          driver: Driver,
          max: number,
          limits: Partial<Parameters<Driver["jobGetAvailableLimited"]>[0]["limits"]>,
          now = at(0)
        ) =>
          driver.jobGetAvailableLimited({
            queue: "default",
            max,
            now,
            clientId: "c",
            limits: { globalLimit: undefined, rate: undefined, partition: undefined, ...limits }
          })
        const ids = (jobs: ReadonlyArray<JobRow>) => jobs.map((j) => j.id)

        test("a global limit counts the queue's running jobs: it starts only the free slots, in fetch order", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, running(), running(), running(), running({ queue: "other" }))
            const available = yield* insertFull(driver, ...Array.from({ length: 5 }, (_, i) => full({ priority: 1 + (i % 2) })))
            const first = yield* limited(driver, 10, { globalLimit: 5 })
            assert.deepStrictEqual(ids(first.jobs), [available[0]!.id, available[2]!.id], "priority 1 first; 5 − 3 running")
            assert.isTrue(first.jobs.every((j) => j.state === "running" && j.attempt === 1 && j.attemptedAt!.getTime() === T0))
            assert.isFalse(first.truncated)
            assert.deepStrictEqual((yield* limited(driver, 10, { globalLimit: 5 })).jobs, [], "full")
            assert.strictEqual((yield* limited(driver, 10, { globalLimit: 6 })).jobs.length, 1)
          }))

        test("partitions by args keys: a full partition is skipped, never holding back the others", (driver) =>
          Effect.gen(function*() {
            const c = (customer: string) => `{"customer": ${JSON.stringify(customer)}, "n": 1}`
            yield* insertFull(driver, running({ args: c("a") }))
            const [a2, b1, b2, c1, none] = yield* insertFull(
              driver,
              full({ args: c("a") }),
              full({ args: c("b") }),
              full({ args: c("b") }),
              full({ args: c("c") }),
              full({ args: `{"n": 2}` })
            )
            const limits = { globalLimit: 1, partition: { byKind: false, byArgs: ["customer"] } }
            const fetched = yield* limited(driver, 10, limits)
            assert.deepStrictEqual(ids(fetched.jobs), [b1!.id, c1!.id, none!.id], "one per customer; jobs without the key share one")
            assert.deepStrictEqual((yield* limited(driver, 10, limits)).jobs, [])
            assert.strictEqual((yield* get(driver, a2!.id)).state, "available")
            assert.strictEqual((yield* get(driver, b2!.id)).state, "available")
          }))

        test("partitions by kind", (driver) =>
          Effect.gen(function*() {
            const [a, , b] = yield* insertFull(driver, full({ kind: "kind_a" }), full({ kind: "kind_a" }), full({ kind: "kind_b" }))
            const fetched = yield* limited(driver, 10, { globalLimit: 1, partition: { byKind: true, byArgs: [] } })
            assert.deepStrictEqual(ids(fetched.jobs), [a!.id, b!.id])
          }))

        test("a partitioned scan that stops at its bound says so; the next fetch reaches the partitions beyond", (driver) =>
          Effect.gen(function*() {
            const limits = { globalLimit: 1, partition: { byKind: true, byArgs: [] } }
            yield* driver.jobInsertMany({
              jobs: Array.from({ length: 1_001 }, () => job({ kind: "kind_a" })),
              now: at(0),
              notifyQueues: []
            })
            const [b] = yield* insertFull(driver, full({ kind: "kind_b", scheduledAt: at(0) }))
            const first = yield* limited(driver, 2, limits)
            assert.deepStrictEqual(first.jobs.map((j) => j.kind), ["kind_a"])
            assert.isTrue(first.truncated, "1,000 rows scanned, all of kind_a")
            const second = yield* limited(driver, 2, limits)
            assert.deepStrictEqual(ids(second.jobs), [b!.id], "kind_a is full now and left out of the scan")
            assert.isFalse(second.truncated)
          }))

        test("a rate limit allows limit starts per window and says when the next start is allowed", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, ...Array.from({ length: 5 }, () => full()))
            const rate = { limit: 2, perMillis: HOUR }
            const first = yield* limited(driver, 10, { rate })
            assert.strictEqual(first.jobs.length, 2)
            const width = HOUR / 20
            const bucket = Math.floor(T0 / width) * width
            assert.strictEqual(first.nextRateAt?.getTime(), Math.ceil(bucket + HOUR + width), "when this start leaves the window")
            const second = yield* limited(driver, 10, { rate }, at(30 * 60_000))
            assert.deepStrictEqual(second.jobs, [])
            assert.strictEqual(second.nextRateAt?.getTime(), Math.ceil(bucket + HOUR + width))
            const third = yield* limited(driver, 10, { rate }, first.nextRateAt!)
            assert.strictEqual(third.jobs.length, 2, "the window has moved past the first starts")
          }))

        const handOver = (
          driver: Driver,
          done: ReadonlyArray<JobRow>,
          options: { readonly max?: number; readonly limit?: number; readonly wantRows?: boolean } = {}
        ) =>
          driver.jobCompleteManyAndStart({
            jobs: done.map((job, i) => ({ id: job.id, finalizedAt: at(i), job })),
            wantRows: options.wantRows ?? true,
            queue: "default",
            max: options.max ?? 10,
            limit: options.limit ?? 5,
            now: at(0),
            clientId: "c"
          })

        test("jobCompleteManyAndStart completes and starts as many jobs in fetch order, never more than applied", (driver) =>
          Effect.gen(function*() {
            const [a, b, stale] = yield* insertFull(driver, running(), running({ metadata: `{"keep": 1}` }), running({ attempt: 2 }))
            const available = yield* insertFull(driver, ...Array.from({ length: 4 }, (_, i) => full({ priority: 1 + (i % 2) })))
            yield* insertFull(driver, full({ queue: "other", priority: 1 }))
            const result = yield* handOver(driver, [a!, b!, { ...stale!, attempt: 1 }])
            assert.deepStrictEqual([...result.ids].sort(), [a!.id, b!.id].sort(), "an earlier attempt's success does not apply")
            assert.deepStrictEqual(ids(result.started), [available[0]!.id, available[2]!.id], "two applied: two started, priority first")
            for (const job of result.started) {
              assert.strictEqual(job.state, "running")
              assert.strictEqual(job.attempt, 1)
              assert.strictEqual(job.attemptedAt!.getTime(), T0)
              assert.deepStrictEqual(job.attemptedBy, ["c"])
              assert.deepStrictEqual(yield* get(driver, job.id), job, "the started row as stored")
            }
            const byId = new Map(result.rows.map((r) => [r.id, r]))
            assert.deepStrictEqual(byId.get(b!.id), yield* get(driver, b!.id), "the completed row as written")
            assert.strictEqual((yield* get(driver, b!.id)).state, "completed")
            assert.strictEqual((yield* get(driver, stale!.id)).state, "running")
            // At most `max`, and the ids alone without rows.
            const [c, d] = yield* insertFull(driver, running(), running())
            const one = yield* handOver(driver, [c!, d!], { max: 1, wantRows: false })
            assert.deepStrictEqual([...one.ids].sort(), [c!.id, d!.id].sort())
            assert.deepStrictEqual(one.rows, [])
            assert.deepStrictEqual(ids(one.started), [available[1]!.id])
          }))

        test("jobCompleteManyAndStart starts nothing when nothing applied or the queue runs more than its limit", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, full(), full())
            const [gone] = yield* insertFull(driver, full({ state: "completed", finalizedAt: at(0), attempt: 1 }))
            const none = yield* handOver(driver, [{ ...gone!, state: "running" }])
            assert.deepStrictEqual(none.ids, [])
            assert.deepStrictEqual(none.started, [], "no completion applied: no slot to hand over")
            const busy = yield* insertFull(driver, running(), running(), running())
            const over = yield* handOver(driver, [busy[0]!], { limit: 2 })
            assert.deepStrictEqual(over.ids, [busy[0]!.id], "the completion itself applies")
            assert.deepStrictEqual(over.started, [], "3 running against a limit of 2 (lowered since): the slot is not handed over")
            const within = yield* handOver(driver, [busy[1]!], { limit: 2 })
            assert.strictEqual(within.started.length, 1, "2 running against 2: one for one")
          }))

        test("hand-overs and limited fetches at once never exceed a global limit together", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, ...Array.from({ length: 300 }, () => full()))
            const limit = 6
            const first = yield* limited(driver, 10, { globalLimit: limit })
            assert.strictEqual(first.jobs.length, limit)
            let runningJobs = [...first.jobs]
            // Rounds: every running job completes through a hand-over while fetches try to take
            // slots; the running count must stay at the limit.
            for (let round = 0; round < 10; round++) {
              const results = yield* Effect.all(
                [
                  ...runningJobs.map((job) => Effect.map(handOver(driver, [job], { limit }), (r) => r.started)),
                  ...Array.from({ length: 4 }, () => Effect.map(limited(driver, 10, { globalLimit: limit }), (r) => r.jobs))
                ],
                { concurrency: "unbounded" }
              )
              runningJobs = results.flat()
              const stored = yield* driver.jobList({ states: ["running"], orderBy: "id", order: "asc", limit: 100 })
              assert.isAtMost(stored.length, limit, `round ${round}`)
              assert.strictEqual(runningJobs.length, stored.length, `round ${round}: every running job was handed to someone`)
            }
          }))

        test("concurrent fetches never exceed a global limit together", (driver) =>
          Effect.gen(function*() {
            yield* insertFull(driver, ...Array.from({ length: 200 }, () => full()))
            // Rounds of 8 fetches at once, each round with a higher limit: every round may add
            // only the new slot, whatever the interleaving.
            for (let limit = 1; limit <= 10; limit++) {
              const results = yield* Effect.all(
                Array.from({ length: 8 }, () => limited(driver, 10, { globalLimit: limit })),
                { concurrency: "unbounded" }
              )
              assert.strictEqual(results.reduce((n, r) => n + r.jobs.length, 0), 1, `limit ${limit}`)
            }
          }))
      })

      describe("river_queue", () => {
        test("queueCreateOrSetUpdatedAt creates a queue's row or refreshes it, and reads its pause", (driver) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* driver.queueCreateOrSetUpdatedAt({ name: "q_a", now: at(0) }), { name: "q_a", pausedAt: null })
            yield* driver.queuePause({ name: "q_a", now: at(SECOND) })
            const row = yield* driver.queueCreateOrSetUpdatedAt({ name: "q_a", now: at(2 * SECOND) })
            assert.strictEqual(row.pausedAt!.getTime(), T0 + SECOND)
            // Refreshed at 2 s: not expired at 2 s + 1 ms.
            assert.strictEqual(yield* driver.queueDeleteExpired({ updatedBefore: at(2 * SECOND), max: 10 }), 0)
          }))

        test("queuePause pauses one queue (creating its row) or every queue; queueResume undoes it", (driver) =>
          Effect.gen(function*() {
            yield* driver.queueCreateOrSetUpdatedAt({ name: "q_a", now: at(0) })
            yield* driver.queueCreateOrSetUpdatedAt({ name: "q_b", now: at(0) })
            yield* driver.queuePause({ name: "q_new", now: at(0) })
            const paused = (rows: ReadonlyArray<{ readonly name: string; readonly pausedAt: Date | null }>) =>
              rows.filter((r) => r.pausedAt !== null).map((r) => r.name).sort()
            const names = ["q_a", "q_b", "q_new", "q_none"]
            assert.deepStrictEqual(paused(yield* driver.queueList({ names })), ["q_new"])
            assert.strictEqual((yield* driver.queueList({ names })).length, 3, "a queue without a row is not listed")
            yield* driver.queuePause({ name: "*", now: at(SECOND) })
            assert.deepStrictEqual(paused(yield* driver.queueList({ names })), ["q_a", "q_b", "q_new"])
            const [first] = yield* driver.queueList({ names: ["q_new"] })
            assert.strictEqual(first!.pausedAt!.getTime(), T0, "pausing again keeps the first pause")
            yield* driver.queueResume({ name: "q_a", now: at(2 * SECOND) })
            assert.deepStrictEqual(paused(yield* driver.queueList({ names })), ["q_b", "q_new"])
            yield* driver.queueResume({ name: "*", now: at(3 * SECOND) })
            assert.deepStrictEqual(paused(yield* driver.queueList({ names })), [])
          }))

        test("queueListAll lists every queue row by name, at most max, with its times", (driver) =>
          Effect.gen(function*() {
            for (const name of ["q_b", "q_a", "q_c"]) yield* driver.queueCreateOrSetUpdatedAt({ name, now: at(0) })
            yield* driver.queuePause({ name: "q_b", now: at(SECOND) })
            const all = yield* driver.queueListAll({ max: 10 })
            assert.deepStrictEqual(all.map((r) => r.name), ["q_a", "q_b", "q_c"])
            assert.deepStrictEqual(all.map((r) => r.pausedAt?.getTime() ?? null), [null, T0 + SECOND, null])
            assert.strictEqual(all[0]!.createdAt.getTime(), T0)
            assert.strictEqual(all[1]!.updatedAt.getTime(), T0 + SECOND)
            assert.deepStrictEqual((yield* driver.queueListAll({ max: 2 })).map((r) => r.name), ["q_a", "q_b"])
          }))

        test("queueDeleteExpired deletes queue rows not updated since the horizon, at most max", (driver) =>
          Effect.gen(function*() {
            for (const name of ["q_a", "q_b", "q_c"]) yield* driver.queueCreateOrSetUpdatedAt({ name, now: at(-25 * HOUR) })
            yield* driver.queueCreateOrSetUpdatedAt({ name: "q_fresh", now: at(-HOUR) })
            assert.strictEqual(yield* driver.queueDeleteExpired({ updatedBefore: at(-24 * HOUR), max: 2 }), 2)
            assert.strictEqual(yield* driver.queueDeleteExpired({ updatedBefore: at(-24 * HOUR), max: 2 }), 1)
            const left = yield* driver.queueList({ names: ["q_a", "q_b", "q_c", "q_fresh"] })
            assert.deepStrictEqual(left.map((r) => r.name), ["q_fresh"])
          }))
      })

      describe("river_leader", () => {
        const ttl = Duration.seconds(15)
        test("leaderAttemptElect elects one leader; the term renews and resigns only as itself", (driver) =>
          Effect.gen(function*() {
            const term = yield* driver.leaderAttemptElect({ leaderId: "a", ttl })
            assert.isDefined(term)
            assert.isUndefined(yield* driver.leaderAttemptElect({ leaderId: "b", ttl }), "someone leads")
            assert.isTrue(yield* driver.leaderAttemptReelect({ leaderId: "a", term: term!, ttl }))
            assert.isFalse(yield* driver.leaderAttemptReelect({ leaderId: "b", term: term!, ttl }))
            assert.isFalse(yield* driver.leaderAttemptReelect({ leaderId: "a", term: term! + 1n, ttl }))
            assert.isFalse(yield* driver.leaderResign({ leaderId: "b", term: term! }))
            assert.isTrue(yield* driver.leaderResign({ leaderId: "a", term: term! }))
            assert.isFalse(yield* driver.leaderResign({ leaderId: "a", term: term! }), "resigned already")
            const next = yield* driver.leaderAttemptElect({ leaderId: "b", ttl })
            assert.isDefined(next)
            assert.isFalse(yield* driver.leaderAttemptReelect({ leaderId: "a", term: term!, ttl }), "an old term never renews")
          }))

        test("an expired term is neither renewed nor in the way of an election", (driver) =>
          TestClock.withLive(Effect.gen(function*() {
            const short = Duration.millis(50)
            const term = yield* driver.leaderAttemptElect({ leaderId: "a", ttl: short })
            assert.isDefined(term)
            // The lease lives on the database clock: wait it out in real time.
            yield* Effect.sleep("150 millis")
            assert.isFalse(yield* driver.leaderAttemptReelect({ leaderId: "a", term: term!, ttl: short }))
            assert.isDefined(yield* driver.leaderAttemptElect({ leaderId: "b", ttl }))
          })))
      })

      describe("no table", () => {
        test("databaseTime reads the database's clock; schemaCurrent names the schema; notifyMany sends", (driver) =>
          TestClock.withLive(Effect.gen(function*() {
            const now = Date.now()
            assert.isBelow(Math.abs((yield* driver.databaseTime) - now), 60_000)
            const schema = yield* driver.schemaCurrent
            assert.strictEqual(schema, driver.schema ?? schema)
            assert.isAbove(schema.length, 0)
            yield* driver.notifyMany({ topic: "river_insert", payloads: [`{"queue": "default"}`] })
            yield* driver.notifyMany({ topic: "river_control", payloads: [] })
          })))
      })
    })
  })
