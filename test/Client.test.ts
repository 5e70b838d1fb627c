import { assert, describe, it } from "@effect/vitest"
import { PgClient, type PgConnection } from "@effect/sql-pg"
import { Effect, Exit, Fiber, Queue, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidArgs, InvalidOptions, JobNotFound, JobRunning } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import { freshDatabase } from "./utils/db.ts"
import { clientOnFreshSchema, countJobs } from "./utils/river.ts"

const SendEmail = JobKind.make("send_email", {
  args: Schema.Struct({
    to: Schema.String.check(Schema.isPattern(/@/)),
    subject: Schema.String,
    sendAt: Schema.optional(Schema.DateTimeUtcFromString)
  })
})

const Resize = JobKind.make("resize_image", {
  args: Schema.Struct({ path: Schema.String, width: Schema.Int }),
  options: { queue: "images", priority: 3, maxAttempts: 5, tags: ["media"] }
})

const T0 = Date.parse("2030-01-02T03:04:05.678Z")

/** Takes notifications until (and excluding) the sentinel payload, proving nothing else came first. */
const takeUntilSentinel = (queue: Queue.Dequeue<PgConnection.Notification, unknown>, sentinel: string) =>
  Effect.gen(function*() {
    const seen: Array<string> = []
    while (true) {
      const n = yield* Queue.take(queue)
      if (n.payload === sentinel) return seen
      seen.push(n.payload)
    }
  })

describe("Client", () => {
  it.layer(freshDatabase("client"))((it) => {
    it.effect("insert applies River's defaults and takes times from the Clock", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client } = yield* clientOnFreshSchema()
        const { job, skippedAsDuplicate } = yield* client.insert(SendEmail, { to: "a@example.com", subject: "hi" })
        assert.isFalse(skippedAsDuplicate)
        assert.strictEqual(typeof job.id, "bigint")
        assert.strictEqual(job.kind, "send_email")
        assert.strictEqual(job.state, "available")
        assert.strictEqual(job.queue, "default")
        assert.strictEqual(job.priority, 1)
        assert.strictEqual(job.maxAttempts, 25)
        assert.strictEqual(job.attempt, 0)
        assert.deepStrictEqual(job.tags, [])
        assert.deepStrictEqual(job.metadata, {})
        assert.deepStrictEqual(job.errors, [])
        assert.deepStrictEqual(job.args, { to: "a@example.com", subject: "hi" })
        assert.strictEqual(job.createdAt.getTime(), T0)
        assert.strictEqual(job.scheduledAt.getTime(), T0)
        assert.isNull(job.finalizedAt)
        const again = yield* client.get(job.id)
        assert.deepStrictEqual(again, job)
      }))

    it.effect("args are encoded through the schema", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        const { DateTime } = yield* Effect.promise(() => import("effect"))
        const sendAt = DateTime.makeUnsafe("2031-05-06T07:08:09.000Z")
        const { job } = yield* client.insert(SendEmail, { to: "b@example.com", subject: "s", sendAt })
        assert.deepStrictEqual(job.args, { to: "b@example.com", subject: "s", sendAt: "2031-05-06T07:08:09.000Z" })
      }))

    it.effect("values without a JSON form (bigint, Date) are stored in their canonical JSON form", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        const Big = JobKind.make("big", { args: Schema.Struct({ n: Schema.BigInt, at: Schema.Date }) })
        const { job } = yield* client.insert(Big, { n: 12345678901234567890n, at: new Date("2030-01-01T00:00:00.000Z") })
        assert.deepStrictEqual(job.args, { n: "12345678901234567890", at: "2030-01-01T00:00:00.000Z" })
        const decoded = Big.decode(job.args)
        assert.deepStrictEqual(decoded._tag === "Success" ? decoded.success : undefined, {
          n: 12345678901234567890n,
          at: new Date("2030-01-01T00:00:00.000Z")
        })
      }))

    it.effect("option precedence: insert > kind > client defaults", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema({
          defaults: { queue: "fallback", priority: 2, maxAttempts: 9, tags: ["client_tag"], metadata: { from: "client" } }
        })
        const byKind = yield* client.insert(Resize, { path: "/a.png", width: 10 })
        assert.strictEqual(byKind.job.queue, "images")
        assert.strictEqual(byKind.job.priority, 3)
        assert.strictEqual(byKind.job.maxAttempts, 5)
        assert.deepStrictEqual(byKind.job.tags, ["media"])
        assert.deepStrictEqual(byKind.job.metadata, { from: "client" })
        const byInsert = yield* client.insert(Resize, { path: "/b.png", width: 10 }, {
          queue: "urgent",
          priority: 1,
          tags: ["a_b", "c-d"],
          metadata: { from: "insert" }
        })
        assert.strictEqual(byInsert.job.queue, "urgent")
        assert.strictEqual(byInsert.job.priority, 1)
        assert.strictEqual(byInsert.job.maxAttempts, 5)
        assert.deepStrictEqual(byInsert.job.tags, ["a_b", "c-d"])
        assert.deepStrictEqual(byInsert.job.metadata, { from: "insert" })
        const byClient = yield* client.insert(SendEmail, { to: "c@example.com", subject: "x" })
        assert.strictEqual(byClient.job.queue, "fallback")
        assert.strictEqual(byClient.job.priority, 2)
        assert.strictEqual(byClient.job.maxAttempts, 9)
        assert.deepStrictEqual(byClient.job.tags, ["client_tag"])
      }))

    it.effect("scheduledAt inserts scheduled (even in the past); pending inserts pending", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client } = yield* clientOnFreshSchema()
        const past = new Date(T0 - 60_000)
        const a = yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { scheduledAt: past })
        assert.strictEqual(a.job.state, "scheduled")
        assert.strictEqual(a.job.scheduledAt.getTime(), past.getTime())
        const b = yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { pending: true, scheduledAt: past })
        assert.strictEqual(b.job.state, "pending")
      }))

    it.effect("invalid args fail with InvalidArgs naming the field, and write nothing", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const error = yield* Effect.flip(client.insert(SendEmail, { to: "not-an-email", subject: "s" }))
        assert.instanceOf(error, InvalidArgs)
        assert.strictEqual(error.kind, "send_email")
        assert.include(error.message, `["to"]`)
        const untyped = yield* Effect.flip(client.insert(Resize, { path: 1, width: 1.5 } as never))
        assert.instanceOf(untyped, InvalidArgs)
        assert.include(untyped.issues, `["path"]`)
        assert.include(untyped.issues, `["width"]`)
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("args jsonb cannot store, and extra args keys, fail with InvalidArgs naming the field, before any SQL", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const Note = JobKind.make("note", {
          args: Schema.Struct({ text: Schema.String, tags: Schema.Array(Schema.String), extra: Schema.Record(Schema.String, Schema.String) })
        })
        const cases: ReadonlyArray<readonly [unknown, RegExp]> = [
          [{ text: "a\u0000b", tags: [], extra: {} }, /\["text"\].*U\+0000/],
          [{ text: "ok", tags: ["x", "😀 truncated".slice(1)], extra: {} }, /\["tags"\]\[1\].*lone UTF-16 surrogate/],
          [{ text: "ok", tags: [], extra: { "k\u0000": "v" } }, /\["extra"\].*key.*U\+0000/],
          [{ text: "ok", tags: [], extra: {}, colour: "red" }, /\["colour"\]/]
        ]
        for (const [args, pattern] of cases) {
          const error = yield* Effect.flip(client.insert(Note, args as never))
          assert.instanceOf(error, InvalidArgs, String(pattern))
          assert.match(error.message, pattern)
        }
        // In a batch: the request's index is named, and nothing of the batch is written.
        const batch = yield* Effect.flip(client.insertMany([
          Note.of({ text: "fine", tags: [], extra: {} }),
          Note.of({ text: "bad\u0000", tags: [], extra: {} })
        ]))
        assert.instanceOf(batch, InvalidArgs)
        assert.match(batch.message, /\[1\]/)
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("metadata jsonb cannot store and a scheduledAt PostgreSQL cannot store fail with InvalidOptions, before any SQL", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const args = { to: "a@x", subject: "s" }
        const nul = yield* Effect.flip(client.insert(SendEmail, args, { metadata: { note: "a\u0000" } }))
        assert.instanceOf(nul, InvalidOptions)
        assert.strictEqual((nul as InvalidOptions).field, "metadata.note")
        assert.include(nul.message, "U+0000")
        const lone = yield* Effect.flip(client.insertMany([
          SendEmail.of(args),
          SendEmail.of(args, { metadata: { list: [{ "a b": "\udc00" }] } })
        ]))
        assert.strictEqual((lone as InvalidOptions).field, `[1].metadata.list[0]["a b"]`)
        const ancient = yield* Effect.flip(client.insert(SendEmail, args, { scheduledAt: new Date(Date.UTC(-5000, 0, 1)) }))
        assert.instanceOf(ancient, InvalidOptions)
        assert.strictEqual((ancient as InvalidOptions).field, "scheduledAt")
        assert.include(ancient.message, "4713 BC")
        // The first instant PostgreSQL can store is accepted.
        const first = yield* client.insert(SendEmail, args, { scheduledAt: new Date(Date.UTC(-4713, 10, 24)) })
        assert.strictEqual(first.job.scheduledAt.getTime(), Date.UTC(-4713, 10, 24))
        assert.strictEqual(yield* countJobs(schema), 1)
      }))

    it.effect("a job id outside int64 is InvalidOptions for get, retry, delete, cancel and list, before any SQL", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        for (const id of [2n ** 63n, -(2n ** 63n) - 1n]) {
          for (const operation of [client.get, client.retry, client.delete, client.cancel]) {
            const error = yield* Effect.flip(operation(id))
            assert.instanceOf(error, InvalidOptions, `${id}`)
            assert.strictEqual((error as InvalidOptions).field, "id")
            assert.include(error.message, "64-bit")
          }
          const listed = yield* Effect.flip(client.list({ ids: [1n, id] }))
          assert.strictEqual((listed as InvalidOptions).field, "ids[1]")
        }
        const edge = yield* Effect.flip(client.get(2n ** 63n - 1n))
        assert.instanceOf(edge, JobNotFound, "the largest int64 is a valid id")
      }))

    const title = (options: unknown): string => {
      try {
        return JSON.stringify(options, (_, v) => typeof v === "bigint" ? `${v}n` : v)?.slice(0, 40) ?? ""
      } catch {
        return "(cyclic)"
      }
    }
    const cyclic = () => {
      const o: Record<string, unknown> = { n: 1 }
      o.self = o
      return o
    }
    const badOptions: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
      ["queue", { queue: "Has Spaces" }, "lowercase"],
      ["queue", { queue: "" }, "1 to 64"],
      ["queue", { queue: "a".repeat(65) }, "1 to 64"],
      ["queue", { queue: "a__b" }, "lowercase"],
      ["priority", { priority: 0 }, "1 (highest) to 4"],
      ["priority", { priority: 5 }, "1 (highest) to 4"],
      ["priority", { priority: 1.5 }, "1 (highest) to 4"],
      ["maxAttempts", { maxAttempts: 0 }, "1 to 32767"],
      ["maxAttempts", { maxAttempts: 40_000 }, "1 to 32767"],
      ["tags[1]", { tags: ["ok_tag", "no spaces"] }, "3 to 255"],
      ["tags[0]", { tags: ["ab"] }, "3 to 255"],
      ["tags[0]", { tags: ["a,b,c"] }, "3 to 255"],
      ["tags[0]", { tags: ["x".repeat(256)] }, "3 to 255"],
      ["metadata", { metadata: [1, 2] }, "JSON object"],
      ["metadata", { metadata: null }, "JSON object"],
      ["metadata", { metadata: cyclic() }, "serializable"],
      ["scheduledAt", { scheduledAt: new Date("nope") }, "valid Date"],
      ["pending", { pending: "yes" }, "boolean"],
      ["priorty", { priorty: 2 }, "did you mean \"priority\""]
    ]
    for (const [field, options, rule] of badOptions) {
      it.effect(`invalid option ${field} ${title(options)} is rejected before SQL`, () =>
        Effect.gen(function*() {
          const { client, schema } = yield* clientOnFreshSchema()
          const error = yield* Effect.flip(client.insert(SendEmail, { to: "a@x", subject: "s" }, options as never))
          assert.instanceOf(error, InvalidOptions)
          assert.strictEqual((error as InvalidOptions).field, field)
          assert.include(error.message, rule)
          assert.strictEqual(yield* countJobs(schema), 0)
        }))
    }

    it.effect("a valid queue name may use single _, - or | separators", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        for (const queue of ["a", "a1_b2", "x-y", "a|b", "q".repeat(64)]) {
          const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { queue })
          assert.strictEqual(job.queue, queue)
        }
      }))

    it.effect("invalid kind names, kind defaults, client defaults and schema names are typed errors", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const badKind = JobKind.make("has space", { args: Schema.Struct({}) })
        const e1 = yield* Effect.flip(client.insert(badKind, {}))
        assert.instanceOf(e1, InvalidOptions)
        assert.strictEqual((e1 as InvalidOptions).field, "kind")
        const badDefaults = JobKind.make("fine_kind", { args: Schema.Struct({}), options: { priority: 9 } })
        const e2 = yield* Effect.flip(client.insert(badDefaults, {}))
        assert.strictEqual((e2 as InvalidOptions).field, "kind options.priority")
        const e3 = yield* Effect.flip(Client.make({ defaults: { queue: "BAD" } }))
        assert.strictEqual((e3 as InvalidOptions).field, "defaults.queue")
        const e4 = yield* Effect.flip(Client.make({ schema: "bad-schema" }))
        assert.strictEqual((e4 as InvalidOptions).field, "schema")
        const e5 = yield* Effect.flip(Client.make({ schema: "s".repeat(47) }))
        assert.include(e5.message, "at most 46")
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("insertMany inserts a mixed batch in one statement, results in input order", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const requests = [
          SendEmail.of({ to: "1@x", subject: "one" }),
          Resize.of({ path: "/2", width: 2 }, { priority: 4 }),
          SendEmail.of({ to: "3@x", subject: "three" }, { queue: "mail", tags: ["t_1"] })
        ]
        const results = yield* client.insertMany(requests)
        assert.deepStrictEqual(results.map((r) => r.job.kind), ["send_email", "resize_image", "send_email"])
        assert.deepStrictEqual(results.map((r) => r.job.queue), ["default", "images", "mail"])
        assert.deepStrictEqual(results.map((r) => r.job.priority), [1, 4, 1])
        assert.deepStrictEqual(results[2]!.job.tags, ["t_1"])
        const sql = yield* SqlClient.SqlClient
        const xmins = yield* sql.unsafe<{ n: number }>(`SELECT count(DISTINCT xmin::text)::int AS n FROM "${schema}".river_job`)
        assert.strictEqual(xmins[0]!.n, 1, "all rows written by one transaction")
        // one bad request anywhere rejects the whole batch before SQL, naming its index
        const error = yield* Effect.flip(client.insertMany([
          SendEmail.of({ to: "4@x", subject: "s" }),
          SendEmail.of({ to: "5@x", subject: "s" }, { priority: 7 })
        ]))
        assert.strictEqual((error as InvalidOptions).field, "[1].priority")
        assert.strictEqual(yield* countJobs(schema), 3)
        assert.deepStrictEqual(yield* client.insertMany([]), [])
      }))

    it.effect("insertManyFast inserts like insertMany, returns the count, notifies, validates before SQL and skips unique duplicates", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const pg = yield* PgClient.PgClient
        const notifications = yield* pg.listen(`${schema}.river_insert`)
        const inserted = yield* client.insertManyFast([
          SendEmail.of({ to: "1@x", subject: "one" }),
          Resize.of({ path: "/2", width: 2 }, { priority: 4 }),
          SendEmail.of({ to: "3@x", subject: "three" }, { queue: "mail", tags: ["t_1"] })
        ])
        assert.strictEqual(inserted, 3)
        const { jobs } = yield* client.list({ orderBy: "id", order: "asc" })
        assert.deepStrictEqual(jobs.map((j) => [j.kind, j.queue, j.priority, j.maxAttempts, j.tags]), [
          ["send_email", "default", 1, 25, []],
          ["resize_image", "images", 4, 5, ["media"]],
          ["send_email", "mail", 1, 25, ["t_1"]]
        ])
        assert.deepStrictEqual(jobs.map((j) => j.args), [{ to: "1@x", subject: "one" }, { path: "/2", width: 2 }, { to: "3@x", subject: "three" }])
        const payloads = new Set<string>()
        for (let i = 0; i < 3; i++) payloads.add((yield* Queue.take(notifications)).payload)
        assert.deepStrictEqual([...payloads].sort(), [`{"queue": "default"}`, `{"queue": "images"}`, `{"queue": "mail"}`])
        // Bad input fails the whole batch before SQL, naming its index.
        const error = yield* Effect.flip(client.insertManyFast([
          SendEmail.of({ to: "4@x", subject: "s" }),
          SendEmail.of({ to: "not an address", subject: "s" })
        ]))
        assert.instanceOf(error, InvalidArgs)
        assert.strictEqual(yield* countJobs(schema), 3)
        // Unique jobs: a key already held, or seen earlier in the batch, is skipped and not counted.
        const unique = { unique: { byArgs: true } } as const
        assert.strictEqual(yield* client.insertManyFast([SendEmail.of({ to: "u@x", subject: "u" }, unique)]), 1)
        assert.strictEqual(
          yield* client.insertManyFast([
            SendEmail.of({ to: "u@x", subject: "u" }, unique),
            SendEmail.of({ to: "v@x", subject: "v" }, unique),
            SendEmail.of({ to: "v@x", subject: "v" }, unique)
          ]),
          1
        )
        assert.strictEqual(yield* countJobs(schema), 5)
        assert.strictEqual(yield* client.insertManyFast([]), 0)
      }))

    it.effect("insert notification: River's channel and payload, sent inside the transaction", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const pg = yield* PgClient.PgClient
        const notifications = yield* pg.listen(`${schema}.river_insert`)
        yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { queue: "q_one" })
        const first = yield* Queue.take(notifications)
        assert.strictEqual(first.channel, `${schema}.river_insert`)
        assert.strictEqual(first.payload, `{"queue": "q_one"}`)
        assert.deepStrictEqual(JSON.parse(first.payload), { queue: "q_one" })
      }))

    it.effect("an insert inside a rolled-back transaction leaves no job and no notification", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const notifications = yield* pg.listen(`${schema}.river_insert`)
        const exit = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { queue: "rolled_back" })
            assert.strictEqual(yield* countJobs(schema), 1, "visible inside the transaction")
            return yield* Effect.fail("abort" as const)
          })
        ).pipe(Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* countJobs(schema), 0)
        // Notifications arrive in commit order: anything from the rolled-back insert would come first.
        yield* sql.unsafe(`SELECT pg_notify($1, 'sentinel')`, [`${schema}.river_insert`])
        assert.deepStrictEqual(yield* takeUntilSentinel(notifications, "sentinel"), [])
        // and a committed transaction delivers it on commit
        yield* sql.withTransaction(client.insert(SendEmail, { to: "a@x", subject: "s" }, { queue: "committed" }))
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "committed"}`)
      }))

    it.effect("insert notifications: at most one per queue per 100 ms, plus one trailing notification", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const channel = `${schema}.river_insert`
        const notifications = yield* pg.listen(channel)
        const args = { to: "a@x", subject: "s" }
        yield* client.insert(SendEmail, args)
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "default"}`)
        yield* TestClock.adjust("5 millis")
        yield* client.insert(SendEmail, args) // inside the window, no quiet period: suppressed, trailing scheduled
        yield* client.insert(SendEmail, args) // also suppressed; shares the trailing notification
        yield* client.insert(SendEmail, args, { queue: "other" }) // other queue: own limit
        yield* client.insert(SendEmail, args, { scheduledAt: new Date(T0 + 3_600_000) }) // scheduled: none
        yield* sql.unsafe(`SELECT pg_notify($1, 'sentinel-1')`, [channel])
        assert.deepStrictEqual(yield* takeUntilSentinel(notifications, "sentinel-1"), [`{"queue": "other"}`])
        yield* TestClock.adjust("95 millis") // end of the window: the trailing notification goes out
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "default"}`)
        yield* sql.unsafe(`SELECT pg_notify($1, 'sentinel-2')`, [channel])
        assert.deepStrictEqual(yield* takeUntilSentinel(notifications, "sentinel-2"), [])
        yield* TestClock.adjust("200 millis")
        yield* client.insert(SendEmail, args) // window over: sent in the statement again
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "default"}`)
      }))

    it.effect("insert notifications: an insert after a quiet period (a tenth of the cooldown) notifies at once, a burst does not, pauses or not", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const channel = `${schema}.river_insert`
        const notifications = yield* pg.listen(channel)
        const args = { to: "a@x", subject: "s" }
        // A trickle, one insert every 20 ms (W2's spacing): each notifies in its own statement,
        // inside the 100 ms window.
        for (let i = 0; i < 4; i++) {
          if (i > 0) yield* TestClock.adjust("20 millis")
          yield* client.insert(SendEmail, args)
          yield* sql.unsafe(`SELECT pg_notify($1, $2)`, [channel, `sentinel-trickle-${i}`])
          assert.deepStrictEqual(yield* takeUntilSentinel(notifications, `sentinel-trickle-${i}`), [`{"queue": "default"}`])
        }
        // A burst, inserts 2 ms apart after a quiet period: the first notifies, the rest wait for
        // the window's end (one trailing notification).
        yield* TestClock.adjust("20 millis")
        yield* client.insert(SendEmail, args)
        for (let i = 0; i < 5; i++) {
          yield* TestClock.adjust("2 millis")
          yield* client.insert(SendEmail, args)
        }
        // A pause inside the burst while inserts are held back: still held (the trailing
        // notification covers it), so pauses do not multiply a burst's notifications.
        yield* TestClock.adjust("15 millis")
        yield* client.insert(SendEmail, args)
        yield* sql.unsafe(`SELECT pg_notify($1, 'sentinel-burst')`, [channel])
        assert.deepStrictEqual(yield* takeUntilSentinel(notifications, "sentinel-burst"), [`{"queue": "default"}`])
        yield* TestClock.adjust("100 millis")
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "default"}`)
      }))

    it.effect("get of a missing id is JobNotFound; ids keep 64-bit precision", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const missing = yield* Effect.flip(client.get(42n))
        assert.instanceOf(missing, JobNotFound)
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`ALTER SEQUENCE "${schema}".river_job_id_seq RESTART WITH 9007199254740993`)
        const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" })
        assert.strictEqual(job.id, 9007199254740993n)
        assert.strictEqual((yield* client.get(9007199254740993n)).id, 9007199254740993n)
        const listed = yield* client.list({ ids: [9007199254740993n] })
        assert.deepStrictEqual(listed.jobs.map((j) => j.id), [9007199254740993n])
        const wrong = yield* Effect.flip(client.get("1" as never))
        assert.instanceOf(wrong, InvalidOptions)
      }))

    it.effect("list filters by states, kinds, queues, priorities, ids, tags and metadata", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const r = yield* client.insertMany([
          SendEmail.of({ to: "1@x", subject: "s" }, { tags: ["red", "big"], metadata: { tenant: "a" } }),
          SendEmail.of({ to: "2@x", subject: "s" }, { queue: "mail", priority: 2, tags: ["red"] }),
          Resize.of({ path: "/3", width: 3 }, { tags: ["blue"], metadata: { tenant: "b" } }),
          Resize.of({ path: "/4", width: 4 }, { pending: true })
        ])
        const [a, b, c, d] = r.map((x) => x.job.id)
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'completed', finalized_at = $1 WHERE id = $2`, [new Date(), b])
        const ids = (params: Client.ListParams) => Effect.map(client.list(params), (page) => page.jobs.map((j) => j.id))
        assert.deepStrictEqual(yield* ids({}), [a, b, c, d])
        assert.deepStrictEqual(yield* ids({ states: ["completed"] }), [b])
        assert.deepStrictEqual(yield* ids({ states: ["available", "pending"] }), [a, c, d])
        assert.deepStrictEqual(yield* ids({ kinds: ["resize_image"] }), [c, d])
        assert.deepStrictEqual(yield* ids({ queues: ["mail", "images"] }), [b, c, d])
        assert.deepStrictEqual(yield* ids({ priorities: [2] }), [b])
        assert.deepStrictEqual(yield* ids({ ids: [d!, a!] }), [a, d])
        assert.deepStrictEqual(yield* ids({ tagsAny: ["blue", "big"] }), [a, c])
        assert.deepStrictEqual(yield* ids({ tagsAll: ["red", "big"] }), [a])
        assert.deepStrictEqual(yield* ids({ metadata: { tenant: "b" } }), [c])
        assert.deepStrictEqual(yield* ids({ kinds: ["send_email"], tagsAny: ["red"], priorities: [1] }), [a])
        assert.deepStrictEqual(yield* ids({ order: "desc" }), [d, c, b, a])
        assert.deepStrictEqual(yield* ids({ orderBy: "finalizedAt" }), [b])
        assert.deepStrictEqual(yield* ids({ states: [] }), [])
      }))

    it.effect("list paginates with cursors, keeping microsecond order on timestamps", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const inserted = yield* client.insertMany(
          Array.from({ length: 7 }, (_, i) => SendEmail.of({ to: `${i}@x`, subject: "s" }))
        )
        const all = inserted.map((r) => r.job.id)
        // Scheduled times that differ only in microseconds, out of id order.
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET scheduled_at = '2030-01-01 00:00:00+00'::timestamptz + ((id * 37) % 7) * interval '1 microsecond'`
        )
        const expectedBySchedule = [...all].sort((x, y) => Number((x * 37n) % 7n - (y * 37n) % 7n) || Number(x - y))
        for (const [orderBy, order, expected] of [
          ["id", "asc", all],
          ["id", "desc", [...all].reverse()],
          ["scheduledAt", "asc", expectedBySchedule],
          ["scheduledAt", "desc", [...expectedBySchedule].reverse()]
        ] as const) {
          const seen: Array<bigint> = []
          let after: string | undefined
          let pages = 0
          do {
            const page = yield* client.list({ orderBy, order, limit: 3, ...(after === undefined ? {} : { after }) })
            seen.push(...page.jobs.map((j) => j.id))
            after = page.next
            pages++
          } while (after !== undefined)
          assert.deepStrictEqual(seen, [...expected], `${orderBy} ${order}`)
          assert.strictEqual(pages, 3)
        }
      }))

    it.effect("list rejects bad parameters before SQL", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        const cases: ReadonlyArray<readonly [Client.ListParams, string]> = [
          [{ limit: 0 }, "limit"],
          [{ limit: 10_001 }, "limit"],
          [{ states: ["bogus" as never] }, "states[0]"],
          [{ priorities: [5] }, "priorities[0]"],
          [{ orderBy: "kind" as never }, "orderBy"],
          [{ order: "up" as never }, "order"],
          [{ after: "garbage" }, "after"],
          [{ ids: [1 as never] }, "ids[0]"]
        ]
        for (const [params, field] of cases) {
          const error = yield* Effect.flip(client.list(params))
          assert.strictEqual((error as InvalidOptions).field, field)
        }
        const page = yield* client.list({ limit: 1 })
        assert.deepStrictEqual(page.jobs, [])
        assert.isUndefined(page.next)
      }))

    it.effect("cursor made for one order is refused for another", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        yield* client.insertMany([SendEmail.of({ to: "1@x", subject: "s" }), SendEmail.of({ to: "2@x", subject: "s" })])
        const page = yield* client.list({ limit: 1 })
        assert.isDefined(page.next)
        const error = yield* Effect.flip(client.list({ orderBy: "scheduledAt", after: page.next! }))
        assert.strictEqual((error as InvalidOptions).field, "after")
      }))

    it.effect("retry follows River: finalized -> available now, attempts kept, max_attempts raised when used up", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { maxAttempts: 3 })
        const errors = [JSON.stringify({ at: "2030-01-01T00:00:00Z", attempt: 3, error: "boom", trace: "" })]
        yield* sql.unsafe(
          `UPDATE "${schema}".river_job SET state = 'discarded', attempt = 3, finalized_at = $2, errors = $3::jsonb[] WHERE id = $1`,
          [job.id, new Date(T0), errors]
        )
        yield* TestClock.adjust("1 minute")
        const retried = yield* client.retry(job.id)
        assert.strictEqual(retried.state, "available")
        assert.isNull(retried.finalizedAt)
        assert.strictEqual(retried.attempt, 3)
        assert.strictEqual(retried.maxAttempts, 4)
        assert.strictEqual(retried.errors.length, 1)
        assert.strictEqual(retried.scheduledAt.getTime(), T0 + 60_000)
        // already available and due: unchanged
        yield* TestClock.adjust("1 minute")
        const same = yield* client.retry(job.id)
        assert.strictEqual(same.scheduledAt.getTime(), T0 + 60_000)
        assert.strictEqual(same.maxAttempts, 4)
        // running: refused, unchanged
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'running' WHERE id = $1`, [job.id])
        const running = yield* Effect.flip(client.retry(job.id))
        assert.instanceOf(running, JobRunning)
        assert.strictEqual((yield* client.get(job.id)).state, "running")
        assert.instanceOf(yield* Effect.flip(client.retry(999_999n)), JobNotFound)
      }))

    it.effect("retry of a scheduled job makes it available now and notifies its queue", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client, schema } = yield* clientOnFreshSchema()
        const pg = yield* PgClient.PgClient
        const notifications = yield* pg.listen(`${schema}.river_insert`)
        const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, {
          queue: "later",
          scheduledAt: new Date(T0 + 86_400_000)
        })
        const retried = yield* client.retry(job.id)
        assert.strictEqual(retried.state, "available")
        assert.strictEqual(retried.scheduledAt.getTime(), T0)
        assert.strictEqual(retried.maxAttempts, 25)
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "later"}`)
      }))

    it.effect("delete removes a job that is not running and returns it", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" })
        const other = yield* client.insert(SendEmail, { to: "b@x", subject: "s" })
        yield* sql.unsafe(`UPDATE "${schema}".river_job SET state = 'running' WHERE id = $1`, [other.job.id])
        const deleted = yield* client.delete(job.id)
        assert.strictEqual(deleted.id, job.id)
        assert.instanceOf(yield* Effect.flip(client.get(job.id)), JobNotFound)
        assert.instanceOf(yield* Effect.flip(client.delete(job.id)), JobNotFound)
        const running = yield* Effect.flip(client.delete(other.job.id))
        assert.instanceOf(running, JobRunning)
        assert.strictEqual(yield* countJobs(schema), 1)
      }))

    it.effect("operations join the caller's transaction", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const { job } = yield* client.insert(SendEmail, { to: "a@x", subject: "s" })
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* client.delete(job.id)
          assert.strictEqual(yield* countJobs(schema), 0)
          return yield* Effect.fail("rollback")
        })).pipe(Effect.ignore)
        assert.strictEqual((yield* client.get(job.id)).id, job.id)
      }))

    it.effect("a client without a schema uses the search path and current_schema() for channels", () =>
      Effect.gen(function*() {
        const { schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgClient.PgClient
        const notifications = yield* pg.listen(`${schema}.river_insert`)
        const client = yield* Client.make()
        const result = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql.unsafe(`SET LOCAL search_path TO "${schema}"`)
          return yield* client.insert(SendEmail, { to: "a@x", subject: "s" }, { queue: "via_path" })
        }))
        assert.strictEqual(result.job.queue, "via_path")
        assert.strictEqual(yield* countJobs(schema), 1)
        assert.strictEqual((yield* Queue.take(notifications)).payload, `{"queue": "via_path"}`)
      }))

    it.effect("the default client id follows River's format, to the microsecond", () =>
      Effect.sync(() => {
        const id = Client.defaultClientId("host.example.com", Date.parse("2024-05-06T07:08:09.123Z"))
        assert.strictEqual(id, "host_example_com_2024_05_06T07_08_09_123000")
        assert.strictEqual(
          Client.defaultClientId("h", Date.parse("2024-05-06T07:08:09.123Z") + 0.456),
          "h_2024_05_06T07_08_09_123456"
        )
        // River's defaultClientIDWithHost: an empty host name is unknown_host; at most 60 characters.
        assert.strictEqual(Client.defaultClientId("", 0), "unknown_host_1970_01_01T00_00_00_000000")
        assert.strictEqual(Client.defaultClientId("a.".repeat(40), 0), `${"a_".repeat(30)}_1970_01_01T00_00_00_000000`)
      }))

    it.effect("clients made at the same Clock time get different default ids", () =>
      Effect.gen(function*() {
        // it.effect runs on TestClock: the clock does not move between the two.
        const { client: a } = yield* clientOnFreshSchema()
        const { client: b } = yield* clientOnFreshSchema()
        assert.notStrictEqual(a.id, b.id)
        for (const id of [a.id, b.id]) assert.match(id, /^.+_\d{4}_\d{2}_\d{2}T\d{2}_\d{2}_\d{2}_\d{6}$/)
        assert.strictEqual(a.id.slice(0, -6), b.id.slice(0, -6), "the same host and time but for the microseconds")
      }))

    it.effect("an interrupted trailing notification does not leak (layer closes cleanly)", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
          const { client } = yield* clientOnFreshSchema()
          yield* client.insert(SendEmail, { to: "a@x", subject: "s" })
          yield* client.insert(SendEmail, { to: "a@x", subject: "s" })
        })))
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isSuccess(exit))
      }))
  })
})
