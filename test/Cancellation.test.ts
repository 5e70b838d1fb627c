import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Clock, Deferred, Effect, Exit, Fiber, Layer, ManagedRuntime, PubSub, Queue, Redacted, Ref, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidOptions, JobNotFound } from "../src/Errors.ts"
import { BeforeJobsStart } from "../src/internal/producer.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import * as Testing from "../src/Testing.ts"
import { freshDatabase } from "./utils/db.ts"
import { advanceUntilEvent, awaitEvent, startRunner } from "./utils/runner.ts"

const Long = JobKind.make("long_job", { args: Schema.Struct({ name: Schema.String }) })
const T0 = Date.parse("2032-02-03T04:05:06.000Z")

describe("cancellation", () => {
  it.layer(freshDatabase("cancel"))((it) => {
    it.effect("cancel of a queued job (available, scheduled, retryable, pending) is immediate", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const schema = yield* Testing.freshSchema("cq")
        const client = yield* Client.make({ schema })
        const sql = yield* SqlClient.SqlClient
        const available = yield* client.insert(Long, { name: "a" })
        const scheduled = yield* client.insert(Long, { name: "s" }, { scheduledAt: new Date(T0 + 60_000) })
        const pending = yield* client.insert(Long, { name: "p" }, { pending: true })
        const retryable = yield* client.insert(Long, { name: "r" })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'retryable', attempt = 1 WHERE id = $1`, [retryable.job.id])
        yield* TestClock.adjust("1 second")
        for (const { job } of [available, scheduled, pending, retryable]) {
          const cancelled = yield* client.cancel(job.id)
          assert.strictEqual(cancelled.state, "cancelled")
          assert.strictEqual(cancelled.finalizedAt?.getTime(), T0 + 1_000)
          assert.strictEqual(cancelled.metadata.cancel_attempted_at, new Date(T0 + 1_000).toISOString())
        }
      }))

    it.effect("cancel of a finished job changes nothing; of a missing one is JobNotFound", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cf")
        const client = yield* Client.make({ schema })
        const sql = yield* SqlClient.SqlClient
        for (const state of ["completed", "cancelled", "discarded"] as const) {
          const { job } = yield* client.insert(Long, { name: state })
          yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = $2::text::"${schema}".river_job_state, finalized_at = $3 WHERE id = $1`, [
            job.id,
            state,
            new Date(5)
          ])
          const after = yield* client.cancel(job.id)
          assert.strictEqual(after.state, state)
          assert.strictEqual(after.finalizedAt?.getTime(), 5)
          assert.deepStrictEqual(after.metadata, {})
        }
        assert.instanceOf(yield* Effect.flip(client.cancel(123_456n)), JobNotFound)
        assert.instanceOf(yield* Effect.flip(client.cancel("7" as never)), InvalidOptions)
      }))

    it.effect("cancel of a running job marks it and sends River's control notification", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cr")
        const client = yield* Client.make({ schema })
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const control = yield* pg.listen(`${schema}.river_control`)
        const { job } = yield* client.insert(Long, { name: "r" }, { queue: "q_running" })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'running', attempt = 1 WHERE id = $1`, [job.id])
        const after = yield* client.cancel(job.id)
        assert.strictEqual(after.state, "running")
        assert.isNull(after.finalizedAt)
        assert.isString(after.metadata.cancel_attempted_at)
        const n = yield* Queue.take(control)
        assert.deepStrictEqual(JSON.parse(n.payload), { action: "cancel", job_id: Number(job.id), queue: "q_running" })
      }))

    it.effect("a running job is interrupted by a cancel: finalizers run, it ends cancelled", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const released = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Long, () =>
          Effect.acquireRelease(Effect.succeed("resource"), () => Ref.update(released, (xs) => [...xs, "released"])).pipe(
            Effect.andThen(Deferred.succeed(started, undefined)),
            Effect.andThen(Effect.never),
            Effect.scoped,
            Effect.onInterrupt(() => Ref.update(released, (xs) => [...xs, "onInterrupt"]))
          ))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const { job } = yield* client.insert(Long, { name: "long" }, { maxAttempts: 5 })
        yield* Deferred.await(started)
        yield* client.cancel(job.id)
        const event = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(event.kind, "cancelled")
        assert.strictEqual(event.job.state, "cancelled")
        assert.isNotNull(event.job.finalizedAt)
        assert.strictEqual(event.job.errors.at(-1)!.error, "JobCancelError: job cancelled remotely")
        assert.deepStrictEqual(yield* Ref.get(released), ["released", "onInterrupt"])
      }))

    it.effect("a cancel reaches a job run by another runtime with its own pool", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cx")
        const client = yield* Client.make({ schema })
        const pg = yield* PgClient.PgClient
        const url = Redacted.value(pg.config.url!)
        const started = yield* Deferred.make<void>()
        const finalized = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () =>
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.ensuring(Deferred.succeed(finalized, undefined))
          ))
        const other = ManagedRuntime.make(
          Runner.layer({ schema, queues: { default: { maxWorkers: 2 } }, workers: [worker] }).pipe(
            Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
          )
        )
        yield* Effect.addFinalizer(() => Effect.promise(() => other.dispose()))
        const otherId = yield* Effect.promise(() => other.runPromise(Effect.gen(function*() { return (yield* Runner.Runner).id })))
        assert.notStrictEqual(otherId, client.id)
        // The other runtime runs on the live clock: so do this client's calls.
        const { job } = yield* TestClock.withLive(client.insert(Long, { name: "remote" }))
        yield* TestClock.withLive(Deferred.await(started))
        yield* TestClock.withLive(client.cancel(job.id))
        yield* TestClock.withLive(Deferred.await(finalized))
        let state = ""
        for (let i = 0; i < 200 && state !== "cancelled"; i++) {
          yield* TestClock.withLive(Effect.sleep("20 millis"))
          state = (yield* client.get(job.id)).state
        }
        const row = yield* client.get(job.id)
        assert.strictEqual(row.state, "cancelled")
        assert.strictEqual(row.errors.at(-1)!.error, "JobCancelError: job cancelled remotely")
      }))

    it.effect("a cancel inside a rolled-back transaction does nothing", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () => Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(release)))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(Long, { name: "kept" })
        yield* Deferred.await(started)
        const exit = yield* sql.withTransaction(Effect.andThen(client.cancel(job.id), Effect.fail("rollback"))).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        const row = yield* client.get(job.id)
        assert.strictEqual(row.state, "running")
        assert.deepStrictEqual(row.metadata, {})
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        yield* Deferred.succeed(release, undefined)
        const event = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(event.kind, "completed", "the job was never interrupted")
      }))

    it.effect("a cancel inside a committed transaction interrupts the job after commit", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(Long, { name: "tx" })
        yield* Deferred.await(started)
        yield* sql.withTransaction(client.cancel(job.id))
        const event = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(event.kind, "cancelled")
      }))

    it.effect("race: once the signal reaches a job it ends cancelled, even if its uninterruptible work then finished", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const startedFail = yield* Deferred.make<void>()
        const go = yield* Deferred.make<void>()
        const Fails = JobKind.make("fails_anyway", { args: Schema.Struct({}) })
        const succeeds = Worker.make(Long, () =>
          Effect.uninterruptible(Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(go))))
        const fails = Worker.make(Fails, () =>
          Effect.uninterruptible(
            Effect.andThen(Deferred.succeed(startedFail, undefined), Effect.andThen(Deferred.await(go), Effect.fail("late")))
          ))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 4 } }, workers: [succeeds, fails] })
        const a = yield* client.insert(Long, { name: "ok" })
        const b = yield* client.insert(Fails, {})
        yield* Deferred.await(started)
        yield* Deferred.await(startedFail)
        yield* client.cancel(a.job.id)
        yield* client.cancel(b.job.id)
        yield* TestClock.withLive(Effect.sleep("100 millis")) // the signals arrive; the work cannot be interrupted
        yield* Deferred.succeed(go, undefined)
        // Effect semantics: the interruption takes effect when the uninterruptible region ends.
        const ea = yield* awaitEvent(events, (e) => e.job.id === a.job.id)
        assert.strictEqual(ea.job.state, "cancelled")
        assert.strictEqual(ea.job.errors.at(-1)!.error, "JobCancelError: job cancelled remotely")
        const eb = yield* awaitEvent(events, (e) => e.job.id === b.job.id)
        assert.strictEqual(eb.job.state, "cancelled")
      }))

    it.effect("race: a job that finished before the signal keeps completed/cancelled/discarded; a retry or snooze becomes cancelled", () =>
      Effect.gen(function*() {
        // The marker is written while the job runs, but no signal reaches it (poll-only, no check).
        const gate = yield* Deferred.make<void>()
        const Outcome = JobKind.make("outcome", { args: Schema.Struct({ mode: Schema.String }) })
        const worker = Worker.make(Outcome, (job) =>
          Effect.andThen(Deferred.await(gate), (): Effect.Effect<void, string | Worker.JobCancel | Worker.JobSnooze> => {
            switch (job.args.mode) {
              case "ok":
                return Effect.void
              case "cancel":
                return Effect.fail(Worker.JobCancel.of("own reason"))
              case "discard":
                return Effect.fail("fatal")
              case "retry":
                return Effect.fail("transient")
              case "snooze-short":
                return Effect.fail(Worker.JobSnooze.of("1 second"))
              default:
                return Effect.fail(Worker.JobSnooze.of("1 hour"))
            }
          }))
        const modes = ["ok", "cancel", "discard", "retry", "snooze-short", "snooze-long"]
        const { client, events, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 10 } },
          workers: [worker],
          pollOnly: true,
          cancelCheckInterval: "1 hour"
        })
        const inserted = yield* client.insertMany(
          modes.map((mode) => Outcome.of({ mode }, { maxAttempts: mode === "discard" ? 1 : 5 }))
        )
        for (let i = 0; i < 200; i++) {
          const states = yield* Effect.forEach(inserted, (r) => Effect.map(client.get(r.job.id), (j) => j.state))
          if (states.every((s) => s === "running")) break
          yield* TestClock.withLive(Effect.sleep("10 millis"))
        }
        // Another process's client: its cancels reach this runner only through its (hourly) check.
        const elsewhere = yield* Client.make({ schema })
        for (const r of inserted) yield* elsewhere.cancel(r.job.id)
        yield* Deferred.succeed(gate, undefined)
        const got = new Map<string, string>()
        while (got.size < modes.length) {
          const e = yield* PubSub.take(events)
          got.set((e.job.args as { mode: string }).mode, e.job.state)
        }
        assert.deepStrictEqual(Object.fromEntries(got), {
          ok: "completed",
          cancel: "cancelled",
          discard: "discarded",
          retry: "cancelled",
          "snooze-short": "cancelled",
          "snooze-long": "cancelled"
        })
      }))

    it.effect("Client.retry of a cancelled job clears the cancel request: the next attempt runs, snoozes and completes", () =>
      Effect.gen(function*() {
        const { gates, runs, worker } = yield* scriptedWorker({ 1: "never", 2: "snooze", 3: "ok" })
        // Poll-only with a 1 s cancel check: a cancel request still on the row would interrupt attempt 2.
        const { client, events } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          pollOnly: true,
          cancelCheckInterval: "1 second"
        })
        const { job } = yield* client.insert(Long, { name: "retried" })
        yield* advanceUntilRun(runs, 1)
        yield* client.cancel(job.id)
        const cancelled = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(cancelled.job.state, "cancelled")
        const retried = yield* client.retry(job.id)
        assert.strictEqual(retried.state, "available")
        assert.notProperty(retried.metadata, "cancel_attempted_at", "River clears the request of the earlier attempt")
        yield* advanceUntilRun(runs, 2)
        // Several cancel checks pass while attempt 2 runs; none may interrupt it.
        for (let i = 0; i < 8; i++) {
          yield* TestClock.adjust("500 millis")
          yield* TestClock.withLive(Effect.sleep("10 millis"))
        }
        assert.strictEqual((yield* client.get(job.id)).state, "running")
        yield* Deferred.succeed(gates[2]!, undefined)
        const snoozed = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(snoozed.kind, "snoozed")
        assert.strictEqual(snoozed.job.state, "available", "a snooze of the retried attempt is not turned into a cancel")
        const { event: done } = yield* advanceUntilEvent(events, (e) => e.job.id === job.id, { stepMillis: 250 })
        assert.strictEqual(done.kind, "completed")
        assert.strictEqual(done.job.state, "completed")
      }))

    it.effect("a retry that keeps the cancel request (River before 0.51) starts a clean attempt; a new cancel still lands", () =>
      Effect.gen(function*() {
        const { gates, runs, worker } = yield* scriptedWorker({ 1: "fail", 2: "never" })
        const { client, events, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          pollOnly: true,
          cancelCheckInterval: "1 second"
        })
        const sql = yield* SqlClient.SqlClient
        // Cancelled while queued, then made available again the way River's JobRetry did before 0.51:
        // the job carries `cancel_attempted_at` from before this attempt.
        const { job } = yield* client.insert(Long, { name: "old-retry" }, { pending: true })
        yield* client.cancel(job.id)
        yield* TestClock.adjust("1 second")
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'available', finalized_at = NULL, scheduled_at = $2 WHERE id = $1`,
          [job.id, new Date(yield* Clock.currentTimeMillis)]
        )
        yield* advanceUntilRun(runs, 1)
        for (let i = 0; i < 4; i++) {
          yield* TestClock.adjust("500 millis")
          yield* TestClock.withLive(Effect.sleep("10 millis"))
        }
        assert.strictEqual((yield* client.get(job.id)).state, "running", "the old request does not interrupt this attempt")
        yield* Deferred.succeed(gates[1]!, undefined)
        const failed = yield* awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(failed.kind, "failed")
        assert.strictEqual(failed.job.state, "available", "its failure is retried, not cancelled")
        // Attempt 2 runs; a cancel requested now is for this attempt and reaches it through the check.
        yield* advanceUntilRun(runs, 2)
        const elsewhere = yield* Client.make({ schema })
        yield* elsewhere.cancel(job.id)
        const { event } = yield* advanceUntilEvent(events, (e) => e.job.id === job.id, { stepMillis: 250 })
        assert.strictEqual(event.kind, "cancelled")
        assert.strictEqual(event.job.state, "cancelled")
      }))

    it.effect("a cancel notification that arrives while the fetch that took the job is still starting it is not lost", () =>
      Effect.gen(function*() {
        const Other = JobKind.make("other_job", { args: Schema.Struct({}) })
        const otherStarted = yield* Deferred.make<void>()
        const startedLong = yield* Deferred.make<void>()
        const long = Worker.make(Long, () => Effect.andThen(Deferred.succeed(startedLong, undefined), Effect.never))
        const other = Worker.make(Other, () => Deferred.succeed(otherStarted, undefined))
        const schema = yield* Testing.freshSchema("early")
        const setup = yield* Client.make({ schema })
        // Queue "other" starts paused, with a job waiting: its resume, sent after the cancel on the
        // same channel, shows when the runner has handled the cancel notification.
        yield* setup.pauseQueue("other")
        yield* setup.insert(Other, {}, { queue: "other" })
        // The fetch of "long" is held between its statement and the start of its job.
        const fetched = yield* Deferred.make<bigint>()
        const gate = yield* Deferred.make<void>()
        const hold = (rows: ReadonlyArray<{ readonly id: bigint; readonly kind: string }>) =>
          rows.some((r) => r.kind === "long_job")
            ? Effect.andThen(Deferred.succeed(fetched, rows[0]!.id), Deferred.await(gate))
            : Effect.void
        const { client, events } = yield* startRunner({
          schema,
          queues: { default: { maxWorkers: 2 }, other: { maxWorkers: 1 } },
          workers: [long, other]
        }).pipe(Effect.provideService(BeforeJobsStart, hold))
        const { job } = yield* client.insert(Long, { name: "early" })
        assert.strictEqual(yield* Deferred.await(fetched), job.id)
        yield* client.cancel(job.id) // running in the database, not yet in the runner
        yield* setup.resumeQueue("other")
        yield* Deferred.await(otherStarted) // the cancel notification was handled before the resume
        yield* Deferred.succeed(gate, undefined)
        const event = yield* TestClock.withLive(
          Effect.timeoutOrElse(awaitEvent(events, (e) => e.job.id === job.id), {
            duration: "20 seconds",
            orElse: () => Effect.die(new Error("the cancel was lost (the clock does not move: no cancel check runs)"))
          })
        )
        assert.strictEqual(event.kind, "cancelled")
        assert.strictEqual(event.job.state, "cancelled")
      }))

    it.effect("poll-only runners find cancels by checking their running jobs every second", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
        const { events, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          pollOnly: true
        })
        const elsewhere = yield* Client.make({ schema })
        const { job } = yield* elsewhere.insert(Long, { name: "p" })
        yield* advanceUntilRunning(started)
        yield* elsewhere.cancel(job.id)
        const { event, moved } = yield* advanceUntilEvent(events, (e) => e.job.id === job.id, { stepMillis: 250 })
        assert.strictEqual(event.kind, "cancelled")
        assert.isAtMost(moved, 1_500)
        assert.strictEqual(event.job.errors.at(-1)!.error, "JobCancelError: job cancelled remotely")
      }))

    it.effect("a poll-only runner's own client reaches its running job at once, with no check and no notification", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
        const { client, events } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          pollOnly: true,
          cancelCheckInterval: "1 hour"
        })
        const { job } = yield* client.insert(Long, { name: "own" }) // its own insert wakes it, too
        yield* TestClock.withLive(Effect.timeoutOrElse(Deferred.await(started), {
          duration: "20 seconds",
          orElse: () => Effect.die(new Error("the runner's own insert did not wake it"))
        }))
        yield* client.cancel(job.id)
        const event = yield* TestClock.withLive(Effect.timeoutOrElse(awaitEvent(events, (e) => e.job.id === job.id), {
          duration: "20 seconds",
          orElse: () => Effect.die(new Error("the cancel did not reach the job (the clock does not move: no check runs)"))
        }))
        assert.strictEqual(event.kind, "cancelled")
      }))

    it.effect("pause and resume reach a runner in another runtime with its own pool", () =>
      TestClock.withLive(Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("pausex")
        const client = yield* Client.make({ schema })
        const pg = yield* PgClient.PgClient
        const ran = yield* Ref.make(0)
        const worker = Worker.make(Long, () => Ref.update(ran, (n) => n + 1))
        const other = ManagedRuntime.make(
          Runner.layer({ schema, id: "other_runtime", queues: { default: { maxWorkers: 2 } }, workers: [worker], fetchPollInterval: "200 millis" })
            .pipe(Layer.provide(PgClient.layer({ url: Redacted.make(Redacted.value(pg.config.url!)), maxConnections: 4 })))
        )
        yield* Effect.addFinalizer(() => Effect.promise(() => other.dispose()))
        yield* Effect.promise(() => other.runPromise(Effect.gen(function*() {
          yield* Runner.Runner
        })))
        yield* client.pauseQueue("default")
        yield* Effect.sleep("200 millis") // the pause notification arrives
        const { job } = yield* client.insert(Long, { name: "paused" })
        yield* Effect.sleep("1 second") // five polls: none fetches
        assert.strictEqual((yield* client.get(job.id)).state, "available")
        assert.strictEqual(yield* Ref.get(ran), 0)
        yield* client.resumeQueue("default")
        let state = ""
        for (let i = 0; i < 150 && state !== "completed"; i++) {
          yield* Effect.sleep("20 millis")
          state = (yield* client.get(job.id)).state
        }
        assert.strictEqual(state, "completed")
        assert.strictEqual(yield* Ref.get(ran), 1)
      })))

    it.effect("a cancel that arrives while the runner stops interrupts the job at once, not at the end of the soft stop", () =>
      TestClock.withLive(Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const worker = Worker.make(Long, () =>
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          ))
        const schema = yield* Testing.freshSchema("stopcancel")
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Long, { name: "long" })
        const runnerScope = yield* Scope.make()
        yield* Runner.make({
          schema,
          queues: { default: { maxWorkers: 1 } },
          workers: [worker],
          softStopTimeout: "10 minutes",
          clockSkewWarning: "off"
        }).pipe(Scope.provide(runnerScope))
        yield* Deferred.await(started)
        // The stop waits for the running job (soft stop); a cancel arrives meanwhile.
        const stopping = yield* Effect.forkChild(Scope.close(runnerScope, Exit.void))
        yield* Effect.sleep("100 millis")
        yield* client.cancel(job.id)
        yield* Effect.timeoutOrElse(Deferred.await(interrupted), {
          duration: "20 seconds",
          orElse: () => Effect.die(new Error("the cancel was not heard during the soft stop"))
        })
        yield* Fiber.join(stopping)
        assert.strictEqual((yield* client.get(job.id)).state, "cancelled")
      })))

    it.effect("pause and resume reach every runner at once, and a pause survives restarts", () =>
      Effect.gen(function*() {
        const ran = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Long, (job) => Ref.update(ran, (xs) => [...xs, job.args.name]))
        const schema = yield* Testing.freshSchema("pause")
        const a = yield* startRunner({ schema, id: "runner_a", queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const b = yield* startRunner({ schema, id: "runner_b", queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const client = a.client
        yield* client.pauseQueue("default")
        yield* TestClock.withLive(Effect.sleep("150 millis")) // the pause notification arrives
        const { job } = yield* client.insert(Long, { name: "while-paused" })
        // Polls happen (the clock moves 5 s) but fetch nothing while paused.
        for (let i = 0; i < 10; i++) {
          yield* TestClock.adjust("500 millis")
          yield* TestClock.withLive(Effect.sleep("15 millis"))
        }
        assert.strictEqual((yield* client.get(job.id)).state, "available")
        const sql = yield* SqlClient.SqlClient
        const [queueRow] = yield* sql.unsafe<{ paused_at: Date | null }>(
          `SELECT paused_at FROM "${schema}".river_queue WHERE name = 'default'`
        )
        assert.isNotNull(queueRow!.paused_at)
        // A runner started now starts paused.
        const c = yield* startRunner({ schema, id: "runner_c", queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        assert.strictEqual((yield* client.get(job.id)).state, "available")
        yield* c.client.resumeQueue("*")
        const event = yield* Effect.raceFirst(
          awaitEvent(a.events, (e) => e.job.id === job.id),
          Effect.raceFirst(awaitEvent(b.events, (e) => e.job.id === job.id), awaitEvent(c.events, (e) => e.job.id === job.id))
        )
        assert.strictEqual(event.kind, "completed")
        assert.deepStrictEqual(yield* Ref.get(ran), ["while-paused"])
        const bad = yield* Effect.flip(client.pauseQueue("Bad Name"))
        assert.strictEqual((bad as InvalidOptions).field, "queue")
      }))
  })
})

type Step = "never" | "snooze" | "fail" | "ok"

/**
 * A worker for `Long` whose n-th run does `script[n]` ("never" blocks until interrupted; "snooze"
 * and "fail" wait for `gates[n]` first; "ok" succeeds), and announces each run on `runs`.
 */
const scriptedWorker = (script: Record<number, Step>) =>
  Effect.gen(function*() {
    const runs = yield* Queue.unbounded<number>()
    const gates: Record<number, Deferred.Deferred<void>> = {}
    for (const n of Object.keys(script)) gates[Number(n)] = yield* Deferred.make<void>()
    let count = 0
    const worker = Worker.make(Long, (): Effect.Effect<void, string | Worker.JobSnooze> => {
      const run = ++count
      const step: Effect.Effect<void, string | Worker.JobSnooze> = script[run] === "never"
        ? Effect.never
        : script[run] === "snooze"
        ? Effect.andThen(Deferred.await(gates[run]!), Effect.fail(Worker.JobSnooze.of("1 second")))
        : script[run] === "fail"
        ? Effect.andThen(Deferred.await(gates[run]!), Effect.fail("transient"))
        : Effect.void
      return Effect.andThen(Queue.offer(runs, run), step)
    })
    return { runs, gates, worker }
  })

/** Moves the clock in small steps until run `n` has started (poll-only fetches). */
const advanceUntilRun = (runs: Queue.Queue<number>, n: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const seen = yield* Queue.clear(runs)
      if (seen.includes(n)) return
      yield* TestClock.adjust("250 millis")
      yield* TestClock.withLive(Effect.sleep("10 millis"))
    }
    return yield* Effect.die(new Error(`run ${n} never started`))
  })

/** Moves the clock in small steps until the job signals it started (poll-only fetches). */
const advanceUntilRunning = (started: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if (yield* Deferred.isDone(started)) return
      yield* TestClock.adjust("250 millis")
      yield* TestClock.withLive(Effect.sleep("15 millis"))
    }
    return yield* Effect.die(new Error("job never started"))
  })
