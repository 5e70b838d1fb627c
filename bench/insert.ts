/**
 * Insert throughput: 20,000 jobs (`{ n, label }`) in batches of 1,000, table emptied and
 * `CHECKPOINT` before each round, rounds alternating; the median of each is reported.
 *
 * - **effect-river**: `Client.insertMany` (validation, encoding, full rows returned), and the
 *   bulk path `Client.insertManyFast` (the same, returning only the count: River's
 *   `InsertManyFast`), which issue 16's bulk goals compare.
 * - **River ceiling**: the same multi-row INSERT (with the insert notification, returning the
 *   rows) straight through the driver: prebuilt parameter arrays, no validation, no encoding, no
 *   row mapping.
 * - **raw multi-row insert** (issue 16's bulk ceiling): a bare `INSERT … SELECT unnest(…)` of
 *   River's columns, no notification, nothing returned — what a bulk path (River's
 *   `InsertManyFast`, COPY) could approach.
 * - **graphile-worker** `addJobs` and **pg-boss** `insert(name, jobs)`: their batch APIs, each on
 *   its own database of the same server.
 *
 * A diagnostic figure (not in a ratio): the same batches as unique jobs (`unique: { byArgs: true
 * }`), inserted, then inserted again (every job a duplicate), which prices the unique
 * statement's key-ordered insert and its match-back join.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Schema } from "effect"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import { makeGraphile } from "./contenders/graphile.ts"
import { makePgBoss } from "./contenders/pgboss.ts"
import { step } from "./guard.ts"
import * as Sql from "./sql.ts"
import { benchDatabase, fmt, median, range, ratio } from "./util.ts"

const Noop = JobKind.make("bench_noop", {
  args: Schema.Struct({ n: Schema.Int, label: Schema.String })
})

export interface InsertFigures {
  readonly jobs: number
  readonly batch: number
  readonly rounds: number
  readonly library: number
  /** `Client.insertManyFast`, the bulk path. */
  readonly fast: number
  readonly ceiling: number
  /** The bare multi-row insert (nothing returned, no notification). */
  readonly raw: number
  readonly graphile: number
  readonly pgboss: number
  /** Every round's rate, by contender. */
  readonly rates: Readonly<Record<"library" | "fast" | "ceiling" | "raw" | "graphile" | "pgboss", ReadonlyArray<number>>>
  /** Unique jobs, inserted then inserted again as duplicates: jobs/s over both passes. */
  readonly unique: number
}

export const runInsert = async (serverUrl: string, options: { jobs?: number; batch?: number; rounds?: number } = {}) => {
  const jobs = options.jobs ?? 20_000
  const batch = options.batch ?? 1_000
  const rounds = options.rounds ?? 5
  const { layer } = await benchDatabase(serverUrl, "bench_insert", 4)
  const graphile = await makeGraphile(serverUrl, "bench_insert_graphile")
  const pgboss = await makePgBoss(serverUrl, "bench_insert_pgboss")

  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const client = yield* Client.make({})

    const library = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const requests = Array.from({ length: batch }, (_, i) => Noop.of({ n: start + i, label: "bench" }))
        yield* client.insertMany(requests)
      }
    })

    const fast = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const requests = Array.from({ length: batch }, (_, i) => Noop.of({ n: start + i, label: "bench" }))
        const n = yield* client.insertManyFast(requests)
        if (n !== batch) return yield* Effect.die(new Error(`insertManyFast inserted ${n} of ${batch}`))
      }
    })

    const unique = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const requests = Array.from(
          { length: batch },
          (_, i) => Noop.of({ n: start + i, label: "bench" }, { unique: { byArgs: true } })
        )
        yield* client.insertMany(requests)
        const again = yield* client.insertMany(requests)
        if (!again.every((r) => r.skippedAsDuplicate)) return yield* Effect.die(new Error("expected duplicates"))
      }
    })

    const ceiling = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const now = new Date()
        const args = Array.from({ length: batch }, (_, i) => JSON.stringify({ n: start + i, label: "bench" }))
        yield* sql.unsafe(Sql.jobInsertMany, [
          args,
          now,
          Array<string>(batch).fill("bench_noop"),
          Array<number>(batch).fill(25),
          Array<string>(batch).fill("{}"),
          Array<number>(batch).fill(1),
          Array<string>(batch).fill("default"),
          Array<Date>(batch).fill(now),
          Array<string>(batch).fill("available"),
          Array<string>(batch).fill(""),
          [`{"queue": "default"}`]
        ])
      }
    })

    const raw = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const args = Array.from({ length: batch }, (_, i) => JSON.stringify({ n: start + i, label: "bench" }))
        yield* sql.unsafe(Sql.minimalInsert, [args, new Date(), "bench_noop", "default", 25])
      }
    })

    const time = (eff: Effect.Effect<void, unknown>) =>
      Effect.gen(function*() {
        yield* sql`TRUNCATE river_job`
        yield* sql`CHECKPOINT`
        const t0 = performance.now()
        yield* eff
        const seconds = (performance.now() - t0) / 1000
        const [{ n }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM river_job`) as [{ n: number }]
        if (n !== jobs) return yield* Effect.die(new Error(`expected ${jobs} rows, found ${n}`))
        return (eff === unique ? 2 * jobs : jobs) / seconds
      })

    const other = (insert: (jobs: number, batch: number) => Promise<number>, reset: () => Promise<void>) =>
      Effect.promise(async () => {
        await reset()
        return insert(jobs, batch)
      })

    // warm-up (prepared statements, JIT)
    step("insert: warm-up")
    yield* time(ceiling)
    yield* time(library)
    yield* time(fast)
    yield* time(raw)
    yield* other(graphile.insert, graphile.reset)
    yield* other(pgboss.insert, pgboss.reset)
    const rates = { library: [] as Array<number>, fast: [] as Array<number>, ceiling: [] as Array<number>, raw: [] as Array<number>, graphile: [] as Array<number>, pgboss: [] as Array<number> }
    const uniq: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      step(`insert: round ${r + 1} of ${rounds}`)
      rates.ceiling.push(yield* time(ceiling))
      rates.library.push(yield* time(library))
      rates.raw.push(yield* time(raw))
      rates.fast.push(yield* time(fast))
      rates.graphile.push(yield* other(graphile.insert, graphile.reset))
      rates.pgboss.push(yield* other(pgboss.insert, pgboss.reset))
      uniq.push(yield* time(unique))
    }
    return {
      jobs,
      batch,
      rounds,
      library: median(rates.library),
      fast: median(rates.fast),
      ceiling: median(rates.ceiling),
      raw: median(rates.raw),
      graphile: median(rates.graphile),
      pgboss: median(rates.pgboss),
      rates,
      unique: median(uniq)
    } satisfies InsertFigures
  })

  try {
    return await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer)))
  } finally {
    await graphile.close()
    await pgboss.close()
  }
}

export const printInsert = (f: InsertFigures) => {
  const row = (label: string, median: number, rates: ReadonlyArray<number>) =>
    console.log(`  ${label.padEnd(44)}${fmt(median).padStart(8)} jobs/s   range ${range(rates)}`)
  const r = (label: string, value: string, goal = "") => console.log(`  ${label.padEnd(44)}${value.padStart(8)}   ${goal}`)
  console.log(`\n## insert: ${fmt(f.jobs)} jobs in batches of ${fmt(f.batch)} (median of ${f.rounds} alternating rounds)`)
  row("effect-river Client.insertMany", f.library, f.rates.library)
  row("effect-river Client.insertManyFast (bulk)", f.fast, f.rates.fast)
  row("River ceiling (same statement, driver)", f.ceiling, f.rates.ceiling)
  row("raw multi-row insert (nothing returned)", f.raw, f.rates.raw)
  row("graphile-worker addJobs", f.graphile, f.rates.graphile)
  row("pg-boss insert", f.pgboss, f.rates.pgboss)
  r("effect-river / River ceiling", ratio(f.library, f.ceiling), "(target >= 0.90)")
  r("insertMany / raw multi-row insert", ratio(f.library, f.raw))
  r("insertMany / graphile-worker addJobs", ratio(f.library, f.graphile))
  r("insertManyFast / raw multi-row insert", ratio(f.fast, f.raw), "(issue 16 bulk goal >= 0.80)")
  r("insertManyFast / graphile-worker addJobs", ratio(f.fast, f.graphile), "(issue 16 bulk goal >= 1.00)")
  r("effect-river / pg-boss insert", ratio(f.library, f.pgboss))
  console.log(`  (unique byArgs, new + duplicate pass  ${fmt(f.unique).padStart(8)} jobs/s; diagnostic, not in a ratio)`)
}
