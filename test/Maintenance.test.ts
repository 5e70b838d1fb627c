import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Fiber, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import type { Driver } from "../src/internal/driver/driver.ts"
import { makePgDriver } from "../src/internal/driver/pg/driver.ts"
import * as JobCleaner from "../src/internal/maintenance/jobCleaner.ts"
import * as QueueCleaner from "../src/internal/maintenance/queueCleaner.ts"
import * as Rescuer from "../src/internal/maintenance/rescuer.ts"
import * as Scheduler from "../src/internal/maintenance/scheduler.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"

const Task = JobKind.make("task", { args: Schema.Struct({ n: Schema.Number }) })
const HOUR = 3_600_000
const T0 = Date.parse("2033-01-01T00:00:00.000Z")

const leaderRow = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ leader_id: string }>(`SELECT leader_id FROM "${schema}".river_leader`))

describe("maintenance", () => {
  it.layer(freshDatabase("maintenance"))((it) => {
    it.effect("of two runners on one schema exactly one leads", () =>
      TestClock.withLive(Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("lead")
        const worker = Worker.make(Task, () => Effect.void)
        const options = { schema, queues: { default: { maxWorkers: 1 } }, workers: [worker] } as const
        const a = yield* Testing.runner({ ...options, id: "runner_a" })
        const b = yield* Testing.runner({ ...options, id: "runner_b" })
        yield* Effect.sleep("200 millis")
        assert.deepStrictEqual((yield* leaderRow(schema)).map((r) => r.leader_id), ["runner_a"])
        assert.isTrue(yield* a.runner.isLeader)
        assert.isFalse(yield* b.runner.isLeader)
      })))

    it.effect("a stopping leader hands over to a follower within moments", () =>
      TestClock.withLive(Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("handover")
        const worker = Worker.make(Task, () => Effect.void)
        const options = { schema, queues: { default: { maxWorkers: 1 } }, workers: [worker] } as const
        const leaderScope = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
          yield* Testing.runner({ ...options, id: "first" })
          yield* Effect.sleep("300 millis")
        })))
        yield* Effect.sleep("100 millis")
        const follower = yield* Testing.runner({ ...options, id: "second" })
        assert.deepStrictEqual((yield* leaderRow(schema)).map((r) => r.leader_id), ["first"])
        yield* Fiber.join(leaderScope) // the first runner stops and resigns
        const started = Date.now()
        while (!(yield* follower.runner.isLeader)) {
          if (Date.now() - started > 4_000) assert.fail("the follower was not elected after the resignation")
          yield* Effect.sleep("20 millis")
        }
        assert.deepStrictEqual((yield* leaderRow(schema)).map((r) => r.leader_id), ["second"])
      })))

    it.effect("a leader whose renewal hangs steps down before its lease ends", () =>
      TestClock.withLive(Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("renewhang")
        const sql = yield* SqlClient.SqlClient
        const worker = Worker.make(Task, () => Effect.void)
        const { runner } = yield* Testing.runner({
          schema,
          id: "stuck_leader",
          queues: { default: { maxWorkers: 1 } },
          workers: [worker],
          leadership: { ttl: "3 seconds", renewInterval: "500 millis", electInterval: "500 millis" }
        })
        yield* waitReal("the runner leads", () => runner.isLeader)
        // Another session holds the leader row: the renewal's UPDATE waits (a pool exhausted by
        // workers, or a lock, looks the same to the leader).
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined)) // before the runner stops
        const holder = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* sql.unsafe(`LOCK TABLE "${schema}".river_leader IN ACCESS EXCLUSIVE MODE`)
          yield* Deferred.succeed(locked, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(locked)
        const lockedAt = Date.now()
        yield* waitReal("the leader steps down", () => Effect.map(runner.isLeader, (leads) => !leads), 15_000)
        // Its lease (3 s on the database clock) is trusted until its last renewal began + TTL - 1 s.
        assert.isBelow(Date.now() - lockedAt, 3_000 + 1_500, "stepped down before another runner could be elected")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* waitReal("it leads again once the lock is gone", () => runner.isLeader, 15_000)
      })))

    it.effect("the rescuer retries, discards, cancels or leaves stuck jobs as River does", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("rescue")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const Unknown = JobKind.make("unknown_kind", { args: Schema.Struct({}) })
        const Patient = JobKind.make("patient", { args: Schema.Struct({}) })
        const ids = (yield* client.insertMany([
          Task.of({ n: 1 }), // stuck, attempts left → retryable
          Task.of({ n: 2 }, { maxAttempts: 1 }), // stuck, no attempt left → discarded
          Task.of({ n: 3 }), // stuck, cancel requested → cancelled
          Unknown.of({}), // no worker → discarded
          Patient.of({}), // worker without timeout → left alone
          Task.of({ n: 6 }), // not stuck yet → left alone
          Task.of({ n: 7 }) // stuck, cancel requested before this attempt (a retry kept it) → retryable
        ])).map((r) => r.job.id)
        const stuckAt = new Date(T0 - 2 * HOUR)
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE id = ANY($2::bigint[])`,
          [stuckAt, [...ids.slice(0, 5), ids[6]]]
        )
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE id = $2`, [
          new Date(T0 - 60_000),
          ids[5]
        ])
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET metadata = '{"cancel_attempted_at": "2032-12-31T23:00:00Z"}' WHERE id = $1`,
          [ids[2]]
        )
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET metadata = '{"cancel_attempted_at": "2032-12-31T21:00:00Z"}' WHERE id = $1`,
          [ids[6]]
        )
        const workers = new Map<string, Worker.Any>([
          ["task", Worker.make(Task, () => Effect.void)],
          ["patient", Worker.make(Patient, () => Effect.void, { timeout: "none" })]
        ])
        const rescued = yield* Rescuer.runOnce({
          driver: makePgDriver(sql, schema),
          workers,
          jobTimeout: Duration.minutes(1),
          retryPolicy: undefined,
          rescueAfter: Duration.hours(1),
          interval: Duration.seconds(30),
          batchSize: 2
        })
        assert.strictEqual(rescued, 5)
        const rows = yield* Effect.forEach(ids, (id) => client.get(id))
        assert.deepStrictEqual(rows.map((r) => r.state), [
          "retryable",
          "discarded",
          "cancelled",
          "discarded",
          "running",
          "running",
          "retryable"
        ])
        const retried = rows[0]!
        assert.strictEqual(retried.attempt, 1)
        assert.strictEqual(retried.errors.at(-1)!.error, "Stuck job rescued by JobRescuer")
        assert.strictEqual(retried.metadata["river:rescue_count"], 1)
        assert.isAtLeast(retried.scheduledAt.getTime(), T0 + 900)
        assert.isNotNull(rows[1]!.finalizedAt)
        assert.deepStrictEqual(rows[4]!.errors, [])
      }))

    const rescuerConfig = (sql: SqlClient.SqlClient, schema: string): Rescuer.RescuerConfig => ({
      driver: makePgDriver(sql, schema),
      workers: new Map<string, Worker.Any>([["task", Worker.make(Task, () => Effect.void)]]),
      jobTimeout: Duration.minutes(1),
      retryPolicy: undefined,
      rescueAfter: Duration.hours(1),
      interval: Duration.seconds(30),
      batchSize: 10
    })

    it.effect("the rescuer falls back to River's backoff when a retry policy answers an invalid time, as the executor does", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("rescue_policy")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const Nan = JobKind.make("nan_policy", { args: Schema.Struct({}) })
        const Far = JobKind.make("far_policy", { args: Schema.Struct({}) })
        const Past = JobKind.make("past_policy", { args: Schema.Struct({}) })
        const ids = (yield* client.insertMany([Nan.of({}), Far.of({}), Past.of({})])).map((r) => r.job.id)
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE id = ANY($2::bigint[])`,
          [new Date(T0 - 2 * HOUR), ids]
        )
        const rescued = yield* Rescuer.runOnce({
          ...rescuerConfig(sql, schema),
          workers: new Map<string, Worker.Any>([
            ["nan_policy", Worker.make(Nan, () => Effect.void, { retryPolicy: () => new Date(Number.NaN) })],
            ["far_policy", Worker.make(Far, () => Effect.void, { retryPolicy: () => Duration.days(300_000 * 365) })],
            ["past_policy", Worker.make(Past, () => Effect.void, { retryPolicy: () => new Date(T0 - HOUR) })]
          ])
        })
        assert.strictEqual(rescued, 3)
        for (const id of ids) {
          const row = yield* client.get(id)
          assert.strictEqual(row.state, "retryable")
          // River's backoff for the first error: 1 s ± 10 %.
          assert.isAtLeast(row.scheduledAt.getTime(), T0 + 900, `job ${id}`)
          assert.isAtMost(row.scheduledAt.getTime(), T0 + 1_100, `job ${id}`)
        }
      }))

    it.effect("the rescuer rescues stuck jobs whose metadata is null or holds a non-numeric rescue count", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("rescue_meta")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const ids = (yield* client.insertMany([1, 2, 3, 4, 5].map((n) => Task.of({ n })))).map((r) => r.job.id)
        const metadata = ["null", `{"river:rescue_count": "many"}`, `{"river:rescue_count": 1.5}`, "7", `{"river:rescue_count": 2}`]
        for (let i = 0; i < ids.length; i++) {
          yield* sql.unsafe(
            `UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $1, metadata = $2::jsonb WHERE id = $3`,
            [new Date(T0 - 2 * HOUR), metadata[i], ids[i]]
          )
        }
        const rescued = yield* Rescuer.runOnce(rescuerConfig(sql, schema))
        assert.strictEqual(rescued, 5)
        const rows = yield* Effect.forEach(ids, (id) => client.get(id))
        assert.deepStrictEqual(rows.map((r) => r.state), ["retryable", "retryable", "retryable", "retryable", "retryable"])
        assert.deepStrictEqual(rows.map((r) => r.metadata["river:rescue_count"]), [1, 1, 1, 1, 3])
      }))

    it.effect("the rescuer leaves alone a job that finished and was fetched again after it was read as stuck", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("rescue_fence")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const [refetched, stuck] = (yield* client.insertMany([Task.of({ n: 1 }), Task.of({ n: 2 })])).map((r) => r.job.id)
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $1 WHERE id = ANY($2::bigint[])`,
          [new Date(T0 - 2 * HOUR), [refetched, stuck]]
        )
        const config = rescuerConfig(sql, schema)
        // Between the rescuer's read and its update, attempt 1 of `refetched` finished (a retry)
        // and another runner fetched it again: attempt 2 is running now.
        const interleaved: Driver = {
          ...config.driver,
          jobRescueMany: (params) =>
            Effect.andThen(
              sql.unsafe(
                `UPDATE "${schema}".river_job SET attempt = 2, attempted_at = $1, attempted_by = '{other}' WHERE id = $2`,
                [new Date(T0), refetched]
              ),
              config.driver.jobRescueMany(params)
            )
        }
        const rescued = yield* Rescuer.runOnce({ ...config, driver: interleaved })
        assert.strictEqual(rescued, 1)
        const running = yield* client.get(refetched)
        assert.strictEqual(running.state, "running")
        assert.strictEqual(running.attempt, 2)
        assert.deepStrictEqual(running.errors, [])
        assert.deepStrictEqual(running.metadata, {})
        assert.strictEqual((yield* client.get(stuck)).state, "retryable")
      }))

    it.effect("the job cleaner deletes finalized jobs past their retention, in batches; forever keeps", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("clean")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const make = (count: number) => client.insertMany(Array.from({ length: count }, (_, n) => Task.of({ n })))
        const finalize = (ids: ReadonlyArray<bigint>, state: string, at: number) =>
          sql.unsafe(
            `UPDATE "${schema}".river_job SET state = $1::text::"${schema}".river_job_state, finalized_at = $2 WHERE id = ANY($3::bigint[])`,
            [state, new Date(at), ids]
          )
        const ids = (rs: ReadonlyArray<{ job: { id: bigint } }>) => rs.map((r) => r.job.id)
        yield* finalize(ids(yield* make(5)), "completed", T0 - 25 * HOUR) // old: deleted
        yield* finalize(ids(yield* make(2)), "completed", T0 - 23 * HOUR) // recent: kept
        yield* finalize(ids(yield* make(3)), "cancelled", T0 - 25 * HOUR) // old: deleted
        yield* finalize(ids(yield* make(2)), "discarded", T0 - 25 * HOUR) // < 7 d: kept
        yield* finalize(ids(yield* make(1)), "discarded", T0 - 8 * 24 * HOUR) // forever below
        yield* make(2) // available: never touched
        const deleted = yield* JobCleaner.runOnce({
          driver: makePgDriver(sql, schema),
          retention: { cancelled: Duration.hours(24), completed: Duration.hours(24), discarded: "forever" },
          interval: Duration.seconds(30),
          batchSize: 3
        })
        assert.strictEqual(deleted, 8)
        const left = yield* sql.unsafe<{ state: string; n: number }>(
          `SELECT state::text, count(*)::int AS n FROM "${schema}".river_job GROUP BY state ORDER BY state`
        )
        assert.deepStrictEqual(left, [{ state: "available", n: 2 }, { state: "completed", n: 2 }, { state: "discarded", n: 3 }])
      }))

    it.effect("the queue cleaner deletes queue rows not refreshed for 24 hours", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("qclean")
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `INSERT INTO "${schema}".river_queue (name, created_at, updated_at) VALUES ('old', $1, $1), ('fresh', $2, $2)`,
          [new Date(T0 - 25 * HOUR), new Date(T0 - HOUR)]
        )
        const deleted = yield* QueueCleaner.runOnce({
          driver: makePgDriver(sql, schema),
          retention: Duration.hours(24),
          interval: Duration.hours(1),
          batchSize: 10
        })
        assert.strictEqual(deleted, 1)
        const names = yield* sql.unsafe<{ name: string }>(`SELECT name FROM "${schema}".river_queue`)
        assert.deepStrictEqual(names.map((r) => r.name), ["fresh"])
      }))

    it.effect("the scheduler discards a job whose unique key is already held instead of failing the batch", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("sched")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        // Unique by args, but a retryable job does not hold its key.
        const unique = { byArgs: true, byState: ["available", "pending", "running", "scheduled", "completed"] } as const
        const first = yield* client.insert(Task, { n: 1 }, { unique })
        const second = yield* client.insert(Task, { n: 2 }, { unique })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'retryable', scheduled_at = $1 WHERE id = ANY($2::bigint[])`, [
          new Date(T0 - 1_000),
          [first.job.id, second.job.id]
        ])
        const holder = yield* client.insert(Task, { n: 1 }, { unique }) // accepted: the key is free
        assert.isFalse(holder.skippedAsDuplicate)
        const promoted = yield* Scheduler.runOnce({
          driver: makePgDriver(sql, schema),
          interval: Duration.seconds(5),
          onScheduled: () => Effect.void
        })
        assert.strictEqual(promoted, 2)
        const a = yield* client.get(first.job.id)
        assert.strictEqual(a.state, "discarded")
        assert.strictEqual(a.metadata.unique_key_conflict, "scheduler_discarded")
        assert.isNotNull(a.finalizedAt)
        assert.strictEqual((yield* client.get(second.job.id)).state, "available")
        assert.strictEqual((yield* client.get(holder.job.id)).state, "available")
      }))

    it.effect("the scheduler resolves a unique-key conflict inside one batch in one statement, as River does", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("sched_batch")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const unique = { byArgs: true, byState: ["available", "pending", "running", "scheduled", "completed"] } as const
        // Z: retryable (does not hold its key), due first. X: scheduled with the same key (holds
        // it), due a little later. Both land in one scheduler batch; so does an unrelated job U.
        const z = yield* client.insert(Task, { n: 1 }, { unique })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'retryable', scheduled_at = $1 WHERE id = $2`, [
          new Date(T0 - 2_000),
          z.job.id
        ])
        const x = yield* client.insert(Task, { n: 1 }, { unique, scheduledAt: new Date(T0 - 1_000) })
        assert.isFalse(x.skippedAsDuplicate)
        assert.strictEqual(x.job.state, "scheduled")
        const u = yield* client.insert(Task, { n: 2 }, { scheduledAt: new Date(T0 - 500) })
        const run = Scheduler.runOnce({
          driver: makePgDriver(sql, schema),
          interval: Duration.seconds(5),
          onScheduled: () => Effect.void
        })
        const first = yield* Effect.exit(run)
        assert.strictEqual(
          first._tag,
          "Success",
          `the pass must not fail on a conflict inside its batch: ${first._tag === "Failure" ? Cause.pretty(first.cause) : ""}`
        )
        // River's rule: a key another row holds (X, scheduled) makes every due job with that key
        // conflict, Z included; X is not the first of its key in the batch either.
        for (const id of [z.job.id, x.job.id]) {
          const job = yield* client.get(id)
          assert.strictEqual(job.state, "discarded", `job ${id}`)
          assert.strictEqual(job.metadata.unique_key_conflict, "scheduler_discarded")
          assert.isNotNull(job.finalizedAt)
        }
        assert.strictEqual((yield* client.get(u.job.id)).state, "available")
        assert.strictEqual(yield* run, 0, "the next pass has nothing left to do")
      }))

    it.effect("the leader's rescuer recovers a job left running by a dead runner; another runner finishes it", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("recover")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Task, { n: 1 })
        // A runner fetched it and died: running, attempted long ago.
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'running', attempt = 1, attempted_at = $2, attempted_by = '{dead_runner}' WHERE id = $1`,
          [job.id, new Date(T0 - 2 * HOUR)]
        )
        const { events } = yield* Testing.runner({
          schema,
          id: "survivor",
          queues: { default: { maxWorkers: 1 } },
          workers: [Worker.make(Task, () => Effect.void)],
          rescuerInterval: "10 seconds"
        })
        const { event } = yield* Testing.advanceUntil(events, (e) => e.job.id === job.id, { step: 1_000 })
        assert.strictEqual(event.kind, "completed")
        assert.strictEqual(event.job.attempt, 2)
        assert.deepStrictEqual(event.job.attemptedBy, ["dead_runner", "survivor"])
        assert.strictEqual(event.job.errors[0]!.error, "Stuck job rescued by JobRescuer")
      }))
  })
})

/** Polls `condition` every 20 ms of real time, failing after `timeoutMs`. */
const waitReal = (what: string, condition: () => Effect.Effect<boolean, unknown>, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* condition())) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })
