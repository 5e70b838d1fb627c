/**
 * The errors and warnings where users fell (issue 15): an unmigrated schema names the migration
 * command, a queue no runner works is a warning at start, `Testing.database(undefined)` names
 * `DATABASE_URL`; and `Testing.advanceTo*` move the clock exactly where `advanceUntil` overshoots.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Config, ConfigProvider, Context, Effect, Exit, Layer, Logger, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../src/Client.ts"
import { DatabaseError, InvalidOptions } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Migrator from "../src/Migrator.ts"
import * as Runner from "../src/Runner.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { startRunner } from "./utils/runner.ts"

const Task = JobKind.make("task", { args: Schema.Struct({ fail: Schema.optional(Schema.Boolean) }) })
const Mail = JobKind.make("mail", { args: Schema.Struct({}), options: { queue: "mail" } })

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

/** Collects the messages of warnings logged while `effect` runs. */
const warningsOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const collect = Logger.layer([Logger.make((o) => {
      if (o.logLevel === "Warn") warnings.push(String(o.message))
    })])
    yield* effect.pipe(Effect.provide(collect))
    return warnings
  })

describe("Operability", () => {
  it.effect("Testing.database(undefined) fails with InvalidOptions naming DATABASE_URL, not a retryable database error", () =>
    Effect.gen(function*() {
      for (const url of [undefined, "", "  "]) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Testing.database(url))))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        const failure = error !== undefined && "error" in error ? error.error : undefined
        assert.instanceOf(failure, InvalidOptions)
        assert.strictEqual((failure as InvalidOptions).field, "url")
        assert.include((failure as InvalidOptions).message, "DATABASE_URL")
        assert.notProperty(failure as object, "retryable")
      }
    }))

  it.layer(freshDatabase("operability"))((it) => {
    it.effect("an unmigrated schema: client and runner errors say to run effect-river migrate up", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS unmigrated`)
        const client = yield* Client.make({ schema: "unmigrated" })
        const listed = yield* Effect.flip(client.list())
        assert.instanceOf(listed, DatabaseError)
        assert.strictEqual(listed._tag, "DatabaseError")
        assert.isFalse(listed.retryable)
        assert.match(listed.message, /relation "unmigrated\.river_job" does not exist.*run `effect-river migrate up`/)
        const inserted = yield* Effect.flip(client.insert(Task, {}))
        assert.include(inserted.message, "effect-river migrate up")

        const worker = Worker.make(Task, () => Effect.void)
        const started = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
          const { client: own } = yield* Runner.make({
            ...Testing.testRunnerSettings,
            schema: "unmigrated",
            queues: { default: { maxWorkers: 1 } },
            workers: [worker]
          })
          // Whatever the runner's start does in the background, its own client fails the same way.
          return yield* own.insert(Task, {})
        })))
        assert.include(started.message, "effect-river migrate up")
      }))

    it.effect("a worker whose kind's queue the runner does not work, or no queue at all, is a warning at start", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema("warn")
        const workers = [Worker.make(Task, () => Effect.void), Worker.make(Mail, () => Effect.void)]
        const start = (queues: Record<string, { readonly maxWorkers: number }>) =>
          Effect.scoped(Runner.make({ ...Testing.testRunnerSettings, schema, queues, workers }))
        const missing = yield* warningsOf(start({ default: { maxWorkers: 1 } }))
        assert.deepStrictEqual(missing.length, 1, missing.join("\n"))
        assert.match(missing[0]!, /worker of kind "mail" inserts into queue "mail", which this runner does not work/)
        const none = yield* warningsOf(
          Effect.scoped(Runner.make({ ...Testing.testRunnerSettings, schema, queues: {}, workers: [] }))
        )
        assert.strictEqual(none.length, 1, none.join("\n"))
        assert.match(none[0]!, /queues is empty/)
        assert.deepStrictEqual(yield* warningsOf(start({ default: { maxWorkers: 1 }, mail: { maxWorkers: 1 } })), [])
      }))

    it.effect("Runner.layerConfig reads its settings through Config; Migrator.layer migrates before the runner is built", () =>
      Effect.gen(function*() {
        const env = (vars: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnvRecord(vars))
        const queues = Runner.queuesConfig("RIVER_QUEUES", "default:3")
        assert.deepStrictEqual(
          yield* queues.pipe(Effect.provide(env({ RIVER_QUEUES: "default:10, mail:5" }))),
          { default: { maxWorkers: 10 }, mail: { maxWorkers: 5 } }
        )
        assert.deepStrictEqual(yield* queues.pipe(Effect.provide(env({}))), { default: { maxWorkers: 3 } })

        const workers = [Worker.make(Task, () => Effect.void)]
        const schema = Config.String("RIVER_SCHEMA")
        const live = (vars: Record<string, string>) =>
          Runner.layerConfig({ ...Testing.testRunnerSettings, workers, schema, queues }).pipe(
            Layer.provide(Layer.unwrap(Effect.map(schema, (schema) => Migrator.layer({ schema })))),
            Layer.provide(env(vars))
          )
        // The schema does not exist yet: Migrator.layer creates it before the runner starts.
        const runner = yield* Effect.scoped(Effect.map(
          Layer.build(live({ RIVER_SCHEMA: "from_config", RIVER_QUEUES: "default:2,mail:1" })),
          (context) => Context.get(context, Runner.Runner)
        ))
        assert.strictEqual(runner.schema, "from_config")
        assert.deepStrictEqual([...runner.queues].sort(), ["default", "mail"])
        assert.strictEqual((yield* Migrator.list({ schema: "from_config" })).current, Migrator.latestVersion)

        const bad = yield* Effect.flip(Effect.scoped(Layer.build(live({ RIVER_SCHEMA: "from_config", RIVER_QUEUES: "default:many" }))))
        assert.instanceOf(bad, InvalidOptions)
        assert.strictEqual((bad as InvalidOptions).field, "queues.default.maxWorkers")
        const missing = yield* Effect.flip(Effect.scoped(Layer.build(live({ RIVER_QUEUES: "default:1" }))))
        assert.include(String((missing as { message?: unknown }).message), "RIVER_SCHEMA")
      }))

    it.effect("advanceToScheduled moves the clock exactly to a retry's scheduledAt, never past it", () =>
      Effect.gen(function*() {
        const worker = Worker.make(Task, (job): Effect.Effect<void, Boom> =>
          job.args.fail === true && job.attempt === 1 ? Effect.fail(new Boom()) : Effect.void
        )
        const { client, events, schema } = yield* startRunner({ queues: { default: { maxWorkers: 1 } }, workers: [worker] })
        const { job } = yield* client.insert(Task, { fail: true })
        const failed = yield* Testing.awaitEvent(events, (e) => e.job.id === job.id)
        assert.strictEqual(failed.kind, "failed")
        const row = yield* client.get(job.id)
        // A retry due sooner than the scheduler's pass is stored `available` with a future
        // scheduledAt (as River does); a later one `retryable`. Either way it waits for scheduledAt.
        assert.include(["available", "retryable"], row.state)
        const backoff = row.scheduledAt.getTime() - new Date(row.errors.at(-1)!.at).getTime()
        assert.isAbove(backoff, 0)
        const before = yield* Clock.currentTimeMillis
        const { moved, scheduledAt } = yield* Testing.advanceToScheduled(job.id, { schema })
        assert.strictEqual(scheduledAt.getTime(), row.scheduledAt.getTime())
        assert.strictEqual(moved, row.scheduledAt.getTime() - before)
        assert.strictEqual(yield* Clock.currentTimeMillis, row.scheduledAt.getTime())
        assert.deepStrictEqual(yield* Testing.advanceToScheduled(job.id, { schema }), { scheduledAt, moved: 0 })
        assert.deepStrictEqual(yield* Testing.advanceTo(new Date(before)), { moved: 0 }, "never backwards")
        const { event } = yield* Testing.advanceUntil(events, (e) => e.job.id === job.id)
        assert.strictEqual(event.kind, "completed")
        assert.strictEqual(event.job.attempt, 2)
      }))
  })
})
