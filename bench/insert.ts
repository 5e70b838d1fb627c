/**
 * Insert throughput: 20,000 jobs in batches of 1,000 through `Client.insertMany`, next to a raw
 * ceiling that sends the same multi-row INSERT (with the insert notification) straight through
 * the driver: prebuilt parameter arrays, no validation, no encoding, no row mapping.
 * Rounds alternate ceiling / library on the same database (truncated between rounds); the median
 * of each is reported. A third, diagnostic figure (not in the ratio): the same batches as unique
 * jobs (`unique: { byArgs: true }`), inserted, then inserted again (every job a duplicate), which
 * prices the unique statement's key-ordered insert and its match-back join.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Schema } from "effect"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import { jobSql } from "../src/internal/driver/pg/job.ts"
import { benchDatabase, fmt, median } from "./util.ts"

const Noop = JobKind.make("bench_noop", {
  args: Schema.Struct({ n: Schema.Int, label: Schema.String })
})

export interface InsertFigures {
  readonly jobs: number
  readonly batch: number
  readonly rounds: number
  readonly library: number
  readonly ceiling: number
  /** Unique jobs, inserted then inserted again as duplicates: jobs/s over both passes. */
  readonly unique: number
}

export const runInsert = async (serverUrl: string, options: { jobs?: number; batch?: number; rounds?: number } = {}) => {
  const jobs = options.jobs ?? 20_000
  const batch = options.batch ?? 1_000
  const rounds = options.rounds ?? 5
  const { layer } = await benchDatabase(serverUrl, "bench_insert", 4)

  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const client = yield* Client.make({})
    const q = jobSql(undefined, "")

    const library = Effect.gen(function*() {
      for (let start = 0; start < jobs; start += batch) {
        const requests = Array.from({ length: batch }, (_, i) => Noop.of({ n: start + i, label: "bench" }))
        yield* client.insertMany(requests)
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
        yield* sql.unsafe(q.jobInsertMany, [
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

    // warm-up (prepared statements, JIT)
    yield* time(ceiling)
    yield* time(library)
    const lib: Array<number> = []
    const raw: Array<number> = []
    const uniq: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      raw.push(yield* time(ceiling))
      lib.push(yield* time(library))
      uniq.push(yield* time(unique))
    }
    return { jobs, batch, rounds, library: median(lib), ceiling: median(raw), unique: median(uniq) } satisfies InsertFigures
  })

  return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer)))
}

export const printInsert = (f: InsertFigures) => {
  console.log(`\n## insert: ${fmt(f.jobs)} jobs in batches of ${fmt(f.batch)} (median of ${f.rounds} rounds)`)
  console.log(`  effect-river insertMany  ${fmt(f.library).padStart(8)} jobs/s`)
  console.log(`  raw ceiling (driver)     ${fmt(f.ceiling).padStart(8)} jobs/s`)
  console.log(`  ratio                    ${fmt((100 * f.library) / f.ceiling, 1).padStart(8)} %  (target >= 90 %)`)
  console.log(`  (unique byArgs, new + duplicate pass  ${fmt(f.unique).padStart(8)} jobs/s; diagnostic, not in the ratio)`)
}
