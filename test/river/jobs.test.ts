/**
 * Scenario 2, jobs both ways: jobs inserted by River's client with every insert API (Insert,
 * InsertTx, InsertMany, InsertManyTx, InsertManyFast, InsertManyFastTx) are worked by an
 * effect-river runner that decodes them with its Schema; jobs inserted by effect-river (insert,
 * insertMany, inside a transaction) are worked by a River client whose Go structs decode them.
 * Scheduled, pending, priorities, tags, metadata and max attempts survive the crossing; the
 * args hold dates, unicode, HTML characters, nested objects and maps, and int64 values.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { JobRow } from "../../src/Job.ts"
import * as Json from "./utils/json.ts"
import { Tricky } from "./utils/kinds.ts"
import { Scenario, waitFor } from "./utils/harness.ts"
import type { Riverside } from "./utils/riverside.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_jobs")
})
afterAll(async () => {
  await s?.dispose()
})

const TEXT = "Grüße, 世界 👋🏽 — tab\t newline\n quote \" backslash \\ \u2028 U+2028 é"
const HTML = "<script>alert('x') && 1 > 0</script> &amp; <b>"

/** The tricky args as effect-river's schema holds them. */
const trickyValue = (n: number, big: bigint = 42n) => ({
  big_id: big,
  small: n,
  ratio: 1234.5678,
  at: new Date(`2024-02-29T23:59:59.${String(100 + n).padStart(3, "0")}Z`),
  text: `${TEXT} #${n}`,
  html: HTML,
  flag: n % 2 === 0,
  nested: { name: `nested ${n} <&>`, inner: { depth: 2, values: [1n, big, -7n] } },
  tags: ["a", "ü", "<x>"],
  counts: { b: 2n, a: big, "10": 3n },
  optional: null
})

/** The same args as JSON for riverside (bigints as JSON numbers, the date as RFC 3339). */
const trickyWire = (n: number, big: bigint = 42n) => {
  const value = trickyValue(n, big)
  return { ...value, at: value.at.toISOString() }
}

/** What Go's struct holds after decoding, re-encoded by Go and parsed here (bigints kept). */
const goDecoded = (n: number, big: bigint = 42n) => Json.parse(Json.stringify(trickyWire(n, big)))

const startRiverWorker = async (river: Riverside, id: string) => {
  await river.start({ id, queues: { default: 4, interop: 4 }, fetch_poll_interval_ms: 200 })
}

describe("jobs inserted by River, worked by effect-river", () => {
  it("Insert, InsertTx, InsertMany(Tx), InsertManyFast(Tx): decoded by effect-river's schema with options intact", async () => {
    const schema = await s.effectSchema("river_to_effect")
    const river = await s.river(schema, "river-inserts")
    const opts = { queue: "interop", priority: 2, max_attempts: 7, tags: ["from_go", "tricky"], metadata: { origin: "go", n: 1 } }

    const single = (await river.insert("interop_tricky", trickyWire(1), opts)).job
    const inTx = (await river.insert("interop_tricky", trickyWire(2), { ...opts, priority: 3 }, {})).job
    const rolledBack = (await river.insert("interop_tricky", trickyWire(3), opts, { rollback: true })).job
    const many = await river.insertMany([
      { kind: "interop_tricky", args: trickyWire(4), opts: { ...opts, priority: 4 } },
      { kind: "interop_tricky", args: trickyWire(5), opts: { ...opts, scheduled_at: new Date(Date.now() + 1_500).toISOString() } },
      { kind: "interop_tricky", args: trickyWire(6), opts: { ...opts, pending: true } }
    ])
    const manyTx = await river.insertMany([{ kind: "interop_tricky", args: trickyWire(7), opts }], { tx: true })
    const fastCount = await river.insertManyFast([
      { kind: "interop_tricky", args: trickyWire(8), opts: { ...opts, tags: ["fast"] } },
      { kind: "interop_tricky", args: trickyWire(9), opts: { ...opts, tags: ["fast"] } }
    ])
    const fastTxCount = await river.insertManyFast([{ kind: "interop_tricky", args: trickyWire(10), opts }], { tx: true })
    expect([fastCount, fastTxCount]).toEqual([2, 1])
    expect(many.map((r) => r.job.state)).toEqual(["available", "scheduled", "pending"])

    const runner = await s.runner(schema, {
      id: "effect-worker",
      queues: { interop: { maxWorkers: 4 } },
      schedulerInterval: "200 millis"
    })
    // Eight jobs run (the pending one waits, the rolled-back one never existed).
    await waitFor("effect-river worked eight River jobs", () => runner.recorder.works.length >= 8, 60_000)
    const sql = (text: string, params: ReadonlyArray<unknown> = []) => s.q<{ id: bigint; small: number }>(text, params)
    const rows = await sql(`SELECT id, (args->>'small')::int AS small FROM "${schema}".river_job ORDER BY id`)
    expect(rows.map((r) => r.small)).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 10])
    expect(rows.some((r) => r.id === rolledBack.id)).toBe(false)

    const bySmall = new Map(runner.recorder.works.map((w) => [(w.args as { small: number }).small, w]))
    expect([...bySmall.keys()].sort((a, b) => a - b)).toEqual([1, 2, 4, 5, 7, 8, 9, 10])
    for (const [n, work] of bySmall) {
      expect(work.args, `job ${n}`).toEqual(trickyValue(n))
      expect(work.attempt).toBe(1)
      expect(work.metadata).toMatchObject({ origin: "go", n: 1 })
    }

    const get = (id: bigint) => s.run(runner.client.get(id))
    await waitFor("every worked job completed", async () => {
      const states = await sql(`SELECT count(*)::int AS small FROM "${schema}".river_job WHERE state = 'completed'`)
      return states[0]!.small === 8
    })
    const first = await get(single.id)
    expect(first).toMatchObject({ state: "completed", priority: 2, maxAttempts: 7, queue: "interop", tags: ["from_go", "tricky"] })
    expect(first.metadata).toMatchObject({ origin: "go", n: 1 })
    expect(first.attemptedBy).toContain("effect-worker")
    expect((await get(inTx.id)).priority).toBe(3)
    expect((await get(many[0]!.job.id)).priority).toBe(4)
    const scheduled = await get(many[1]!.job.id)
    expect(scheduled.state).toBe("completed")
    expect(scheduled.scheduledAt.getTime()).toBe(many[1]!.job.scheduledAt.getTime())
    expect((await get(many[2]!.job.id)).state).toBe("pending")
    expect((await get(manyTx[0]!.job.id)).state).toBe("completed")
    const fast = await sql(`SELECT id, 0 AS small FROM "${schema}".river_job WHERE tags = '{fast}' ORDER BY id`)
    for (const row of fast) expect((await get(row.id)).state).toBe("completed")
    await runner.stop()
  })
})

describe("jobs inserted by effect-river, worked by River", () => {
  it("insert, insertMany, inside a transaction: decoded by River's Go structs with options intact", async () => {
    const schema = await s.effectSchema("effect_to_river")
    const client = await s.client(schema)
    const opts = { queue: "interop", priority: 2, maxAttempts: 7, tags: ["from_ts", "tricky"], metadata: { origin: "ts", n: 1 } }
    const inserted: Array<{ n: number; job: JobRow }> = []
    const insert = (n: number, extra: object = {}) =>
      s.run(client.insert(Tricky, trickyValue(n), { ...opts, ...extra })).then((r) => {
        inserted.push({ n, job: r.job })
        return r.job
      })
    await insert(1)
    const many = await s.run(client.insertMany([
      Tricky.of(trickyValue(2), { ...opts, priority: 4 }),
      Tricky.of(trickyValue(3), { ...opts, scheduledAt: new Date(Date.now() + 1_500) }),
      Tricky.of(trickyValue(4), { ...opts, pending: true })
    ]))
    many.forEach((r, i) => inserted.push({ n: i + 2, job: r.job }))
    const inTx = await s.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.withTransaction(client.insert(Tricky, trickyValue(5), opts))))
    inserted.push({ n: 5, job: inTx.job })
    const rolledBack = await s.run(
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.withTransaction(Effect.andThen(client.insert(Tricky, trickyValue(6), opts), Effect.fail("rollback" as const)))).pipe(
          Effect.flip
        )
    )
    expect(rolledBack).toBe("rollback")

    const river = await s.river(schema, "river-worker")
    await startRiverWorker(river, "river-worker")
    for (const { job, n } of inserted.filter((i) => i.n !== 4)) {
      const work = await river.waitForWork(job.id, 1)
      expect(Json.parse(work.decoded), `job ${n}`).toEqual(goDecoded(n))
      expect(work.facts).toMatchObject({ big_id: "42", at_unix_ms: String(trickyValue(n).at.getTime()), optional_is_nil: true })
      expect(work.job).toMatchObject({ priority: job.priority, maxAttempts: 7, queue: "interop", tags: ["from_ts", "tricky"] })
      expect(work.job.metadata).toMatchObject({ origin: "ts", n: 1 })
      const done = await river.waitForRiverEvent("job_completed", job.id)
      expect(done.attemptedBy).toContain("river-worker")
    }
    expect((await river.get(many[2]!.job.id))?.state).toBe("pending")
    expect((await river.get(many[1]!.job.id))?.scheduledAt.getTime()).toBe(many[1]!.job.scheduledAt.getTime())
    const count = await s.q<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".river_job`)
    expect(count[0]!.n).toBe(5)
  })
})

describe("int64 beyond 2^53", () => {
  const BIG = 9_007_199_254_740_993n // 2^53 + 1
  const MAX = 9_223_372_036_854_775_807n

  it("River's int64 args reach effect-river's worker exactly", async () => {
    const schema = await s.effectSchema("int64_river_to_effect")
    const river = await s.river(schema, "river-int64")
    const { job } = await river.insert("interop_tricky", { ...trickyWire(1, BIG), nested: { name: "n", inner: { depth: 1, values: [MAX, -MAX - 1n] } } })
    // Stored exactly by River (jsonb keeps numbers as written).
    const stored = Json.parse(job.argsText) as { big_id: bigint; nested: { inner: { values: Array<bigint> } } }
    expect(stored.big_id).toBe(BIG)
    expect(stored.nested.inner.values).toEqual([MAX, -MAX - 1n])
    const runner = await s.runner(schema, { id: "effect-int64", queues: { default: { maxWorkers: 1 } } })
    const work = await waitFor("effect-river worked the job", () => runner.recorder.works[0])
    const args = work.args as ReturnType<typeof trickyValue>
    expect(args.big_id).toBe(BIG)
    expect(args.nested.inner.values).toEqual([MAX, -MAX - 1n])
    expect(args.counts.a).toBe(BIG)
    await runner.stop()
  })

  it("effect-river's int64 args reach River's Go struct exactly", async () => {
    const schema = await s.effectSchema("int64_effect_to_river")
    const client = await s.client(schema)
    const { job } = await s.run(client.insert(Tricky, trickyValue(1, BIG)))
    const river = await s.river(schema, "river-int64-worker")
    await startRiverWorker(river, "river-int64-worker")
    const work = await waitFor("River worked the job or failed it", async () => {
      const worked = river.works().find((w) => w.job.id === job.id)
      if (worked !== undefined) return worked
      const row = await river.get(job.id)
      if (row !== undefined && row.errors.length > 0) throw new Error(`River could not work the job: ${row.errors[0]!.error}`)
      return undefined
    })
    expect(work.facts?.big_id).toBe(BIG.toString())
    expect(work.facts?.values).toEqual(["1", BIG.toString(), "-7"])
  })
})
