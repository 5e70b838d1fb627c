/**
 * The option parser (src/internal/options.ts) and the constructors that use it: each bad option
 * is InvalidOptions naming its field, before any SQL (no database here: the constructors fail
 * before they ask for one).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Result, Schema } from "effect"
import * as Client from "../../src/Client.ts"
import { InvalidOptions } from "../../src/Errors.ts"
import * as Options from "../../src/internal/options.ts"
import * as JobKind from "../../src/JobKind.ts"
import * as PeriodicJob from "../../src/PeriodicJob.ts"
import * as Runner from "../../src/Runner.ts"
import * as Testing from "../../src/Testing.ts"
import * as Worker from "../../src/Worker.ts"

const Task = JobKind.make("task", { args: Schema.Struct({}) })
const worker = Worker.make(Task, () => Effect.void)

const Sample = Schema.Struct({
  interval: Options.withDefault(Options.duration({ min: 1 }), "5 seconds"),
  timeout: Options.withDefault(Options.durationOr(["none"], { min: 1 }), "1 minute"),
  size: Options.withDefault(Options.integer(1, 10, "must be an integer from 1 to 10"), 3),
  nested: Options.withDefault(Schema.Struct({ keep: Options.withDefault(Options.durationOr(["forever"], { min: 0 }), "1 hour") }), {})
})

describe("options", () => {
  it("decodes durations, words and integers, with defaults for absent and undefined options", () => {
    const all = Result.getOrThrow(Options.decode(Sample, {}))
    assert.strictEqual(Duration.toMillis(all.interval), 5_000)
    assert.strictEqual(Duration.toMillis(all.timeout as Duration.Duration), 60_000)
    assert.strictEqual(all.size, 3)
    assert.strictEqual(Duration.toMillis(all.nested.keep as Duration.Duration), 3_600_000)
    const given = Result.getOrThrow(Options.decode(Sample, { interval: 250, timeout: "none", size: undefined, nested: { keep: "forever" } }))
    assert.strictEqual(Duration.toMillis(given.interval), 250)
    assert.strictEqual(given.timeout, "none")
    assert.strictEqual(given.size, 3)
    assert.strictEqual(given.nested.keep, "forever")
  })

  it("reports the first problem with its field path, its rule and the value given", () => {
    const cases: ReadonlyArray<readonly [unknown, string, string, string]> = [
      [{ interval: "nonsense" }, "interval", "must be a duration of at least 1 ms", `"nonsense"`],
      [{ interval: 0 }, "interval", "must be a duration of at least 1 ms", "0"],
      [{ timeout: "never" }, "timeout", "must be a duration of at least 1 ms", `"never"`],
      [{ size: 1.5 }, "size", "must be an integer from 1 to 10", "1.5"],
      [{ size: Number.NaN }, "size", "must be an integer from 1 to 10", "NaN"],
      [{ nested: { keep: -1 } }, "nested.keep", "must be a duration of at least 0 ms", "-1"],
      [{ interval: "x", size: 0 }, "interval", "must be a duration of at least 1 ms", `"x"`]
    ]
    for (const [input, field, rule, value] of cases) {
      const decoded = Options.decode(Sample, input, "p.")
      assert.isTrue(Result.isFailure(decoded), JSON.stringify(input))
      const error = (decoded as Result.Failure<never, InvalidOptions>).failure
      assert.instanceOf(error, InvalidOptions)
      assert.deepStrictEqual([error.field, error.rule, error.value], [`p.${field}`, rule, value], JSON.stringify(input))
    }
  })

  it.effect("every constructor reports its bad options by field, before any SQL", () =>
    Effect.gen(function*() {
      // The failure (or defect, such as a missing SqlClient: then the constructor went too far).
      const noDatabase = (effect: Effect.Effect<unknown, unknown, any>): Effect.Effect<unknown> =>
        Effect.map(Effect.exit(effect as Effect.Effect<unknown, unknown>), (exit) => exit._tag === "Failure" ? Cause.squash(exit.cause) : exit.value)
      const runner = (options: Record<string, unknown>) =>
        noDatabase(Runner.make({ queues: { default: { maxWorkers: 1 } }, workers: [worker], ...options } as never))
      const cases: ReadonlyArray<readonly [Effect.Effect<unknown>, string]> = [
        [runner({ fetchCooldown: -1 }), "fetchCooldown"],
        [runner({ jobTimeout: 0 }), "jobTimeout"],
        [runner({ softStopTimeout: "soon" }), "softStopTimeout"],
        [runner({ stopFlushTimeout: "nonsense" }), "stopFlushTimeout"],
        [runner({ cancelCheckInterval: 0 }), "cancelCheckInterval"],
        [runner({ clockSkewWarning: "on" }), "clockSkewWarning"],
        [runner({ leadership: { ttl: "500 millis" } }), "leadership.ttl"],
        [runner({ leadership: { ttl: "3 seconds", renewInterval: "2 seconds" } }), "leadership.renewInterval"],
        [runner({ jobTimeout: "2 hours", rescueStuckJobsAfter: "1 hour" }), "rescueStuckJobsAfter"],
        [runner({ retention: { completed: -1 } }), "retention.completed"],
        [runner({ eventBuffer: 1.5 }), "eventBuffer"],
        [runner({ queues: null }), "queues"],
        [runner({ queues: { default: { maxWorkers: 1, fetchCooldown: -1 } } }), "queues.default.fetchCooldown"],
        [runner({ periodicJobs: [PeriodicJob.make({ id: "p", schedule: "1 minute", job: () => undefined })].flatMap((p) => [p, p]) }), "periodicJobs"],
        [noDatabase(Client.make({ id: "" })), "id"],
        [noDatabase(Client.make({ insertNotifyCooldown: "soon" as never })), "insertNotifyCooldown"],
        [noDatabase(Client.make({ defaults: { priority: 9 } })), "defaults.priority"],
        [noDatabase(Testing.work(worker, {}, { jobTimeout: -1 })), "jobTimeout"]
      ]
      for (const [effect, field] of cases) {
        const error = yield* effect
        assert.instanceOf(error, InvalidOptions, field)
        assert.strictEqual((error as InvalidOptions).field, field)
      }
      assert.strictEqual(Worker.make(Task, () => Effect.void, { timeout: 0 }).problem?.field, "workers.task.timeout")
      assert.strictEqual(Worker.make(Task, () => Effect.void, { timeout: "none" }).problem, undefined)
      assert.strictEqual(Worker.make(Task, () => Effect.void, { retryPolicy: 5 as never }).problem?.field, "workers.task.retryPolicy")
      assert.strictEqual(PeriodicJob.make({ id: "x y", schedule: "1 minute", job: () => undefined }).problem?.field, "periodicJobs.id")
      assert.strictEqual(PeriodicJob.make({ id: "fast", schedule: 999, job: () => undefined }).problem?.field, "periodicJobs.fast.schedule")
    }))
})
