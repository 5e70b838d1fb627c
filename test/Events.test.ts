/**
 * Events beyond outcomes: `started` events (runner.subscribeAll), `client.waitFor` (woken by the
 * runner's own completion; a poll on the Clock from another client), and job output
 * (`Worker.recordOutput` → `metadata.output`, River's key and 32 MB limit).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, PubSub, Schema } from "effect"
import * as Client from "../src/Client.ts"
import { InvalidOptions, InvalidOutput, JobNotFound } from "../src/Errors.ts"
import type { AnyJobEvent } from "../src/JobEvent.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { adjustUntilDone, awaitEvent, startRunner } from "./utils/runner.ts"

const Task = JobKind.make("events_task", {
  args: Schema.Struct({ mode: Schema.String })
})

const worker = Worker.make(Task, (job) =>
  Effect.gen(function*() {
    switch (job.args.mode) {
      case "output":
        return yield* Worker.recordOutput({ url: "https://example.test/a.png", n: 2, big: 12345678901234567890n })
      case "output-then-fail":
        yield* Worker.recordOutput({ partial: true })
        return yield* Effect.fail(new Error("after output"))
      case "bad-outputs": {
        const tooLarge = yield* Effect.flip(Worker.recordOutput("x".repeat(32 * 1024 * 1024)))
        const fn = yield* Effect.flip(Worker.recordOutput(() => 1))
        const cycle: Record<string, unknown> = {}
        cycle["self"] = cycle
        const cyclic = yield* Effect.flip(Worker.recordOutput(cycle))
        return yield* Worker.recordOutput({ reasons: [tooLarge.reason, fn.reason, cyclic.reason], detail: tooLarge.detail })
      }
      default:
        return
    }
  }))

describe("Events, waitFor and output", () => {
  it.layer(freshDatabase("events"))((it) => {
    it.effect("subscribeAll delivers started before the outcome; subscribe stays outcomes-only", () =>
      Effect.gen(function*() {
        const { client, events, runner } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          autoStart: false
        })
        const all = yield* runner.subscribeAll
        yield* runner.start
        const { job } = yield* client.insert(Task, { mode: "plain" })
        const seen: Array<AnyJobEvent> = [yield* PubSub.take(all), yield* PubSub.take(all)]
        assert.deepStrictEqual(seen.map((e) => e.kind), ["started", "completed"])
        assert.strictEqual(seen[0]!.job.id, job.id)
        assert.strictEqual(seen[0]!.job.state, "running")
        assert.strictEqual(seen[0]!.job.attempt, 1)
        const outcome = yield* awaitEvent(events)
        assert.strictEqual(outcome.kind, "completed")
        // The outcome subscription got the outcome only (no started event before it, none after).
        assert.strictEqual(outcome.job.id, job.id)
        assert.strictEqual(yield* PubSub.remaining(events), 0)
      }))

    it.effect("waitFor in the runner's own client is woken by the completion (the clock never moves)", () =>
      Effect.gen(function*() {
        const { client } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] })
        const { job } = yield* client.insert(Task, { mode: "output" })
        // With TestClock not advanced, the 1-hour poll cannot fire: only the runner's wake-up ends this.
        const done = yield* client.waitFor(job.id, { pollInterval: "1 hour" })
        assert.strictEqual(done.state, "completed")
        assert.deepStrictEqual(done.metadata["output"], { url: "https://example.test/a.png", n: 2, big: 12345678901234567890n })
        assert.deepStrictEqual((yield* client.get(job.id)).metadata["output"], done.metadata["output"])
      }))

    it.effect("waitFor from another client polls the row on the Clock until the job is final", () =>
      Effect.gen(function*() {
        const { runner, schema } = yield* startRunner({
          queues: { default: { maxWorkers: 2 } },
          workers: [worker],
          autoStart: false
        })
        const other = yield* Client.make({ schema })
        const { job } = yield* other.insert(Task, { mode: "output-then-fail" }, { maxAttempts: 1 })
        const waiting = yield* Effect.forkChild(other.waitFor(job.id, { pollInterval: "5 seconds" }))
        yield* runner.start
        const moved = yield* adjustUntilDone(waiting, 5_000)
        assert.isAtLeast(moved, 5_000)
        const done = yield* Fiber.join(waiting)
        assert.strictEqual(done.state, "discarded")
        // River keeps output whatever the outcome.
        assert.deepStrictEqual(done.metadata["output"], { partial: true })
        assert.strictEqual(done.errors.length, 1)
      }))

    it.effect("waitFor: an unknown id is JobNotFound; a bad pollInterval is InvalidOptions before any SQL", () =>
      Effect.gen(function*() {
        const { client } = yield* startRunner({ queues: { default: { maxWorkers: 1 } }, workers: [worker] })
        const missing = yield* Effect.flip(client.waitFor(987654321n))
        assert.instanceOf(missing, JobNotFound)
        const bad = yield* Effect.flip(client.waitFor(1n, { pollInterval: "0 millis" }))
        assert.instanceOf(bad, InvalidOptions)
        assert.strictEqual((bad as InvalidOptions).field, "waitFor.pollInterval")
      }))

    it.effect("recordOutput refuses values over 32 MB or without JSON form, with a typed error; outside a worker too", () =>
      Effect.gen(function*() {
        const { client } = yield* startRunner({ queues: { default: { maxWorkers: 1 } }, workers: [worker] })
        const { job } = yield* client.insert(Task, { mode: "bad-outputs" })
        const done = yield* client.waitFor(job.id, { pollInterval: "1 hour" })
        assert.strictEqual(done.state, "completed")
        const output = done.metadata["output"] as { reasons: Array<string>; detail: string }
        assert.deepStrictEqual(output.reasons, ["TooLarge", "NotSerializable", "NotSerializable"])
        assert.match(output.detail, /output is too large: \d+ bytes \(max 32 MB\)/)
        const outside = yield* Effect.flip(Worker.recordOutput({ a: 1 }))
        assert.instanceOf(outside, InvalidOutput)
        assert.strictEqual(outside.reason, "NotInWorker")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(Worker.recordOutput(undefined))))
      }))
  })
})
