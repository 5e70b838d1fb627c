import { assert, describe, it } from "@effect/vitest"
import { Clock, Cron, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidOptions } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import * as PeriodicJob from "../src/PeriodicJob.ts"
import * as Runner from "../src/Runner.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"

const Tick = JobKind.make("tick", { args: Schema.Struct({}) })
const worker = Worker.make(Tick, () => Effect.void)
const T0 = Date.parse("2034-05-06T07:00:30.000Z")

/** Runs of a periodic job (all its jobs, any state), oldest first. */
const runs = (client: Client.Client["Service"], id: string) =>
  Effect.map(client.list({ metadata: { "river:periodic_job_id": id } }), (page) => page.jobs)

/** Moves the clock in small steps (with real pauses) until `check` holds. */
const advanceUntil = (check: Effect.Effect<boolean, unknown, SqlClient.SqlClient>, stepMillis = 1_000, maxSteps = 400) =>
  Effect.gen(function*() {
    for (let i = 0; i < maxSteps; i++) {
      if (yield* check) return
      yield* TestClock.adjust(stepMillis)
      yield* TestClock.withLive(Effect.sleep("15 millis"))
    }
    return yield* Effect.die(new Error("condition not reached"))
  })

describe("periodic jobs", () => {
  it.layer(freshDatabase("periodic"))((it) => {
    it.effect("an interval job runs on start when asked, then every interval, tagged as River tags it", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("every")
        const every = PeriodicJob.make({ id: "every_minute", schedule: "1 minute", job: () => Tick.of({}), runOnStart: true })
        const { client } = yield* Testing.runner({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker], periodicJobs: [every] })
        yield* advanceUntil(Effect.map(runs(client, "every_minute"), (r) => r.length >= 1), 100, 50)
        const [first] = yield* runs(client, "every_minute")
        assert.deepStrictEqual(first!.metadata, { periodic: true, "river:periodic_job_id": "every_minute" })
        assert.isBelow(first!.scheduledAt.getTime() - T0, 2_000)
        yield* advanceUntil(Effect.map(runs(client, "every_minute"), (r) => r.length >= 3))
        const all = yield* runs(client, "every_minute")
        const gaps = all.slice(1).map((job, i) => job.scheduledAt.getTime() - all[i]!.scheduledAt.getTime())
        for (const gap of gaps.slice(0, 2)) assert.strictEqual(gap, 60_000)
      }))

    it.effect("runs are inserted available at their planned time, as River's enqueuer inserts them", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("planned")
        // Two schedules 50 ms apart, on a queue nobody works, so every run stays as inserted.
        const a = PeriodicJob.make({ id: "a_min", schedule: "1 minute", job: () => Tick.of({}, { queue: "parked" }), runOnStart: true })
        const b = PeriodicJob.make({ id: "b_min", schedule: 60_050, job: () => Tick.of({}, { queue: "parked" }), runOnStart: true })
        const { client } = yield* Testing.runner({ schema, queues: { default: { maxWorkers: 1 } }, workers: [worker], periodicJobs: [a, b] })
        const both = (n: number) =>
          Effect.map(Effect.all([runs(client, "a_min"), runs(client, "b_min")]), ([x, y]) => x.length >= n && y.length >= n)
        yield* advanceUntil(both(1), 10, 300)
        const start = (yield* runs(client, "a_min"))[0]!.scheduledAt.getTime()
        assert.strictEqual((yield* runs(client, "b_min"))[0]!.scheduledAt.getTime(), start, "runOnStart runs share the start")
        // Up to just before the next run of `a`, then in small steps past the next run of `b`.
        yield* TestClock.adjust(start + 59_990 - (yield* Clock.currentTimeMillis))
        yield* advanceUntil(both(2), 10, 300)
        const runsA = yield* runs(client, "a_min")
        const runsB = yield* runs(client, "b_min")
        assert.deepStrictEqual(runsA.map((j) => [j.state, j.scheduledAt.getTime() - start]), [["available", 0], ["available", 60_000]])
        assert.deepStrictEqual(runsB.map((j) => [j.state, j.scheduledAt.getTime() - start]), [["available", 0], ["available", 60_050]])
      }))

    it.effect("a cron job runs at its next occurrence; without runOnStart nothing runs at start", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0) // 07:00:30
        const schema = yield* Testing.freshSchema("cron")
        const cron = PeriodicJob.make({ id: "five_minutes", schedule: Cron.parseUnsafe("*/5 * * * *"), job: () => Tick.of({}) })
        const { client } = yield* Testing.runner({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker], periodicJobs: [cron] })
        yield* TestClock.withLive(Effect.sleep("200 millis"))
        assert.strictEqual((yield* runs(client, "five_minutes")).length, 0)
        yield* advanceUntil(Effect.map(runs(client, "five_minutes"), (r) => r.length >= 1), 10_000, 100)
        const [first] = yield* runs(client, "five_minutes")
        assert.strictEqual(first!.scheduledAt.toISOString(), "2034-05-06T07:05:00.000Z")
      }))

    it.effect("a run missed while nobody led is made up once when a leader starts", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("missed")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        // The last run was 3 hours ago; with an hourly schedule two runs fell due since.
        const { job } = yield* client.insert(Tick, {}, {
          metadata: { periodic: true, "river:periodic_job_id": "hourly" },
          scheduledAt: new Date(T0 - 3 * 3_600_000)
        })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'completed', finalized_at = $2 WHERE id = $1`, [job.id, new Date(T0)])
        const hourly = PeriodicJob.make({ id: "hourly", schedule: "1 hour", job: () => Tick.of({}) })
        yield* Testing.runner({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker], periodicJobs: [hourly] })
        yield* advanceUntil(Effect.map(runs(client, "hourly"), (r) => r.length >= 2), 100, 50)
        yield* TestClock.withLive(Effect.sleep("200 millis"))
        const all = yield* runs(client, "hourly")
        assert.strictEqual(all.length, 2, "one make-up run, not one per missed hour")
        assert.isBelow(Math.abs(all[1]!.scheduledAt.getTime() - T0), 2_000)
      }))

    it.effect("only the leader enqueues", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("oneleader")
        const every = PeriodicJob.make({ id: "shared", schedule: "1 minute", job: () => Tick.of({}), runOnStart: true })
        const options = { schema, queues: { default: { maxWorkers: 2 } }, workers: [worker], periodicJobs: [every] } as const
        const a = yield* Testing.runner({ ...options, id: "a" })
        yield* Testing.runner({ ...options, id: "b" })
        yield* advanceUntil(Effect.map(runs(a.client, "shared"), (r) => r.length >= 3))
        const all = yield* runs(a.client, "shared")
        const times = all.map((j) => j.scheduledAt.getTime())
        assert.strictEqual(new Set(times).size, times.length, "no run inserted twice")
      }))

    it.effect("a periodic job whose args are invalid does not keep the others due with it from running", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("badargs")
        const Count = JobKind.make("tick_count", { args: Schema.Struct({ n: Schema.Number }) })
        const counter = Worker.make(Count, () => Effect.void)
        const good = PeriodicJob.make({ id: "good", schedule: "1 minute", job: () => Tick.of({}), runOnStart: true })
        const bad = PeriodicJob.make({
          id: "bad",
          schedule: "1 minute",
          job: () => Count.of({ n: "not a number" } as never),
          runOnStart: true
        })
        const { client } = yield* Testing.runner({
          schema,
          queues: { default: { maxWorkers: 2 } },
          workers: [worker, counter],
          periodicJobs: [bad, good]
        })
        yield* advanceUntil(Effect.map(runs(client, "good"), (r) => r.length >= 2))
        assert.deepStrictEqual(yield* runs(client, "bad"), [])
      }))

    it.effect("invalid periodic jobs are typed errors", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [PeriodicJob.PeriodicJob, string]> = [
          [PeriodicJob.make({ id: "bad id!", schedule: "1 minute", job: () => undefined }), "periodicJobs.id"],
          [PeriodicJob.make({ id: "fast", schedule: "10 millis", job: () => undefined }), "periodicJobs.fast.schedule"]
        ]
        for (const [periodic, field] of cases) {
          const error = yield* Effect.flip(Runner.make({ queues: { default: { maxWorkers: 1 } }, workers: [worker], periodicJobs: [periodic] }))
          assert.instanceOf(error, InvalidOptions)
          assert.strictEqual((error as InvalidOptions).field, field)
        }
        const same = PeriodicJob.make({ id: "same", schedule: "1 minute", job: () => undefined })
        const dup = yield* Effect.flip(Runner.make({ queues: { default: { maxWorkers: 1 } }, workers: [worker], periodicJobs: [same, same] }))
        assert.strictEqual((dup as InvalidOptions).field, "periodicJobs")
      }))
  })
})
