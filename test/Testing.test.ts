import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidOptions } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Resumable from "../src/Resumable.ts"
import * as Testing from "../src/Testing.ts"
import * as Worker from "../src/Worker.ts"
import { JobCancel, JobSnooze } from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"

const Email = JobKind.make("email", { args: Schema.Struct({ to: Schema.String, mode: Schema.optional(Schema.String) }) })
const Other = JobKind.make("other", { args: Schema.Struct({}) })

class MailerDown extends Schema.TaggedError<MailerDown>()("MailerDown", { host: Schema.String }) {}

const EmailWorker = Worker.make(Email, (job) => {
  switch (job.args.mode) {
    case "fail":
      return Effect.fail(new MailerDown({ host: "smtp" }))
    case "cancel":
      return Effect.fail(JobCancel.of("unsubscribed"))
    case "snooze":
      return Effect.fail(JobSnooze.of("10 minutes"))
    default:
      return Effect.void
  }
})

const countJobs = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".river_job`),
      (rows) => rows[0]!.n
    ))

describe("Testing", () => {
  it.layer(freshDatabase("testing"))((it) => {
    it.effect("work runs the real executor and leaves nothing behind", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const ok = yield* Testing.work(EmailWorker, { to: "a@x" }, { schema })
        assert.strictEqual(ok.kind, "completed")
        assert.strictEqual(ok.job.state, "completed")
        assert.strictEqual(ok.job.attempt, 1)
        assert.isUndefined(ok.failure)
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("the worker's failure comes back as a value", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const failed = yield* Testing.work(EmailWorker, { to: "a@x", mode: "fail" }, { schema })
        assert.strictEqual(failed.kind, "failed")
        assert.instanceOf(failed.failure, MailerDown)
        assert.strictEqual(failed.job.state, "available")
        assert.strictEqual(failed.error, "MailerDown")
        const cancelled = yield* Testing.work(EmailWorker, { to: "a@x", mode: "cancel" }, { schema })
        assert.strictEqual(cancelled.kind, "cancelled")
        assert.instanceOf(cancelled.failure, JobCancel)
        assert.strictEqual(cancelled.job.state, "cancelled")
        const snoozed = yield* Testing.work(EmailWorker, { to: "a@x", mode: "snooze" }, { schema })
        assert.strictEqual(snoozed.kind, "snoozed")
        assert.instanceOf(snoozed.failure, JobSnooze)
        assert.strictEqual(snoozed.job.state, "scheduled")
        assert.strictEqual(snoozed.job.attempt, 0)
        const discarded = yield* Testing.work(EmailWorker, { to: "a@x", mode: "fail" }, { schema, insert: { maxAttempts: 1 } })
        assert.strictEqual(discarded.job.state, "discarded")
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("workJob works an existing row; the row is unchanged afterwards", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Email, { to: "b@x" })
        const result = yield* Testing.workJob(EmailWorker, job.id, { schema })
        assert.strictEqual(result.job.state, "completed")
        assert.strictEqual((yield* client.get(job.id)).state, "available")
      }))

    it.effect("an invalid jobTimeout is InvalidOptions naming the field, before any SQL", () =>
      Effect.gen(function*() {
        for (const jobTimeout of ["nonsense", -5, 0]) {
          const error = yield* Effect.flip(Testing.work(EmailWorker, { to: "t@x" }, { schema: "no_such_schema", jobTimeout: jobTimeout as never }))
          assert.instanceOf(error, InvalidOptions, String(jobTimeout))
          assert.strictEqual((error as InvalidOptions).field, "jobTimeout")
        }
      }))

    it.effect("workJob works a finalized row too (it need not be available)", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        const { job } = yield* client.insert(Email, { to: "f@x" })
        yield* client.cancel(job.id)
        const result = yield* Testing.workJob(EmailWorker, job.id, { schema })
        assert.strictEqual(result.kind, "completed")
        assert.strictEqual(result.job.state, "completed")
        assert.strictEqual(result.job.attempt, 1)
        assert.strictEqual((yield* client.get(job.id)).state, "cancelled", "rolled back")
      }))

    it.effect("workJob keeps attempted_by to River's last 100 entries, as a fetch does", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(Email, { to: "c@x" })
        const earlier = Array.from({ length: 100 }, (_, i) => `client_${i}`)
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET attempted_by = $2 WHERE id = $1`, [job.id, earlier])
        const result = yield* Testing.workJob(EmailWorker, job.id, { schema })
        assert.strictEqual(result.job.attemptedBy.length, 100)
        assert.deepStrictEqual(result.job.attemptedBy.slice(0, 2), ["client_1", "client_2"])
        assert.strictEqual(result.job.attemptedBy.at(-1), "effect-river-testing")
      }))

    it.effect("work starts resumable jobs after a step", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const ran = yield* Ref.make<Array<string>>([])
        const worker = Worker.make(Other, () =>
          Effect.andThen(
            Resumable.step("one", Ref.update(ran, (xs) => [...xs, "one"])),
            Resumable.step("two", Ref.update(ran, (xs) => [...xs, "two"]))
          ))
        const result = yield* Testing.work(worker, {}, { schema, insert: { metadata: Testing.resumeAfter("one") } })
        assert.strictEqual(result.kind, "completed")
        assert.deepStrictEqual(yield* Ref.get(ran), ["two"])
      }))

    it.effect("assertInserted finds exactly one job and compares the given fields", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        const none = yield* Effect.flip(Testing.assertInserted(Email, { schema }))
        assert.include(none.message, "found none")
        yield* client.insert(Email, { to: "c@x" }, { queue: "mail", priority: 2, tags: ["welcome"] })
        const job = yield* Testing.assertInserted(Email, { schema, queue: "mail", priority: 2, tags: ["welcome"], args: { to: "c@x" } })
        assert.deepStrictEqual(job.args, { to: "c@x" })
        const wrong = yield* Effect.flip(Testing.assertInserted(Email, { schema, queue: "other", state: "scheduled" }))
        assert.include(wrong.message, `queue: expected "other", got "mail"`)
        assert.include(wrong.message, `state: expected "scheduled", got "available"`)
        yield* client.insert(Email, { to: "d@x" })
        const many = yield* Effect.flip(Testing.assertInserted(Email, { schema }))
        assert.include(many.message, "assertManyInserted")
      }))

    it.effect("assertInserted compares args by value, whatever order the database keeps their keys in", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        // jsonb stores keys shortest first: {"to","subject"} comes back as {"to","subject"}, while
        // the schema (and so the expectation) puts "subject" first.
        const Letter = JobKind.make("letter", { args: Schema.Struct({ subject: Schema.String, to: Schema.String }) })
        yield* client.insert(Letter, { subject: "hello", to: "e@x" })
        const job = yield* Testing.assertInserted(Letter, { schema, args: { subject: "hello", to: "e@x" } })
        assert.deepStrictEqual(job.args, { subject: "hello", to: "e@x" })
        const wrong = yield* Effect.flip(Testing.assertInserted(Letter, { schema, args: { subject: "hello", to: "f@x" } }))
        assert.include(wrong.message, "args: expected")
      }))

    it.effect("assertNotInserted and assertManyInserted", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        yield* Testing.assertNotInserted(Email, { schema })
        yield* client.insertMany([Email.of({ to: "1@x" }), Other.of({}), Email.of({ to: "2@x" }, { priority: 3 })])
        const error = yield* Effect.flip(Testing.assertNotInserted(Email, { schema }))
        assert.include(error.message, "found 2")
        yield* Testing.assertNotInserted(Email, { schema, priority: 4 })
        const jobs = yield* Testing.assertManyInserted([Email, Other, { kind: Email, expect: { priority: 3 } }], { schema })
        assert.strictEqual(jobs.length, 3)
        const order = yield* Effect.flip(Testing.assertManyInserted([Other, Email, Email], { schema }))
        assert.include(order.message, "expected jobs of kinds [other, email, email], found [email, other, email]")
        const fields = yield* Effect.flip(Testing.assertManyInserted([Email, Other, { kind: Email, expect: { priority: 1 } }], { schema }))
        assert.include(fields.message, "priority: expected 1, got 3")
      }))

    it.effect("assertions see the caller's transaction; rollback undoes it", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const client = yield* Client.make({ schema })
        const inside = yield* Testing.rollback(Effect.gen(function*() {
          yield* client.insert(Email, { to: "tx@x" })
          return yield* Testing.assertInserted(Email, { schema })
        }))
        assert.deepStrictEqual(inside.args, { to: "tx@x" })
        yield* Testing.assertNotInserted(Email, { schema })
      }))

    it.effect("a TestClock runner: retries without real waiting", () =>
      Effect.gen(function*() {
        const schema = yield* Testing.freshSchema()
        const attempts = yield* Ref.make(0)
        const flaky = Worker.make(Email, () =>
          Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (n) => n < 3 ? Effect.fail("flaky") : Effect.void))
        const { client, events } = yield* Testing.runner({ schema, queues: { default: { maxWorkers: 1 } }, workers: [flaky] })
        yield* client.insert(Email, { to: "r@x" })
        const { event, moved } = yield* Testing.advanceUntil(events, (e) => e.kind === "completed")
        assert.strictEqual(event.job.attempt, 3)
        assert.isAtLeast(moved, 16_000 * 0.9 + 1_000 * 0.9)
        assert.strictEqual(yield* Ref.get(attempts), 3)
        yield* TestClock.adjust(0)
      }))
  })
})
