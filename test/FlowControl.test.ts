/**
 * Flow control in one process against a real PostgreSQL: options, a global limit shared by two
 * runners, partitions, rate limits under `TestClock`, and the migration line rate limits need.
 * test/flow/flow.test.ts runs three runner processes (and kills one, and restarts the server).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { DatabaseError, InvalidOptions } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Migrator from "../src/Migrator.ts"
import * as Runner from "../src/Runner.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { waitReal } from "./utils/runner.ts"

const Work = JobKind.make("flow_work", { args: Schema.Struct({ customer: Schema.String, n: Schema.Number }) })


/** Lets the runners poll a few times (TestClock) so that any fetch that could start a job has. */
const letThemPoll = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) {
    yield* TestClock.adjust("1 second")
    yield* TestClock.withLive(Effect.sleep("40 millis"))
  }
})

/** A worker whose jobs run until released, counting how many run at once (overall and per customer). */
const blockingWorker = Effect.gen(function*() {
  const gates = new Map<bigint, Deferred.Deferred<void>>()
  const gate = (id: bigint) => {
    let g = gates.get(id)
    if (g === undefined) gates.set(id, g = Deferred.makeUnsafe<void>())
    return g
  }
  const state = {
    running: new Map<bigint, string>(),
    peak: 0,
    customerPeak: 0,
    started: [] as Array<bigint>
  }
  const worker = Worker.make(Work, (job) =>
    Effect.gen(function*() {
      state.running.set(job.id, job.args.customer)
      state.started.push(job.id)
      state.peak = Math.max(state.peak, state.running.size)
      const sameCustomer = [...state.running.values()].filter((c) => c === job.args.customer).length
      state.customerPeak = Math.max(state.customerPeak, sameCustomer)
      yield* Deferred.await(gate(job.id))
    }).pipe(Effect.ensuring(Effect.sync(() => void state.running.delete(job.id)))))
  const release = (id: bigint) => Deferred.succeed(gate(id), undefined)
  return { worker, state, release }
})

describe("flow control", () => {
  it.layer(freshDatabase("flow", { maxConnections: 16 }))((it) => {
    it.effect("invalid limits are InvalidOptions naming the field, and nothing is written", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowbad")
        const sql = yield* SqlClient.SqlClient
        const worker = Worker.make(Work, () => Effect.void)
        const cases: ReadonlyArray<readonly [Runner.QueueOptions | Record<string, unknown>, string, string]> = [
          [{ maxWorkers: 1, globalLimit: 0 }, "queues.q.globalLimit", "must be an integer from 1 to 1,000,000"],
          [{ maxWorkers: 1, globalLimit: 2.5 }, "queues.q.globalLimit", "must be an integer from 1 to 1,000,000"],
          [{ maxWorkers: 1, partition: { byKind: true } }, "queues.q.partition", "needs a globalLimit or a rateLimit"],
          [{ maxWorkers: 1, globalLimit: 1, partition: {} }, "queues.q.partition", "must set byKind: true or list byArgs keys"],
          [{ maxWorkers: 1, globalLimit: 1, partition: { byArgs: [] } }, "queues.q.partition.byArgs", "must be an array of 1 to 16"],
          [{ maxWorkers: 1, globalLimit: 1, partition: { byArgs: ["a", ""] } }, "queues.q.partition.byArgs.1", "non-empty string"],
          [{ maxWorkers: 1, globalLimit: 1, partition: { byArgs: ["a", "a"] } }, "queues.q.partition.byArgs", "must not list a key twice"],
          [{ maxWorkers: 1, globalLimit: 1, partition: { byKind: "yes" } }, "queues.q.partition.byKind", "must be true or false"],
          [{ maxWorkers: 1, rateLimit: { limit: 0, per: "1 second" } }, "queues.q.rateLimit.limit", "must be an integer from 1"],
          [{ maxWorkers: 1, rateLimit: { limit: 5, per: "soon" } }, "queues.q.rateLimit.per", "must be a duration of at least 1 ms"],
          [{ maxWorkers: 1, rateLimit: { limit: 5 } }, "queues.q.rateLimit.per", "is required"]
        ]
        for (const [queue, field, rule] of cases) {
          const error = yield* Effect.flip(Runner.make({ schema, queues: { q: queue as Runner.QueueOptions }, workers: [worker] }))
          assert.instanceOf(error, InvalidOptions, JSON.stringify(queue))
          assert.strictEqual((error as InvalidOptions).field, field, JSON.stringify(queue))
          assert.include((error as InvalidOptions).rule, rule, JSON.stringify(queue))
        }
        const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".river_queue`)
        assert.strictEqual(rows[0]!.n, 0, "no queue row written")
      }))

    it.effect("a rate limit on a schema without effect-river's line fails at start saying which command to run", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowline")
        yield* Migrator.down({ schema, targetVersion: 0, line: "effect-river" })
        const worker = Worker.make(Work, () => Effect.void)
        const error = yield* Effect.flip(
          Runner.make({ schema, queues: { q: { maxWorkers: 1, rateLimit: { limit: 1, per: "1 second" } } }, workers: [worker] })
        )
        assert.instanceOf(error, DatabaseError)
        assert.include(error.message, "queues.q.rateLimit needs effect-river's own migration line")
        assert.include(error.message, "effect-river migrate up")
        assert.isFalse((error as DatabaseError).retryable)
      }))

    it.effect("two runners share a global limit; a slot freed by one is taken at once by either", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowglobal")
        const { release, state, worker } = yield* blockingWorker
        const queues = { default: { maxWorkers: 5, globalLimit: 3 } }
        const a = yield* Testing.runner({ schema, queues, workers: [worker] })
        yield* Testing.runner({ schema, queues, workers: [worker] })
        const jobs = yield* a.client.insertMany(Array.from({ length: 9 }, (_, n) => Work.of({ customer: "x", n })))
        yield* waitReal("three jobs running", Effect.sync(() => state.running.size === 3))
        yield* letThemPoll
        assert.strictEqual(state.started.length, 3, "no fourth job starts while three run")
        // Each slot freed (anywhere) is used without waiting for a poll: no clock moves here.
        for (let done = 0; done < 9; done++) {
          const id = [...state.running.keys()][0]!
          yield* release(id)
          yield* waitReal(`job ${done + 4} to start`, Effect.sync(() => state.started.length === Math.min(9, done + 4)))
          if (done + 4 <= 9) yield* waitReal("three running again", Effect.sync(() => state.running.size === 3 || state.started.length === 9))
        }
        yield* waitReal("all done", Effect.sync(() => state.running.size === 0))
        assert.strictEqual(state.peak, 3)
        assert.deepStrictEqual([...state.started].sort(), jobs.map((r) => r.job.id).sort())
      }))

    it.effect("a slot freed by a runner that cannot take it (stopping) is taken by another at once", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowhand")
        const ranOn = new Map<bigint, string>()
        const runs: Array<string> = []
        const gates = new Map<bigint, Deferred.Deferred<void>>()
        const gate = (id: bigint) => {
          let g = gates.get(id)
          if (g === undefined) gates.set(id, g = Deferred.makeUnsafe<void>())
          return g
        }
        const on = (name: string) =>
          Worker.make(Work, (job) =>
            Effect.gen(function*() {
              ranOn.set(job.id, name)
              runs.push(`${job.id}@${name}`)
              yield* Deferred.await(gate(job.id))
            }))
        const queues = { default: { maxWorkers: 2, globalLimit: 1 } }
        const aScope = yield* Scope.make()
        // a's stop waits for its job (the test settings would interrupt it at once, and the job
        // would be worked again elsewhere).
        const a = yield* Testing.runner({ schema, queues, workers: [on("a")], softStopTimeout: "none" }).pipe(
          Scope.provide(aScope)
        )
        const [first, second] = yield* a.client.insertMany([Work.of({ customer: "x", n: 0 }), Work.of({ customer: "x", n: 1 })])
        yield* waitReal("the first job running on a", Effect.sync(() => ranOn.get(first!.job.id) === "a"))
        yield* Testing.runner({ schema, queues, workers: [on("b")] })
        // A stops (its producer first, then it waits for its job): the slot its job frees is not
        // one it can use, so b must hear of it. No clock moves: b never polls.
        const stopping = yield* Effect.forkChild(Scope.close(aScope, Exit.void))
        yield* TestClock.withLive(Effect.sleep("100 millis"))
        assert.isFalse(ranOn.has(second!.job.id), "no second job while the first runs")
        yield* Deferred.succeed(gate(first!.job.id), undefined)
        yield* waitReal("the second job running on b", Effect.sync(() => ranOn.get(second!.job.id) === "b"))
        yield* Deferred.succeed(gate(second!.job.id), undefined)
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(runs, [`${first!.job.id}@a`, `${second!.job.id}@b`], "the first job ran once, on a")
      }))

    it.effect("partitioned by args: one job per customer at a time, customers in parallel, no head-of-line blocking", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowpart")
        const { release, state, worker } = yield* blockingWorker
        const { client } = yield* Testing.runner({
          schema,
          queues: { default: { maxWorkers: 10, globalLimit: 1, partition: { byArgs: ["customer"] } } },
          workers: [worker]
        })
        // Customer a's backlog comes first in fetch order; b and c must not wait behind it.
        const a = yield* client.insertMany(Array.from({ length: 4 }, (_, n) => Work.of({ customer: "a", n })))
        const b = yield* client.insertMany(Array.from({ length: 2 }, (_, n) => Work.of({ customer: "b", n })))
        const c = yield* client.insert(Work, { customer: "c", n: 0 })
        yield* waitReal("a, b and c running", Effect.sync(() => state.running.size === 3))
        yield* letThemPoll
        assert.sameMembers([...state.running.values()], ["a", "b", "c"])
        assert.sameMembers(state.started, [a[0]!.job.id, b[0]!.job.id, c.job.id])
        yield* release(a[0]!.job.id)
        yield* waitReal("a's next job", Effect.sync(() => state.started.includes(a[1]!.job.id)))
        for (const r of [...a, ...b, c]) yield* release(r.job.id)
        yield* waitReal("all done", Effect.sync(() => state.started.length === 7 && state.running.size === 0))
        assert.strictEqual(state.customerPeak, 1)
      }))

    /** 7 no-op jobs under a rate of 2 per 10 s: never more than 2 starts in any window, none starved. */
    const rateSpreadsStarts = (queue: Runner.QueueOptions) =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("flowrate")
        const sql = yield* SqlClient.SqlClient
        const worker = Worker.make(Work, () => Effect.void)
        const { client, events } = yield* Testing.runner({
          schema,
          queues: { default: queue },
          workers: [worker]
        })
        yield* client.insertMany(Array.from({ length: 7 }, (_, n) => Work.of({ customer: "x", n })))
        let done = 0
        let moved = 0
        while (done < 7) {
          const event = yield* Testing.advanceUntil(events, () => true, { step: 250 })
          done++
          moved += event.moved
        }
        const starts = (yield* sql.unsafe<{ at: Date }>(
          `SELECT attempted_at AS at FROM "${schema}".river_job ORDER BY attempted_at`
        )).map((r) => new Date(r.at).getTime())
        assert.strictEqual(starts.length, 7)
        for (let i = 0; i + 2 < starts.length; i++) {
          assert.isAtLeast(starts[i + 2]! - starts[i]!, 10_000, `starts ${i} and ${i + 2} are a window apart`)
        }
        // Not starved either: 7 starts at 2 per 10 s need three more windows (plus a bucket each).
        assert.isAtMost(moved, 3 * 10_500 + 1_000, `the clock moved ${moved} ms`)
      })

    it.effect("a rate limit spreads starts: never more than limit in any window, driven by TestClock", () =>
      rateSpreadsStarts({ maxWorkers: 10, rateLimit: { limit: 2, per: "10 seconds" } }))

    it.effect("with a global limit beside the rate, a completion starts no job in its slot that the rate does not allow", () =>
      // The slot hand-over is for a global limit alone: here it would start the third job as the first completes.
      rateSpreadsStarts({ maxWorkers: 10, globalLimit: 5, rateLimit: { limit: 2, per: "10 seconds" } }))
  })
})
