import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Logger, PubSub, Ref, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidOptions } from "../src/Errors.ts"
import type { JobEvent } from "../src/JobEvent.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { JobCancel, JobSnooze } from "../src/Worker.ts"
import * as Testing from "../src/Testing.ts"
import { freshDatabase } from "./utils/db.ts"
import { adjustUntilDone, advanceUntilEvent, awaitEvent, startRunner, takeEvents, testSettings } from "./utils/runner.ts"

const Task = JobKind.make("task", {
  args: Schema.Struct({ name: Schema.String, mode: Schema.optional(Schema.String) })
})

const T0 = Date.parse("2031-03-04T05:06:07.000Z")

describe("Runner", () => {
  it.layer(freshDatabase("runner"))((it) => {
    it.effect("runs a job to completed, with the row and timings in the event", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const seen = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Task, (job) => Ref.update(seen, (xs) => [...xs, `${job.args.name}#${job.attempt}`]))
        const { client, events, runner } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        const { job } = yield* client.insert(Task, { name: "a" })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "completed")
        assert.strictEqual(event.job.id, job.id)
        assert.strictEqual(event.job.state, "completed")
        assert.strictEqual(event.job.attempt, 1)
        assert.deepStrictEqual(event.job.attemptedBy, [runner.id])
        assert.strictEqual(event.job.finalizedAt?.getTime(), T0)
        assert.strictEqual(event.job.attemptedAt?.getTime(), T0)
        assert.isTrue(Duration.isDuration(event.stats.run))
        assert.deepStrictEqual(yield* Ref.get(seen), ["a#1"])
        const row = yield* client.get(job.id)
        assert.strictEqual(row.state, "completed")
      }))

    it.effect("JobCancel cancels for good with the reason recorded, whatever attempts remain", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => JobCancel.of("not needed any more"))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        const { job } = yield* client.insert(Task, { name: "c" }, { maxAttempts: 10 })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "cancelled")
        assert.strictEqual(event.job.state, "cancelled")
        assert.isNotNull(event.job.finalizedAt)
        assert.strictEqual(event.job.errors.length, 1)
        assert.strictEqual(event.job.errors[0]!.error, "JobCancelError: not needed any more")
        assert.strictEqual(event.job.errors[0]!.attempt, 1)
        assert.strictEqual(event.error, "JobCancelError: not needed any more")
        assert.strictEqual((yield* client.get(job.id)).state, "cancelled")
      }))

    it.effect("JobSnooze reschedules without using an attempt; TestClock runs it after the delay", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const runs = yield* Ref.make(0)
        const worker = Worker.make(Task, () =>
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
            if (n === 1) return yield* JobSnooze.of("30 seconds")
            if (n === 2) return yield* JobSnooze.of("2 seconds")
          }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "s" })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.kind, "snoozed")
        assert.strictEqual(first.job.state, "scheduled")
        assert.strictEqual(first.job.attempt, 0)
        assert.strictEqual(first.job.scheduledAt.getTime(), T0 + 30_000)
        assert.deepStrictEqual(first.job.metadata, { snoozes: 1 })
        assert.deepStrictEqual(first.job.errors, [])
        const second = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(second.event.kind, "snoozed")
        assert.isAtLeast(second.moved, 30_000)
        assert.strictEqual(second.event.job.state, "available", "a snooze of 5 s or less stays available")
        assert.strictEqual(second.event.job.attempt, 0)
        assert.deepStrictEqual(second.event.job.metadata, { snoozes: 2 })
        const third = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(third.event.kind, "completed")
        assert.isAtLeast(third.event.job.attemptedAt!.getTime(), second.event.job.scheduledAt.getTime(), "not before its snooze ended")
        assert.strictEqual(third.event.job.attempt, 1)
        assert.strictEqual(yield* Ref.get(runs), 3)
      }))

    it.effect("failures retry after 1 s, 16 s and 81 s (±10 %) and are discarded at max attempts", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const worker = Worker.make(Task, (job) => Effect.fail({ _tag: "Boom", message: `failure ${job.attempt}` }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "r" }, { maxAttempts: 4 })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.kind, "failed")
        assert.strictEqual(first.job.state, "available", "a retry within 5 s goes straight to available")
        const delay1 = first.job.scheduledAt.getTime() - T0
        assert.isAtLeast(delay1, 900)
        assert.isAtMost(delay1, 1_100)
        assert.strictEqual(first.job.errors[0]!.error, "Boom: failure 1")
        let previous = first.job
        for (const [base, attempt] of [[16_000, 2], [81_000, 3]] as const) {
          // A fixed step: the tolerance below allows one step between fetch and start.
          const { event } = yield* advanceUntilEvent(events, () => true, { stepMillis: 500 })
          assert.strictEqual(event.kind, "failed")
          assert.strictEqual(event.job.attempt, attempt)
          assert.strictEqual(event.job.state, "retryable")
          assert.isAtLeast(event.job.attemptedAt!.getTime(), previous.scheduledAt.getTime(), "never ran early")
          // The clock may move while the attempt runs: measure from its end.
          const finishedAt = event.job.attemptedAt!.getTime() + Duration.toMillis(event.stats.run)
          const delay = event.job.scheduledAt.getTime() - finishedAt
          assert.isAtLeast(delay, base * 0.9)
          assert.isAtMost(delay, base * 1.1 + 500) // + one clock step that may fall between fetch and start
          assert.strictEqual(event.job.errors.length, attempt)
          previous = event.job
        }
        const { event: last } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(last.kind, "failed")
        assert.strictEqual(last.job.attempt, 4)
        assert.strictEqual(last.job.state, "discarded")
        assert.isNotNull(last.job.finalizedAt)
        assert.strictEqual(last.job.errors.length, 4)
      }))

    it.effect("defects and thrown exceptions are errors with a trace, and retried", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, (job) =>
          job.args.mode === "throw"
            ? Effect.sync(() => {
              throw new TypeError("thrown inside")
            })
            : Effect.die(new Error("died")))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insertMany([Task.of({ name: "t", mode: "throw" }), Task.of({ name: "d", mode: "die" })])
        const got = yield* takeEvents(events, 2)
        const byMode = new Map(got.map((e) => [(e.job.args as { mode: string }).mode, e]))
        const thrown = byMode.get("throw")!
        assert.strictEqual(thrown.kind, "failed")
        assert.strictEqual(thrown.job.state, "available")
        assert.strictEqual(thrown.job.errors[0]!.error, "TypeError: thrown inside")
        assert.include(thrown.job.errors[0]!.trace, "thrown inside")
        assert.include(thrown.job.errors[0]!.trace, "Runner.test.ts")
        const died = byMode.get("die")!
        assert.strictEqual(died.job.errors[0]!.error, "died")
        assert.isAbove(died.job.errors[0]!.trace.length, 0)
      }))

    it.effect("a job whose kind has no worker fails with River's message, then is discarded", () =>
      Effect.gen(function*() {
        const Other = JobKind.make("other_kind", { args: Schema.Struct({}) })
        const worker = Worker.make(Task, () => Effect.void)
        const { events, schema } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        const insertOnly = yield* Client.make({ schema })
        yield* insertOnly.insert(Other, {}, { maxAttempts: 2 })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.kind, "failed")
        assert.strictEqual(first.job.errors[0]!.error, "job kind is not registered in the client's Workers bundle: other_kind")
        const { event } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.job.state, "discarded")
      }))

    it.effect("the runner's client refuses kinds without a worker (River's unknown-kind check)", () =>
      Effect.gen(function*() {
        const Other = JobKind.make("other_kind", { args: Schema.Struct({}) })
        const { client } = yield* startRunner({
          queues: { default: { maxWorkers: 1 } },
          workers: [Worker.make(Task, () => Effect.void)]
        })
        const error = yield* Effect.flip(client.insert(Other, {}))
        assert.instanceOf(error, InvalidOptions)
        assert.strictEqual((error as InvalidOptions).field, "kind")
      }))

    it.effect("undecodable args are a job error naming the field", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const { events, schema } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`INSERT INTO "${schema}".river_job (args, kind, max_attempts, created_at, scheduled_at)
          VALUES ('{"name": 42}', 'task', 1, $1, $1)`, [new Date(0)])
        const event = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.event.kind, "failed")
        assert.strictEqual(event.event.job.state, "discarded")
        assert.include(event.event.job.errors[0]!.error, `["name"]`)
        assert.include(event.event.job.errors[0]!.error, "task")
      }))

    it.effect("a job past its timeout fails with a timeout error and is retried", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.never, { timeout: "3 seconds" })
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "slow" })
        const { event, moved } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.kind, "failed")
        assert.strictEqual(event.job.state, "available")
        assert.strictEqual(event.job.errors[0]!.error, "job timed out after 3s")
        assert.isAtLeast(moved, 3_000)
      }))

    it.effect("a retry policy given as a Schedule sets the delays, and its end discards", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const worker = Worker.make(Task, () => Effect.fail("nope"), {
          retryPolicy: Schedule.spaced("10 seconds").pipe(Schedule.upTo({ times: 1 }))
        })
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "p" })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.job.state, "retryable")
        assert.strictEqual(first.job.scheduledAt.getTime(), T0 + 10_000)
        const { event } = yield* advanceUntilEvent(events, () => true)
        assert.strictEqual(event.job.state, "discarded", "the schedule allowed one retry")
        assert.strictEqual(event.job.attempt, 2)
      }))

    it.effect("a retry policy given as a function of the job", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const worker = Worker.make(Task, () => Effect.fail("nope"), {
          retryPolicy: (job) => Duration.minutes(job.errors.length + 1)
        })
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "p" })
        const first = yield* awaitEvent(events)
        assert.strictEqual(first.job.scheduledAt.getTime(), T0 + 60_000)
      }))

    it.effect("a negative snooze is a job error, not an immediate rerun", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => JobSnooze.of(-5))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 5 } }, workers: [worker] })
        yield* client.insert(Task, { name: "n" })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "failed")
        assert.include(event.job.errors[0]!.error, ">= 0")
      }))

    it.effect("a snooze or retry beyond the last representable time is a job error, not an unstorable outcome", () =>
      Effect.gen(function*() {
        const snoozer = Worker.make(Task, () => JobSnooze.of(1e17))
        const { client, events } = yield* startRunner({
          queues: { default: { maxWorkers: 5 } },
          workers: [snoozer],
          retryPolicy: () => Duration.millis(1e17)
        })
        yield* client.insert(Task, { name: "far" })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "failed")
        assert.include(event.job.errors[0]!.error, "JobSnooze")
        // The policy's time is not representable either: River's default backoff (1 s) applies.
        assert.strictEqual(event.job.state, "available")
        assert.isBelow(event.job.scheduledAt.getTime(), T0 + 3_600_000)
      }))

    it.effect("runs many jobs concurrently up to maxWorkers, each exactly once", () =>
      Effect.gen(function*() {
        const running = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const done = yield* Ref.make<Array<string>>([])
        const gate = yield* Deferred.make<void>()
        const worker = Worker.make(Task, (job) =>
          Effect.gen(function*() {
            const now = yield* Ref.updateAndGet(running, (n) => n + 1)
            yield* Ref.update(peak, (p) => Math.max(p, now))
            if (now === 3) yield* Deferred.succeed(gate, undefined)
            yield* Deferred.await(gate)
            yield* Ref.update(running, (n) => n - 1)
            yield* Ref.update(done, (xs) => [...xs, job.args.name])
          }))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 3 } }, workers: [worker] })
        yield* client.insertMany(Array.from({ length: 12 }, (_, i) => Task.of({ name: `j${i}` })))
        const got = yield* takeEvents(events, 12)
        assert.isTrue(got.every((e) => e.kind === "completed"))
        assert.strictEqual(yield* Ref.get(peak), 3)
        const names = (yield* Ref.get(done)).sort()
        assert.deepStrictEqual(names, Array.from({ length: 12 }, (_, i) => `j${i}`).sort())
      }))

    it.effect("a backlog drains without the fetch cooldown while fetches come back full (TestClock never moves)", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("r")
        const worker = Worker.make(Task, () => Effect.void)
        const { client, runner } = yield* Runner.make({
          ...testSettings,
          fetchCooldown: "100 millis",
          fetchPollInterval: "1 hour",
          schema,
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          autoStart: false
        })
        const events = yield* runner.subscribe
        yield* client.insertMany(Array.from({ length: 10 }, (_, i) => Task.of({ name: `j${i}` })))
        yield* runner.start
        // Five fetches of 2: with the cooldown after every fetch, only the first 2 jobs would run
        // until the clock moved.
        const got = yield* TestClock.withLive(Effect.timeoutOrElse(takeEvents(events, 10), {
          duration: "30 seconds",
          orElse: () => Effect.die(new Error("the backlog did not drain without the clock moving"))
        }))
        assert.isTrue(got.every((e) => e.kind === "completed"))
      }))

    it.effect("an insert notification after a quiet period fetches at once, inside the fetch cooldown", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const worker = Worker.make(Task, () => Effect.void)
        const { client, events } = yield* startRunner({
          fetchCooldown: "100 millis",
          fetchPollInterval: "1 hour",
          queues: { default: { maxWorkers: 5 } },
          workers: [worker]
        })
        // A trickle: one insert every 20 ms of TestClock (the start fetch was at T0, so every one
        // of these falls inside a 100 ms cooldown of the previous fetch).
        for (let i = 0; i < 3; i++) {
          yield* TestClock.adjust("20 millis")
          const { job } = yield* client.insert(Task, { name: `t${i}` })
          const event = yield* awaitEventWithin(events, (e) => e.job.id === job.id)
          assert.strictEqual(event.kind, "completed")
        }
      }))

    it.effect("priority then scheduled time decide the fetch order", () =>
      Effect.gen(function*() {
        const order = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Task, (job) => Ref.update(order, (xs) => [...xs, job.args.name]))
        const schema = yield* Testing.freshSchema("prio")
        const insertOnly = yield* Client.make({ schema })
        yield* insertOnly.insertMany([
          Task.of({ name: "p3" }, { priority: 3 }),
          Task.of({ name: "p1-late" }, { priority: 1 }),
          Task.of({ name: "p2" }, { priority: 2 }),
          Task.of({ name: "p4" }, { priority: 4 })
        ])
        const { events } = yield* startRunner({ schema, queues: { default: { maxWorkers: 1 } }, workers: [worker] })
        yield* takeEvents(events, 4)
        assert.deepStrictEqual(yield* Ref.get(order), ["p1-late", "p2", "p3", "p4"])
      }))

    it.effect("only the configured queues are worked", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const { client, events } = yield* startRunner({ queues: { alpha: { maxWorkers: 2 } }, workers: [worker] })
        const other = yield* client.insert(Task, { name: "b" }, { queue: "beta" })
        const mine = yield* client.insert(Task, { name: "a" }, { queue: "alpha" })
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.job.id, mine.job.id)
        assert.strictEqual((yield* client.get(other.job.id)).state, "available")
      }))

    it.effect("graceful stop lets running jobs finish within the soft-stop timeout", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const worker = Worker.make(Task, () => Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(release)))
        const schema = yield* Testing.freshSchema("stop1")
        const client = yield* Client.make({ schema })
        const scoped = Effect.scoped(Effect.gen(function*() {
          const { client: c } = yield* startRunner({
            schema,
            queues: { default: { maxWorkers: 2 } },
            workers: [worker],
            softStopTimeout: "1 minute"
          })
          yield* c.insert(Task, { name: "finishing" })
          yield* Deferred.await(started)
        }))
        const fiber = yield* Effect.forkChild(scoped)
        yield* Deferred.await(started)
        // The scope is closing now; the job is still running and may finish.
        yield* TestClock.withLive(Effect.sleep("50 millis"))
        yield* Deferred.succeed(release, undefined)
        const exit = yield* Effect.exit(Fiber.join(fiber))
        assert.isTrue(Exit.isSuccess(exit))
        const page = yield* client.list({})
        assert.strictEqual(page.jobs[0]!.state, "completed")
      }))

    it.effect("after the soft-stop timeout, running jobs are interrupted: available again, attempt given back, no error", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const started = yield* Deferred.make<void>()
        const finalized = yield* Ref.make(false)
        const worker = Worker.make(Task, () =>
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Ref.set(finalized, true))
          ))
        const schema = yield* Testing.freshSchema("stop2")
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Task, { name: "stuck" }, { queue: "default" })
        const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
          yield* startRunner({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker], softStopTimeout: "10 seconds" })
          yield* Deferred.await(started)
        })))
        yield* Deferred.await(started)
        // Closing waits 10 s (TestClock) for the job, then interrupts it.
        const moved = yield* adjustUntilDone(fiber)
        assert.isAtLeast(moved, 10_000)
        assert.isTrue(yield* Ref.get(finalized), "the worker's finalizers ran")
        const row = yield* client.get(job.id)
        assert.strictEqual(row.state, "available")
        assert.strictEqual(row.attempt, 0)
        assert.deepStrictEqual(row.errors, [])
        // Available again from the moment of the interruption: 10 s after the stop began.
        assert.isAtLeast(row.scheduledAt.getTime(), T0 + 10_000)
        assert.isAtMost(row.scheduledAt.getTime(), T0 + moved)
      }))

    it.effect("a slow event subscriber never blocks the runner", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const { client, runner } = yield* startRunner({
          queues: { default: { maxWorkers: 4 } },
          workers: [worker],
          eventBuffer: 2
        })
        const slow = yield* runner.subscribe // never read while the jobs run
        yield* client.insertMany(Array.from({ length: 20 }, (_, i) => Task.of({ name: `e${i}` })))
        let completed = 0
        for (let i = 0; i < 400 && completed < 20; i++) {
          yield* TestClock.withLive(Effect.sleep("25 millis"))
          completed = (yield* client.list({ states: ["completed"] })).jobs.length
        }
        assert.strictEqual(completed, 20)
        const kept = yield* PubSub.takeAll(slow)
        assert.strictEqual(kept.length, 2, "the slow subscriber kept only the newest events")
      }))

    it.effect("stopping mid-stream loses no outcome and runs no job twice", () =>
      Effect.gen(function*() {
        const runs = new Map<bigint, number>()
        const worker = Worker.make(Task, (job) => Effect.sync(() => void runs.set(job.id, (runs.get(job.id) ?? 0) + 1)))
        const schema = yield* Testing.freshSchema("drain")
        const client = yield* Client.make({ schema })
        for (let b = 0; b < 2; b++) {
          yield* client.insertMany(Array.from({ length: 5_000 }, (_, i) => Task.of({ name: `${b}-${i}` })))
        }
        yield* Effect.scoped(Effect.gen(function*() {
          const { events } = yield* startRunner({
            schema,
            queues: { default: { maxWorkers: 500 } },
            workers: [worker],
            completerFlushInterval: "1 hour"
          })
          yield* takeEvents(events, 1_000)
        }))
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql.unsafe<{ id: bigint; state: string }>(`SELECT id, state::text FROM "${schema}".river_job`)
        assert.strictEqual(rows.filter((r) => r.state === "running").length, 0, "no job left running")
        const completed = rows.filter((r) => r.state === "completed")
        assert.isAtLeast(completed.length, 1_000)
        for (const row of completed) assert.strictEqual(runs.get(row.id), 1)
        for (const count of runs.values()) assert.strictEqual(count, 1)
        for (const row of rows) if (row.state === "available") assert.isUndefined(runs.get(row.id))
      }), { timeout: 120_000 })

    it.effect("re-LISTENs after losing its connection, then fetches what it missed, every time", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        // No poll within the test: only the reconnect's catch-up fetch can find the missed jobs.
        const { client, events, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          fetchPollInterval: "1 hour"
        })
        const sql = yield* SqlClient.SqlClient
        const listeners = Effect.map(
          sql.unsafe<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1`,
            [`LISTEN "${schema}.river_%"`]
          ),
          (rows) => rows.map((r) => r.pid)
        )
        const all = yield* listeners
        assert.strictEqual(all.length, 1, "one LISTEN connection serves every channel")
        for (const round of [1, 2, 3]) {
          const [before] = yield* listeners
          assert.isDefined(before)
          yield* sql.unsafe(`SELECT pg_terminate_backend($1)`, [before])
          // Inserted while nobody listens: its notification is lost.
          const { job } = yield* client.insert(Task, { name: `missed ${round}` })
          yield* waitUntil(Effect.map(listeners, (now) => now.length > 0 && !now.includes(before!)), "a new LISTEN")
          const event = yield* awaitEventWithin(events, (e) => e.job.id === job.id)
          assert.strictEqual(event.kind, "completed", `round ${round}`)
        }
        // and notifications work again
        const second = yield* client.insert(Task, { name: "after" })
        assert.strictEqual((yield* awaitEventWithin(events, (e) => e.job.id === second.job.id)).kind, "completed")
      }))

    it.effect("runner.fetchNow fetches every time it is called", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const { events, runner, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 }, other: { maxWorkers: 1 } },
          workers: [worker],
          pollOnly: true,
          fetchPollInterval: "1 hour"
        })
        const elsewhere = yield* Client.make({ schema })
        for (const round of [1, 2, 3]) {
          const { job } = yield* elsewhere.insert(Task, { name: `now ${round}` })
          yield* runner.fetchNow
          const event = yield* awaitEventWithin(events, (e) => e.job.id === job.id)
          assert.strictEqual(event.kind, "completed", `round ${round}`)
        }
      }))

    it.effect("poll-only mode: other clients' jobs are found by polling; its own client wakes it at once", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const { client, events, runner, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          pollOnly: true
        })
        assert.isTrue(runner.pollOnly)
        yield* TestClock.withLive(Effect.sleep("100 millis")) // let the start fetch pass
        const other = yield* Client.make({ schema })
        const { job } = yield* other.insert(Task, { name: "elsewhere" })
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        assert.strictEqual((yield* other.get(job.id)).state, "available", "no LISTEN: waits for the poll")
        const { event, moved } = yield* advanceUntilEvent(events, (e) => e.job.id === job.id, { stepMillis: 250 })
        assert.strictEqual(event.kind, "completed")
        assert.isAtLeast(moved, 1_000)
        const own = yield* client.insert(Task, { name: "own" })
        assert.strictEqual((yield* awaitEvent(events, (e) => e.job.id === own.job.id)).kind, "completed")
      }))

    it.effect("a runner warns at start when its clock is far from the database's, and not when they agree", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const warnings: Array<string> = []
        const collect = Logger.layer([
          Logger.make((o) => {
            if (o.logLevel === "Warn") warnings.push(String(o.message))
          })
        ])
        const options = { queues: { default: { maxWorkers: 1 } }, workers: [worker], clockSkewWarning: "1 second" } as const
        // TestClock reads 2031 while the database reads today.
        yield* TestClock.setTime(T0)
        yield* Effect.scoped(startRunner(options)).pipe(Effect.provide(collect))
        assert.isTrue(warnings.some((w) => w.includes("clock is") && w.includes("ahead of the database")), warnings.join("\n"))
        warnings.length = 0
        yield* TestClock.withLive(Effect.scoped(startRunner(options))).pipe(Effect.provide(collect))
        assert.deepStrictEqual(warnings.filter((w) => w.includes("clock is")), [])
      }))

    it.effect("invalid runner options are typed errors", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, () => Effect.void)
        const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
          [{ queues: { "Bad Queue": { maxWorkers: 1 } } }, "queues.Bad Queue"],
          [{ queues: { default: { maxWorkers: 0 } } }, "queues.default.maxWorkers"],
          [{ queues: { default: { maxWorkers: 10_001 } } }, "queues.default.maxWorkers"],
          [{ queues: { default: { maxWorkers: 1 } }, fetchPollInterval: "nonsense" }, "fetchPollInterval"],
          [{ queues: { default: { maxWorkers: 1, fetchCooldown: "2 seconds", fetchPollInterval: "1 second" } } }, "queues.default.fetchPollInterval"],
          [{ queues: { default: { maxWorkers: 1 } }, workers: [worker, worker] }, "workers"],
          [{ queues: { default: { maxWorkers: 1 } }, workers: [] }, "workers"],
          [{ queues: { default: { maxWorkers: 1 } }, workers: [Worker.make(Task, () => Effect.void, { timeout: -1 })] }, "workers.task.timeout"],
          [{ queues: { default: { maxWorkers: 1 } }, eventBuffer: 0 }, "eventBuffer"],
          [{ queues: { default: { maxWorkers: 1 } }, schema: "no-dashes" }, "schema"]
        ]
        for (const [options, field] of cases) {
          const error = yield* Effect.flip(Runner.make({ workers: [worker], ...options } as never))
          assert.instanceOf(error, InvalidOptions)
          assert.strictEqual((error as InvalidOptions).field, field, JSON.stringify(options))
        }
        // the settings used by the test suite are valid
        assert.strictEqual(testSettings.fetchCooldown, 0)
      }))
  })
})

/** Waits (real time, up to 30 s) until `condition` holds, moving TestClock a little meanwhile. */
const waitUntil = (condition: Effect.Effect<boolean, unknown>, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 30_000
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* TestClock.adjust("100 millis")
      yield* TestClock.withLive(Effect.sleep("20 millis"))
    }
  })

/** `awaitEvent`, failing the test after 30 s of real time instead of hanging it. */
const awaitEventWithin = (events: PubSub.Subscription<JobEvent>, predicate: (e: JobEvent) => boolean) =>
  TestClock.withLive(
    Effect.timeoutOrElse(awaitEvent(events, predicate), {
      duration: "30 seconds",
      orElse: () => Effect.die(new Error("no matching event within 30 s"))
    })
  )
