import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Client from "../src/Client.ts"
import { InvalidOptions } from "../src/Errors.ts"
import { type InsertOptions, type UniqueOptions, UniqueStatesDefault } from "../src/InsertOptions.ts"
import type { JobState } from "../src/Job.ts"
import * as JobKind from "../src/JobKind.ts"
import { freshDatabase } from "./utils/db.ts"
import { clientOnFreshSchema, countJobs } from "./utils/river.ts"

const Email = JobKind.make("unique_email", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String, traceId: Schema.optional(Schema.String) })
})
const Sms = JobKind.make("unique_sms", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String })
})
const Report = JobKind.make("unique_report", {
  args: Schema.Struct({ day: Schema.String }),
  options: { unique: { byArgs: true } }
})

const T0 = Date.parse("2030-01-02T03:04:05.000Z")
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")
const hex = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString("hex"))

/** Moves a job to a state directly (as a runner or the cleaner would). */
const setState = (schema: string, id: bigint, state: JobState) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const finalized = state === "cancelled" || state === "completed" || state === "discarded"
    yield* sql.unsafe(
      `UPDATE "${schema}".river_job SET state = $2::text::"${schema}".river_job_state,
        finalized_at = CASE WHEN $3 THEN now() ELSE NULL END WHERE id = $1`,
      [id, state, finalized]
    )
  })

describe("Unique jobs", () => {
  it.layer(freshDatabase("unique"))((it) => {
    it.effect("byArgs (all keys): a duplicate returns the existing job; other args insert", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true }
        const first = yield* client.insert(Email, { to: "a@x", subject: "hi" }, { unique })
        assert.isFalse(first.skippedAsDuplicate)
        const again = yield* client.insert(Email, { subject: "hi", to: "a@x" }, { unique })
        assert.isTrue(again.skippedAsDuplicate)
        assert.strictEqual(again.job.id, first.job.id)
        assert.deepStrictEqual(again.job, first.job)
        const other = yield* client.insert(Email, { to: "b@x", subject: "hi" }, { unique })
        assert.isFalse(other.skippedAsDuplicate)
        assert.notStrictEqual(other.job.id, first.job.id)
        // River's key and states on the row.
        assert.strictEqual(hex(first.job.uniqueKey), sha256(`&kind=unique_email&args={"subject":"hi","to":"a@x"}`))
        assert.deepStrictEqual(first.job.uniqueStates, ["available", "completed", "pending", "retryable", "running", "scheduled"])
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql.unsafe<{ bits: string; n: number }>(
          `SELECT unique_states::text AS bits, length(unique_key) AS n FROM "${schema}".river_job WHERE id = $1`,
          [first.job.id]
        )
        assert.deepStrictEqual(row, { bits: "11110101", n: 32 })
        // Not unique: no key, duplicates are inserted.
        const plain1 = yield* client.insert(Email, { to: "a@x", subject: "hi" })
        const plain2 = yield* client.insert(Email, { to: "a@x", subject: "hi" })
        assert.isNull(plain1.job.uniqueKey)
        assert.isNull(plain1.job.uniqueStates)
        assert.notStrictEqual(plain1.job.id, plain2.job.id)
        assert.strictEqual(yield* countJobs(schema), 4)
      }))

    it.effect("byArgs with nested structs and maps: the row's key is byte-identical to River's", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        // Go: type SelectedArgs struct { Inner Inner `json:"inner" river:"unique"`;
        //   Map map[string]int `json:"map" river:"unique"`; Skip string `json:"skip"` }
        // with Inner { Z int `json:"z"`; M int `json:"m"`; A string `json:"a"` } — River v0.51.2's
        // dbunique.UniqueKey gives 177cbf26… for the args below.
        const Selected = JobKind.make("selected_args", {
          args: Schema.Struct({
            inner: Schema.Struct({ z: Schema.Number, m: Schema.Number, a: Schema.String }),
            map: Schema.Record(Schema.String, Schema.Number),
            skip: Schema.String
          })
        })
        const { job } = yield* client.insert(
          Selected,
          { inner: { a: "a", m: 2, z: 1 }, map: { "10": 1, "9": 2 }, skip: "x" },
          { unique: { byArgs: ["inner", "map"] } }
        )
        assert.strictEqual(hex(job.uniqueKey), "177cbf26cef31c5b0cae51012130a7bde548b92e71b26efd880f00eace1e435f")
        const again = yield* client.insert(
          Selected,
          { skip: "y", map: { "9": 2, "10": 1 }, inner: { z: 1, a: "a", m: 2 } },
          { unique: { byArgs: ["inner", "map"] } }
        )
        assert.isTrue(again.skippedAsDuplicate)
      }))

    it.effect("byArgs (chosen keys): only those keys count", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: ["to", "subject"] }
        const first = yield* client.insert(Email, { to: "a@x", subject: "hi", traceId: "t1" }, { unique })
        const sameChosen = yield* client.insert(Email, { to: "a@x", subject: "hi", traceId: "t2" }, { unique })
        assert.isTrue(sameChosen.skippedAsDuplicate)
        assert.strictEqual(sameChosen.job.id, first.job.id)
        assert.deepStrictEqual(sameChosen.job.args, { to: "a@x", subject: "hi", traceId: "t1" })
        const otherChosen = yield* client.insert(Email, { to: "a@x", subject: "bye", traceId: "t1" }, { unique })
        assert.isFalse(otherChosen.skippedAsDuplicate)
        assert.strictEqual(hex(first.job.uniqueKey), sha256(`&kind=unique_email&args={"subject":"hi","to":"a@x"}`))
        assert.strictEqual(yield* countJobs(schema), 2)
      }))

    it.effect("byQueue: one per queue", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byQueue: true }
        const a = yield* client.insert(Email, { to: "a@x", subject: "1" }, { unique, queue: "one" })
        const b = yield* client.insert(Email, { to: "b@x", subject: "2" }, { unique, queue: "one" })
        const c = yield* client.insert(Email, { to: "a@x", subject: "1" }, { unique, queue: "two" })
        assert.isTrue(b.skippedAsDuplicate)
        assert.strictEqual(b.job.id, a.job.id)
        assert.isFalse(c.skippedAsDuplicate)
        assert.strictEqual(hex(c.job.uniqueKey), sha256("&kind=unique_email&queue=two"))
        // Another kind is another key.
        const sms = yield* client.insert(Sms, { to: "a@x", subject: "1" }, { unique, queue: "one" })
        assert.isFalse(sms.skippedAsDuplicate)
      }))

    it.effect("byPeriod: one per period of the Clock's time (or scheduledAt)", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byPeriod: "1 hour" }
        const first = yield* client.insert(Email, { to: "a@x", subject: "1" }, { unique })
        assert.strictEqual(hex(first.job.uniqueKey), sha256("&kind=unique_email&period=2030-01-02T03:00:00Z"))
        yield* TestClock.adjust("55 minutes") // 03:59:05, same period
        const same = yield* client.insert(Email, { to: "b@x", subject: "2" }, { unique })
        assert.isTrue(same.skippedAsDuplicate)
        assert.strictEqual(same.job.id, first.job.id)
        yield* TestClock.setTime(Date.parse("2030-01-02T04:00:00.000Z")) // next period
        const next = yield* client.insert(Email, { to: "a@x", subject: "1" }, { unique })
        assert.isFalse(next.skippedAsDuplicate)
        assert.strictEqual(hex(next.job.uniqueKey), sha256("&kind=unique_email&period=2030-01-02T04:00:00Z"))
        // scheduledAt decides the period when given: back in the first hour -> the first job.
        const scheduled = yield* client.insert(Email, { to: "c@x", subject: "3" }, {
          unique,
          scheduledAt: new Date("2030-01-02T03:30:00.000Z")
        })
        assert.isTrue(scheduled.skippedAsDuplicate)
        assert.strictEqual(scheduled.job.id, first.job.id)
        const later = yield* client.insert(Email, { to: "c@x", subject: "3" }, {
          unique,
          scheduledAt: new Date("2030-01-02T07:10:00.000Z")
        })
        assert.isFalse(later.skippedAsDuplicate)
        assert.strictEqual(later.job.state, "scheduled")
        assert.strictEqual(yield* countJobs(schema), 3)
      }))

    it.effect("byState default: blocked while available/…/completed; accepted once cancelled or discarded", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true }
        const args = { to: "a@x", subject: "s" }
        const first = yield* client.insert(Email, args, { unique })
        for (const state of ["running", "retryable", "completed"] as const) {
          yield* setState(schema, first.job.id, state)
          const dup = yield* client.insert(Email, args, { unique })
          assert.isTrue(dup.skippedAsDuplicate, state)
          assert.strictEqual(dup.job.id, first.job.id)
          assert.strictEqual(dup.job.state, state)
        }
        yield* setState(schema, first.job.id, "available")
        yield* client.cancel(first.job.id)
        const afterCancel = yield* client.insert(Email, args, { unique })
        assert.isFalse(afterCancel.skippedAsDuplicate)
        yield* setState(schema, afterCancel.job.id, "discarded")
        const afterDiscard = yield* client.insert(Email, args, { unique })
        assert.isFalse(afterDiscard.skippedAsDuplicate)
        assert.strictEqual(yield* countJobs(schema), 3)
      }))

    it.effect("byState custom: without completed a completed job no longer blocks; with discarded it does", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const args = { to: "a@x", subject: "s" }
        const notCompleted: UniqueOptions = { byArgs: true, byState: ["available", "pending", "running", "scheduled"] }
        const a = yield* client.insert(Email, args, { unique: notCompleted })
        assert.deepStrictEqual(a.job.uniqueStates, ["available", "pending", "running", "scheduled"])
        assert.isTrue((yield* client.insert(Email, args, { unique: notCompleted })).skippedAsDuplicate)
        yield* setState(schema, a.job.id, "completed")
        const b = yield* client.insert(Email, args, { unique: notCompleted })
        assert.isFalse(b.skippedAsDuplicate)

        const withDiscarded: UniqueOptions = {
          byArgs: true,
          byState: ["available", "pending", "running", "scheduled", "retryable", "completed", "discarded"]
        }
        const c = yield* client.insert(Email, { to: "c@x", subject: "s" }, { unique: withDiscarded })
        yield* setState(schema, c.job.id, "discarded")
        const d = yield* client.insert(Email, { to: "c@x", subject: "s" }, { unique: withDiscarded })
        assert.isTrue(d.skippedAsDuplicate)
        assert.strictEqual(d.job.id, c.job.id)
        assert.strictEqual(d.job.state, "discarded")
        yield* setState(schema, c.job.id, "cancelled")
        const e = yield* client.insert(Email, { to: "c@x", subject: "s" }, { unique: withDiscarded })
        assert.isFalse(e.skippedAsDuplicate)
      }))

    it.effect("scheduled and pending jobs are unique too", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const { client } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true }
        const s = yield* client.insert(Email, { to: "s@x", subject: "s" }, { unique, scheduledAt: new Date(T0 + 3_600_000) })
        assert.strictEqual(s.job.state, "scheduled")
        assert.isTrue((yield* client.insert(Email, { to: "s@x", subject: "s" }, { unique })).skippedAsDuplicate)
        const p = yield* client.insert(Email, { to: "p@x", subject: "p" }, { unique, pending: true })
        assert.strictEqual(p.job.state, "pending")
        assert.isTrue((yield* client.insert(Email, { to: "p@x", subject: "p" }, { unique })).skippedAsDuplicate)
      }))

    it.effect("excludeKind: kinds deduplicate against each other; the existing job keeps its kind", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true, excludeKind: true }
        const email = yield* client.insert(Email, { to: "a@x", subject: "s" }, { unique })
        assert.strictEqual(hex(email.job.uniqueKey), sha256(`&args={"subject":"s","to":"a@x"}`))
        const sms = yield* client.insert(Sms, { to: "a@x", subject: "s" }, { unique })
        assert.isTrue(sms.skippedAsDuplicate)
        assert.strictEqual(sms.job.id, email.job.id)
        assert.strictEqual(sms.job.kind, "unique_email")
        assert.strictEqual((yield* client.get(email.job.id)).kind, "unique_email")
        // excludeKind without byArgs, byPeriod or byQueue is rejected, as River (v0.48+) does.
        for (const alone of [{ excludeKind: true }, { excludeKind: true, byState: UniqueStatesDefault }] as const) {
          const error = yield* Effect.flip(client.insert(Email, { to: "a@x", subject: "s" }, { unique: alone }))
          assert.instanceOf(error, InvalidOptions)
          assert.strictEqual((error as InvalidOptions).field, "unique.excludeKind")
        }
        assert.strictEqual(yield* countJobs(schema), 1)
      }))

    it.effect("insertMany: duplicates inside the batch and against existing rows", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true }
        const existing = yield* client.insert(Email, { to: "old@x", subject: "s" }, { unique })
        const results = yield* client.insertMany([
          Email.of({ to: "new@x", subject: "s" }, { unique }), // 0: inserted
          Email.of({ to: "old@x", subject: "s" }, { unique }), // 1: existing row
          Email.of({ to: "new@x", subject: "s" }, { unique }), // 2: duplicate of 0 in the batch
          Email.of({ to: "new@x", subject: "s" }), // 3: not unique: inserted
          Email.of({ to: "old@x", subject: "s" }, { unique }), // 4: existing row again
          Sms.of({ to: "new@x", subject: "s" }, { unique }), // 5: other kind: inserted
          Email.of({ to: "new@x", subject: "s" }, { unique, queue: "elsewhere" }) // 6: same key (queue not in it)
        ])
        assert.deepStrictEqual(results.map((r) => r.skippedAsDuplicate), [false, true, true, false, true, false, true])
        assert.strictEqual(results[1]!.job.id, existing.job.id)
        assert.strictEqual(results[4]!.job.id, existing.job.id)
        assert.strictEqual(results[2]!.job.id, results[0]!.job.id)
        assert.strictEqual(results[6]!.job.id, results[0]!.job.id)
        assert.strictEqual(results[6]!.job.queue, "default")
        assert.isNull(results[3]!.job.uniqueKey)
        assert.strictEqual(results[5]!.job.kind, "unique_sms")
        assert.strictEqual(new Set(results.map((r) => r.job.id)).size, 4)
        assert.strictEqual(yield* countJobs(schema), 4)
        // The whole batch again: everything unique is a duplicate now.
        const again = yield* client.insertMany([
          Email.of({ to: "new@x", subject: "s" }, { unique }),
          Email.of({ to: "new@x", subject: "s" }, { unique })
        ])
        assert.deepStrictEqual(again.map((r) => [r.skippedAsDuplicate, r.job.id]), [[true, results[0]!.job.id], [
          true,
          results[0]!.job.id
        ]])
        assert.strictEqual(yield* countJobs(schema), 4)
      }))

    it.effect("concurrent inserts of one key from many connections create exactly one job", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const unique: UniqueOptions = { byArgs: true }
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => client.insert(Report, { day: "2030-01-01" }, { unique })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => !r.skippedAsDuplicate).length, 1)
        assert.strictEqual(new Set(results.map((r) => r.job.id)).size, 1)
        assert.strictEqual(yield* countJobs(schema), 1)
      }))

    it.effect("concurrent batches with the same keys in opposite orders all succeed", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const days = Array.from({ length: 300 }, (_, i) => `day-${i}`)
        for (let round = 0; round < 4; round++) {
          const batch = (order: ReadonlyArray<string>) => client.insertMany(order.map((day) => Report.of({ day: `${round}:${day}` })))
          const [forward, backward, forward2, backward2] = yield* Effect.all(
            [batch(days), batch([...days].reverse()), batch(days), batch([...days].reverse())],
            { concurrency: "unbounded" }
          )
          const ids = new Set([forward!, backward!, forward2!, backward2!].flatMap((rs) => rs.map((r) => r.job.id)))
          assert.strictEqual(ids.size, days.length, `round ${round}: one job per key`)
          const inserted = [forward!, backward!, forward2!, backward2!].flatMap((rs) => rs.filter((r) => !r.skippedAsDuplicate))
          assert.strictEqual(inserted.length, days.length, `round ${round}: each key inserted once`)
          // Ids still follow each batch's own order, so a batch is worked in the order given.
          for (const rs of [forward!, backward!, forward2!, backward2!]) {
            const own = rs.filter((r) => !r.skippedAsDuplicate).map((r) => r.job.id)
            assert.deepStrictEqual(own, [...own].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), `round ${round}: ids in input order`)
          }
        }
        assert.strictEqual(yield* countJobs(schema), 4 * days.length)
      }), { timeout: 60_000 })

    it.effect("inside the caller's transaction: a duplicate of an uncommitted job is found", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const sql = yield* SqlClient.SqlClient
        const unique: UniqueOptions = { byQueue: true }
        const [a, b] = yield* sql.withTransaction(Effect.all([
          client.insert(Email, { to: "a@x", subject: "s" }, { unique }),
          client.insert(Email, { to: "b@x", subject: "s" }, { unique })
        ]))
        assert.isFalse(a!.skippedAsDuplicate)
        assert.isTrue(b!.skippedAsDuplicate)
        assert.strictEqual(b!.job.id, a!.job.id)
        assert.strictEqual(yield* countJobs(schema), 1)
      }))

    it.effect("precedence: insert > kind > client defaults; unique: {} turns a kind's uniqueness off", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema({ defaults: { unique: { byQueue: true } } })
        const r1 = yield* client.insert(Report, { day: "mon" })
        const r2 = yield* client.insert(Report, { day: "mon" })
        assert.isTrue(r2.skippedAsDuplicate, "kind default byArgs")
        assert.strictEqual(hex(r1.job.uniqueKey), sha256(`&kind=unique_report&args={"day":"mon"}`))
        const r3 = yield* client.insert(Report, { day: "tue" })
        assert.isFalse(r3.skippedAsDuplicate, "kind's byArgs replaces the client's byQueue")
        const off = yield* client.insert(Report, { day: "mon" }, { unique: {} })
        assert.isFalse(off.skippedAsDuplicate)
        assert.isNull(off.job.uniqueKey)
        const byInsert = yield* client.insert(Report, { day: "wed" }, { unique: { byQueue: true } })
        assert.strictEqual(hex(byInsert.job.uniqueKey), sha256("&kind=unique_report&queue=default"))
        // Client default applies to kinds without their own.
        const e1 = yield* client.insert(Email, { to: "a@x", subject: "s" })
        const e2 = yield* client.insert(Email, { to: "b@x", subject: "t" })
        assert.isTrue(e2.skippedAsDuplicate)
        assert.strictEqual(e2.job.id, e1.job.id)
        assert.strictEqual(yield* countJobs(schema), 5)
      }))

    it.effect("invalid unique options are typed errors naming the field; nothing is written", () =>
      Effect.gen(function*() {
        const { client, schema } = yield* clientOnFreshSchema()
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          [{ byPeriod: "500 millis" }, "unique.byPeriod"],
          [{ byPeriod: 999 }, "unique.byPeriod"],
          [{ byPeriod: "soon" }, "unique.byPeriod"],
          [{ byPeriod: "Infinity" }, "unique.byPeriod"],
          [{ byState: ["available", "pending", "scheduled"] }, "unique.byState"],
          [{ byState: [] }, "unique.byState"],
          [{ byState: ["available", "pending", "running", "scheduled", "finished"] }, "unique.byState[4]"],
          [{ byState: "available" }, "unique.byState"],
          [{ byArgs: [""] }, "unique.byArgs[0]"],
          [{ byArgs: ["to", 3] }, "unique.byArgs[1]"],
          [{ byArgs: ["a..b"] }, "unique.byArgs[0]"],
          [{ byArgs: ["account.id", "account"] }, "unique.byArgs[0]"],
          [{ byArgs: [] }, "unique.byArgs"],
          [{ byArgs: "to" }, "unique.byArgs"],
          [{ byQueue: "yes" }, "unique.byQueue"],
          [{ excludeKind: 1 }, "unique.excludeKind"],
          [{ byArg: true }, "unique.byArg"],
          [[], "unique"],
          [null, "unique"]
        ]
        for (const [unique, field] of cases) {
          const error = yield* Effect.flip(client.insert(Email, { to: "a@x", subject: "s" }, { unique } as InsertOptions))
          assert.instanceOf(error, InvalidOptions)
          assert.strictEqual((error as InvalidOptions).field, field, JSON.stringify(unique))
        }
        const hint = yield* Effect.flip(client.insert(Email, { to: "a@x", subject: "s" }, { unique: { byArg: true } } as never))
        assert.include((hint as InvalidOptions).rule, `did you mean "byArgs"`)
        const many = yield* Effect.flip(client.insertMany([
          Email.of({ to: "a@x", subject: "s" }, { unique: { byArgs: true } }),
          Email.of({ to: "a@x", subject: "s" }, { unique: { byPeriod: "10 millis" } })
        ]))
        assert.strictEqual((many as InvalidOptions).field, "[1].unique.byPeriod")
        const BadKind = JobKind.make("bad_unique", {
          args: Schema.Struct({}),
          options: { unique: { byState: ["completed"] } }
        })
        const kindError = yield* Effect.flip(client.insert(BadKind, {}))
        assert.strictEqual((kindError as InvalidOptions).field, "kind options.unique.byState")
        const clientError = yield* Effect.flip(Client.make({ defaults: { unique: { byQueue: 1 as never } } }))
        assert.strictEqual((clientError as InvalidOptions).field, "defaults.unique.byQueue")
        assert.strictEqual(yield* countJobs(schema), 0)
      }))

    it.effect("valid edge options are accepted", () =>
      Effect.gen(function*() {
        const { client } = yield* clientOnFreshSchema()
        const ok: ReadonlyArray<UniqueOptions> = [
          { byPeriod: "1 second" },
          { byPeriod: 1000 },
          { byPeriod: { days: 7 } },
          { byState: ["available", "pending", "running", "scheduled"] },
          { byState: ["available", "pending", "running", "scheduled", "cancelled", "discarded", "completed", "retryable"] },
          { byArgs: ["to", "to"] },
          { byArgs: false, byQueue: true }
        ]
        for (const unique of ok) {
          const result = yield* client.insert(Email, { to: "a@x", subject: "s" }, { unique })
          assert.isNotNull(result.job.uniqueKey)
        }
      }))
  })
})
