// Testing a worker with the Testing kit: one job worked in a rolled-back transaction, and a
// retry plus a snooze driven by TestClock without real waiting. The README's "Testing your
// workers" section shows this file.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import { inject } from "vitest"
import { JobKind, JobSnooze, Testing, Worker } from "../src/index.ts"

// The code under test: a kind and its worker.
const SyncAccount = JobKind.make("sync_account", {
  args: Schema.Struct({ accountId: Schema.String })
})

class RemoteBusy extends Schema.TaggedError<RemoteBusy>()("RemoteBusy", {}) {}

/** Fails on its first call, asks to be snoozed on its second, succeeds on its third. */
const makeWorker = (calls: Ref.Ref<number>) =>
  Worker.make(SyncAccount, () =>
    Effect.gen(function*() {
      const n = yield* Ref.updateAndGet(calls, (x) => x + 1)
      if (n === 1) return yield* new RemoteBusy()
      if (n === 2) return yield* JobSnooze.of("10 minutes")
    }))

// Any PostgreSQL: here the test run's server (vitest globalSetup); in your project, your own.
const Db = Testing.database(inject("DATABASE_URL"))

describe("testing workers", () => {
  it.layer(Db)((it) => {
    it.effect("one attempt, its failure as a value, nothing left behind", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const calls = yield* Ref.make(0)
        const result = yield* Testing.work(makeWorker(calls), { accountId: "a1" }, { schema })
        assert.strictEqual(result.kind, "failed")
        assert.instanceOf(result.failure, RemoteBusy)
        assert.strictEqual(result.job.state, "available") // retried about 1 s later
        yield* Testing.assertNotInserted(SyncAccount, { schema }) // rolled back
      }))

    it.effect("retry then snooze then success, on TestClock", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const calls = yield* Ref.make(0)
        const { client, events } = yield* Testing.runner({
          schema,
          queues: { default: { maxWorkers: 1 } },
          workers: [makeWorker(calls)]
        })
        const { job } = yield* client.insert(SyncAccount, { accountId: "a2" })

        const failed = yield* Testing.awaitEvent(events)
        assert.strictEqual(failed.kind, "failed")

        // The retry's backoff, exactly: the row says when the next attempt is due.
        const row = yield* client.get(job.id)
        const backoff = row.scheduledAt.getTime() - Date.parse(row.errors.at(-1)!.at)
        assert.isAtLeast(backoff, 900) // River's 1 s ± 10 % for attempt 1
        assert.isAtMost(backoff, 1_100)
        const { moved } = yield* Testing.advanceToScheduled(job.id, { schema }) // TestClock, never past it
        assert.isAtMost(moved, backoff)
        assert.strictEqual(yield* Clock.currentTimeMillis, row.scheduledAt.getTime())
        yield* TestClock.adjust("1 millis") // the same clock, moved by hand

        const snoozed = yield* Testing.advanceUntil(events) // the retry runs on the scheduler's next pass
        assert.strictEqual(snoozed.event.kind, "snoozed")
        assert.strictEqual(snoozed.event.job.attempt, 1) // the snooze gave its attempt back

        const done = yield* Testing.advanceUntil(events) // 10 minutes of TestClock
        assert.strictEqual(done.event.kind, "completed")
        assert.isAtLeast(done.moved, 10 * 60_000)
        assert.strictEqual(done.event.job.id, job.id)
        assert.strictEqual(done.event.job.attempt, 2)
        assert.deepStrictEqual(done.event.job.metadata, { snoozes: 1 })
        assert.strictEqual(yield* Ref.get(calls), 3)
      }))
  })
})
