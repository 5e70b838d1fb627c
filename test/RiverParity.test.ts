/**
 * Behaviours River changed between 0.44 and 0.51 that effect-river follows, each shown against a
 * real PostgreSQL: a cancel that loses a race returns the job as it is now (River 0.48, PR #1409),
 * events report the outcome the database kept (River 0.44, PR #1350; 0.48, PR #1383), and a
 * runner notices a pause or resume whose notification it missed (River 0.51.1).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, PubSub, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import type { JobEvent } from "../src/JobEvent.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { awaitEvent, startRunner, waitReal } from "./utils/runner.ts"

const Task = JobKind.make("parity_task", { args: Schema.Struct({ mode: Schema.String }) })


describe("River 0.44–0.51 behaviours", () => {
  it.layer(freshDatabase("parity", { maxConnections: 12 }))((it) => {
    it.effect("a cancel that waited for another cancel of the same job returns the job as that one left it", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("cancelrace")
        const sql = yield* SqlClient.SqlClient
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Task, { mode: "queued" })
        // The first cancel holds its transaction open; the second waits for its row lock.
        const firstDone = yield* Deferred.make<void>()
        const commit = yield* Deferred.make<void>()
        const first = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* client.cancel(job.id)
          yield* Deferred.succeed(firstDone, undefined)
          yield* Deferred.await(commit)
        })))
        yield* Deferred.await(firstDone)
        const second = yield* Effect.forkChild(client.cancel(job.id))
        yield* waitReal(
          "the second cancel to wait for the lock",
          Effect.map(
            sql.unsafe<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
            ),
            (rows) => rows[0]!.n > 0
          )
        )
        yield* Deferred.succeed(commit, undefined)
        yield* Fiber.join(first)
        const row = yield* Fiber.join(second)
        assert.strictEqual(row.state, "cancelled", "not the row as it was before the first cancel committed")
        assert.isNotNull(row.finalizedAt)
        assert.isString(row.metadata.cancel_attempted_at)
      }))

    it.effect("events report the outcome the database kept: a retry or snooze rewritten by a cancel request is a cancelled event", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const worker = Worker.make(Task, (job): Effect.Effect<void, string | Worker.JobSnooze> =>
          Effect.andThen(
            Deferred.await(gate),
            job.args.mode === "retry"
              ? Effect.fail<string | Worker.JobSnooze>("transient")
              : Effect.fail<string | Worker.JobSnooze>(Worker.JobSnooze.of("1 second"))
          ))
        const { client, events, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 4 } },
          workers: [worker],
          pollOnly: true,
          cancelCheckInterval: "1 hour" // the request must not reach the fibers: only the completion sees it
        })
        const jobs = yield* client.insertMany([Task.of({ mode: "retry" }), Task.of({ mode: "snooze" })])
        yield* waitReal("both running", Effect.map(
          Effect.forEach(jobs, (r) => client.get(r.job.id)),
          (rows) => rows.every((r) => r.state === "running")
        ))
        const elsewhere = yield* Client.make({ schema })
        for (const r of jobs) yield* elsewhere.cancel(r.job.id)
        yield* Deferred.succeed(gate, undefined)
        const got: Array<JobEvent> = [yield* awaitEvent(events), yield* awaitEvent(events)]
        for (const event of got) {
          assert.strictEqual(event.job.state, "cancelled")
          assert.strictEqual(event.kind, "cancelled", `${(event.job.args as { mode: string }).mode}: the event follows the row`)
        }
      }))

    it.effect("an outcome that did not apply (the job left running meanwhile) publishes no event", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const worker = Worker.make(Task, () => Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(gate)))
        const { client, events, schema } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(Task, { mode: "moved" })
        yield* Deferred.await(started)
        // Someone else finished the job while it ran (a rescue and another runner, a hand edit).
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, [job.id])
        yield* Deferred.succeed(gate, undefined)
        const marker = yield* client.insert(Task, { mode: "after" })
        const next = yield* awaitEvent(events)
        assert.strictEqual(next.job.id, marker.job.id, "the first event is the next job's, not the one whose outcome did not apply")
      }))

    it.effect("with LISTEN, a resume whose notification was lost is noticed within a minute", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("lostresume")
        const sql = yield* SqlClient.SqlClient
        const setup = yield* Client.make({ schema })
        yield* setup.pauseQueue("default")
        const { job } = yield* setup.insert(Task, { mode: "waiting" })
        const worker = Worker.make(Task, () => Effect.void)
        const { events } = yield* startRunner({ schema, queues: { default: { maxWorkers: 1 } }, workers: [worker] })
        // Resumed by a write whose notification never arrived (sent while the listener reconnected).
        yield* sql.unsafe(`UPDATE "${schema}".river_queue SET paused_at = NULL WHERE name = 'default'`)
        let moved = 0
        while (true) {
          const ready = yield* PubSub.takeUpTo(events, 1)
          if (ready.length > 0) {
            assert.strictEqual(ready[0]!.job.id, job.id)
            break
          }
          if (moved > 120_000) assert.fail("the runner never noticed the resume")
          yield* TestClock.adjust("2 seconds")
          moved += 2_000
          yield* TestClock.withLive(Effect.sleep("20 millis"))
        }
        assert.isAtMost(moved, 62_000, "within a minute (River checks queue settings once a minute)")
      }))
  })
})
