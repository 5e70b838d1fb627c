/**
 * Resumable steps: what a step and a transactional checkpoint cost. Every figure is measured
 * inside a worker (`performance.now()`) of a real `Runner` (`Runner.make`, one queue, maxWorkers 1)
 * on a fresh migrated database; one job per round, rounds of the variants alternate.
 *
 * - **plain step**: one job runs N = 10,000 `Resumable.step(name_i, Effect.void)` in a loop; the
 *   baseline job runs the same loop with `Effect.void` directly. Overhead per step =
 *   (with − without) / N, medians of the alternating rounds.
 * - **transactional checkpoint**: inside `Resumable.stepCursor("load", Schema.Number, …)`, N = 500
 *   iterations of `sql.withTransaction(insert one business row + Resumable.commitCursor(i))`; the
 *   baseline runs the same transaction without `commitCursor`. A third variant sends the
 *   checkpoint's statement itself (`jobMergeMetadataIfRunning` with the same JSON patch and attempt) through
 *   `sql.unsafe` instead of `commitCursor`: the database's share of the cost, without the
 *   library's. Reported: added time per checkpoint from the rounds' totals and from the median
 *   transaction (each transaction is timed on its own, so the medians shrug off the occasional
 *   slow fsync), the WAL written per transaction (`pg_current_wal_insert_lsn()` around each round)
 *   and this process's CPU per transaction (`process.cpuUsage`, PostgreSQL's not included).
 * - **statements per checkpoint**: one more job runs the transaction with and without the
 *   checkpoint under a recording `Tracer` (every SQL statement is a span carrying its text) and,
 *   still inside each transaction, reads `pg_stat_xact_user_tables` (this transaction's row
 *   counts) for `river_job` and the business table.
 */
import { Effect, Queue, Schema, Tracer } from "effect"
import { SqlClient } from "effect/sql"
import * as JobKind from "../src/JobKind.ts"
import * as Resumable from "../src/Resumable.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { jobSql } from "../src/internal/driver/pg/job.ts"
import { benchDatabase, fmt, median } from "./util.ts"

const Modes = ["plain-with", "plain-without", "txn-with", "txn-without", "txn-raw", "txn-verify"] as const
type Mode = typeof Modes[number]

const StepsJob = JobKind.make("bench_steps", {
  args: Schema.Struct({ mode: Schema.Literals(Modes), n: Schema.Int, round: Schema.Int })
})

interface RoundResult {
  readonly round: number
  readonly mode: Mode
  /** Whole loop, ms. */
  readonly millis: number
  /** This process's CPU time during the loop, ms. */
  readonly cpuMillis: number
  /** WAL written during the loop, bytes (transactional modes). */
  readonly walBytes: number
  /** Per transaction, ms (transactional modes). */
  readonly perIteration: ReadonlyArray<number>
  /** txn-verify: statement texts per transaction variant, and this-transaction row counts. */
  readonly verify?: VerifyResult
}

interface VerifyResult {
  readonly iterations: number
  readonly withStatements: ReadonlyArray<ReadonlyArray<string>>
  readonly withoutStatements: ReadonlyArray<ReadonlyArray<string>>
  /** Sum over the transactions of `pg_stat_xact_user_tables` counts. */
  readonly withCounts: { riverJobUpdates: number; riverJobHotUpdates: number; businessInserts: number }
  readonly withoutCounts: { riverJobUpdates: number; riverJobHotUpdates: number; businessInserts: number }
}

export interface StepsOptions {
  readonly steps?: number
  readonly checkpoints?: number
  readonly plainRounds?: number
  readonly txnRounds?: number
  readonly verifyIterations?: number
}

export interface StepsFigures {
  readonly steps: number
  readonly checkpoints: number
  readonly plainRounds: number
  readonly txnRounds: number
  /** Median loop time, ms. */
  readonly plainWith: number
  readonly plainWithout: number
  /** µs per step (wall clock). */
  readonly stepOverhead: number
  /** µs of this process's CPU per step. */
  readonly stepOverheadCpu: number
  /** Median per-round loop time, ms. */
  readonly txnWith: number
  readonly txnWithout: number
  readonly txnRaw: number
  /** Median transaction, ms. */
  readonly txnWithMedian: number
  readonly txnWithoutMedian: number
  readonly txnRawMedian: number
  /** µs per checkpoint: from round totals, and from the median transaction. */
  readonly checkpointFromTotals: number
  readonly checkpointFromMedians: number
  /** µs per checkpoint for the raw statement (same two ways). */
  readonly rawFromTotals: number
  readonly rawFromMedians: number
  /** WAL bytes per transaction (median of rounds). */
  readonly walPerTxn: { readonly with: number; readonly without: number; readonly raw: number }
  /** This process's CPU per transaction, µs (median of rounds). */
  readonly cpuPerTxn: { readonly with: number; readonly without: number; readonly raw: number }
  readonly verify: {
    readonly iterations: number
    readonly withStatements: ReadonlyArray<string>
    readonly withoutStatements: ReadonlyArray<string>
    readonly statementsPerTxnWith: number
    readonly statementsPerTxnWithout: number
    readonly withCounts: VerifyResult["withCounts"]
    readonly withoutCounts: VerifyResult["withoutCounts"]
  }
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim()

/** A tracer that keeps the text of every SQL statement span. */
const recordingTracer = (into: Array<string>): Tracer.Tracer => {
  const native = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })
  return Tracer.make({
    span(options) {
      const span = native.span(options)
      const end = span.end.bind(span)
      span.end = (endTime, exit) => {
        const text = span.attributes.get("db.query.text")
        if (typeof text === "string") into.push(oneLine(text))
        end(endTime, exit)
      }
      return span
    }
  })
}

export const runSteps = async (serverUrl: string, options: StepsOptions = {}): Promise<StepsFigures> => {
  const steps = options.steps ?? 10_000
  const checkpoints = options.checkpoints ?? 500
  const plainRounds = options.plainRounds ?? 9
  const txnRounds = options.txnRounds ?? 5
  const verifyIterations = options.verifyIterations ?? 20
  const { layer } = await benchDatabase(serverUrl, "bench_steps", 4)
  const q = jobSql(undefined, "")

  const program = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE bench_steps_rows (id bigserial PRIMARY KEY, job_id bigint NOT NULL, i int NOT NULL)`
    const results = yield* Queue.unbounded<RoundResult>()

    const insertRow = (jobId: bigint, i: number) => sql`INSERT INTO bench_steps_rows (job_id, i) VALUES (${jobId}, ${i})`
    const xactCounts = Effect.map(
      sql<{ relname: string; upd: number; hot: number; ins: number }>`
        SELECT relname, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot, n_tup_ins::int AS ins
        FROM pg_stat_xact_user_tables WHERE relname IN ('river_job', 'bench_steps_rows')`,
      (rows) => {
        const job = rows.find((r) => r.relname === "river_job")
        const business = rows.find((r) => r.relname === "bench_steps_rows")
        return { riverJobUpdates: job?.upd ?? 0, riverJobHotUpdates: job?.hot ?? 0, businessInserts: business?.ins ?? 0 }
      }
    )
    const walLsn = Effect.map(sql<{ l: string }>`SELECT pg_current_wal_insert_lsn()::text AS l`, (r) => r[0]!.l)
    const walDiff = (from: string, to: string) =>
      Effect.map(sql<{ d: number }>`SELECT pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::float8 AS d`, (r) => r[0]!.d)

    const worker = Worker.make(StepsJob, (job) =>
      Effect.gen(function*() {
        const { mode, n, round } = job.args
        const perIteration: Array<number> = []
        let millis = 0
        let cpuMillis = 0
        let walBytes = 0
        let verify: VerifyResult | undefined
        if (mode === "plain-with" || mode === "plain-without") {
          const names = Array.from({ length: n }, (_, i) => `step_${i}`)
          const c0 = process.cpuUsage()
          const t0 = performance.now()
          if (mode === "plain-with") {
            for (let i = 0; i < n; i++) yield* Resumable.step(names[i]!, Effect.void)
          } else {
            for (let i = 0; i < n; i++) yield* Effect.void
          }
          millis = performance.now() - t0
          const cpu = process.cpuUsage(c0)
          cpuMillis = (cpu.user + cpu.system) / 1000
        } else if (mode === "txn-verify") {
          const counts = () => ({ riverJobUpdates: 0, riverJobHotUpdates: 0, businessInserts: 0 })
          const withCounts = counts()
          const withoutCounts = counts()
          const withStatements: Array<Array<string>> = []
          const withoutStatements: Array<Array<string>> = []
          yield* Resumable.stepCursor("load", Schema.Number, () =>
            Effect.gen(function*() {
              for (let i = 0; i < n; i++) {
                for (const checkpoint of [true, false]) {
                  const texts: Array<string> = []
                  const body = checkpoint ? Effect.andThen(insertRow(job.id, i), Resumable.commitCursor(i)) : insertRow(job.id, i)
                  yield* sql.withTransaction(Effect.gen(function*() {
                    // pg_stat_xact_* also holds this backend's not yet flushed counts of earlier
                    // transactions, so take the difference around the body.
                    const before = yield* xactCounts
                    yield* Effect.withTracer(body, recordingTracer(texts))
                    const after = yield* xactCounts
                    const into = checkpoint ? withCounts : withoutCounts
                    into.riverJobUpdates += after.riverJobUpdates - before.riverJobUpdates
                    into.riverJobHotUpdates += after.riverJobHotUpdates - before.riverJobHotUpdates
                    into.businessInserts += after.businessInserts - before.businessInserts
                  }))
                  ;(checkpoint ? withStatements : withoutStatements).push(texts)
                }
              }
            }))
          verify = { iterations: n, withStatements, withoutStatements, withCounts, withoutCounts }
        } else {
          yield* Resumable.stepCursor("load", Schema.Number, () =>
            Effect.gen(function*() {
              const lsn0 = yield* walLsn
              const c0 = process.cpuUsage()
              const t0 = performance.now()
              for (let i = 0; i < n; i++) {
                const body = mode === "txn-with"
                  ? Effect.andThen(insertRow(job.id, i), Resumable.commitCursor(i))
                  : mode === "txn-raw"
                  ? Effect.andThen(
                    insertRow(job.id, i),
                    sql.unsafe(q.jobMergeMetadataIfRunning, [job.id, JSON.stringify({ [Resumable.CURSOR_KEY]: { load: i } }), job.attempt])
                  )
                  : insertRow(job.id, i)
                const s = performance.now()
                yield* sql.withTransaction(body)
                perIteration.push(performance.now() - s)
              }
              millis = performance.now() - t0
              const cpu = process.cpuUsage(c0)
              cpuMillis = (cpu.user + cpu.system) / 1000
              walBytes = yield* walDiff(lsn0, yield* walLsn)
            }))
        }
        yield* Queue.offer(results, { round, mode, millis, cpuMillis, walBytes, perIteration, ...(verify === undefined ? {} : { verify }) })
      }))

    const { client } = yield* Runner.make({
      queues: { default: { maxWorkers: 1 } },
      workers: [worker],
      fetchCooldown: "1 millis",
      fetchPollInterval: "50 millis",
      completerFlushInterval: 0
    })

    let round = 0
    const run = (mode: Mode, n: number) =>
      Effect.gen(function*() {
        const r = round++
        yield* client.insert(StepsJob, { mode, n, round: r })
        const result = yield* Queue.take(results)
        if (result.round !== r || result.mode !== mode) {
          return yield* Effect.die(new Error(`steps: expected round ${r} ${mode}, got ${result.round} ${result.mode}`))
        }
        return result
      })

    // Warm-up (JIT, prepared statements).
    for (let i = 0; i < 2; i++) {
      yield* run("plain-without", steps)
      yield* run("plain-with", steps)
    }
    yield* run("txn-without", 50)
    yield* run("txn-with", 50)
    yield* run("txn-raw", 50)

    const plain = {
      with: [] as Array<number>,
      without: [] as Array<number>,
      withCpu: [] as Array<number>,
      withoutCpu: [] as Array<number>
    }
    for (let i = 0; i < plainRounds; i++) {
      // alternate which goes first
      const order = i % 2 === 0 ? (["plain-without", "plain-with"] as const) : (["plain-with", "plain-without"] as const)
      for (const mode of order) {
        const r = yield* run(mode, steps)
        ;(mode === "plain-with" ? plain.with : plain.without).push(r.millis)
        ;(mode === "plain-with" ? plain.withCpu : plain.withoutCpu).push(r.cpuMillis)
      }
    }

    const txn = {
      with: { totals: [] as Array<number>, each: [] as Array<number>, wal: [] as Array<number>, cpu: [] as Array<number> },
      without: { totals: [] as Array<number>, each: [] as Array<number>, wal: [] as Array<number>, cpu: [] as Array<number> },
      raw: { totals: [] as Array<number>, each: [] as Array<number>, wal: [] as Array<number>, cpu: [] as Array<number> }
    }
    const txnOrders = [
      ["txn-without", "txn-with", "txn-raw"],
      ["txn-with", "txn-raw", "txn-without"],
      ["txn-raw", "txn-without", "txn-with"]
    ] as const
    for (let i = 0; i < txnRounds; i++) {
      for (const mode of txnOrders[i % 3]!) {
        const r = yield* run(mode, checkpoints)
        const into = mode === "txn-with" ? txn.with : mode === "txn-raw" ? txn.raw : txn.without
        into.totals.push(r.millis)
        into.wal.push(r.walBytes / checkpoints)
        into.cpu.push((r.cpuMillis * 1000) / checkpoints)
        into.each.push(...r.perIteration)
      }
    }

    const v = (yield* run("txn-verify", verifyIterations)).verify!
    const distinct = (xs: ReadonlyArray<ReadonlyArray<string>>) => [...new Set(xs.map((t) => t.join(" ; ")))]
    const perTxn = (xs: ReadonlyArray<ReadonlyArray<string>>) => xs.reduce((a, t) => a + t.length, 0) / xs.length

    const plainWith = median(plain.with)
    const plainWithout = median(plain.without)
    const txnWith = median(txn.with.totals)
    const txnWithout = median(txn.without.totals)
    const txnRaw = median(txn.raw.totals)
    const txnWithMedian = median(txn.with.each)
    const txnWithoutMedian = median(txn.without.each)
    const txnRawMedian = median(txn.raw.each)
    return {
      steps,
      checkpoints,
      plainRounds,
      txnRounds,
      plainWith,
      plainWithout,
      stepOverhead: ((plainWith - plainWithout) * 1000) / steps,
      stepOverheadCpu: ((median(plain.withCpu) - median(plain.withoutCpu)) * 1000) / steps,
      txnWith,
      txnWithout,
      txnRaw,
      txnWithMedian,
      txnWithoutMedian,
      txnRawMedian,
      checkpointFromTotals: ((txnWith - txnWithout) * 1000) / checkpoints,
      checkpointFromMedians: (txnWithMedian - txnWithoutMedian) * 1000,
      rawFromTotals: ((txnRaw - txnWithout) * 1000) / checkpoints,
      rawFromMedians: (txnRawMedian - txnWithoutMedian) * 1000,
      walPerTxn: { with: median(txn.with.wal), without: median(txn.without.wal), raw: median(txn.raw.wal) },
      cpuPerTxn: { with: median(txn.with.cpu), without: median(txn.without.cpu), raw: median(txn.raw.cpu) },
      verify: {
        iterations: v.iterations,
        withStatements: distinct(v.withStatements),
        withoutStatements: distinct(v.withoutStatements),
        statementsPerTxnWith: perTxn(v.withStatements),
        statementsPerTxnWithout: perTxn(v.withoutStatements),
        withCounts: v.withCounts,
        withoutCounts: v.withoutCounts
      }
    } satisfies StepsFigures
  })

  return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer)))
}

export const printSteps = (f: StepsFigures) => {
  const us = (x: number) => `${fmt(x, 2).padStart(9)} µs`
  const ms = (x: number) => `${fmt(x, 2).padStart(9)} ms`
  console.log(`\n## steps: resumable step and checkpoint cost, measured inside a worker of a real Runner`)
  console.log(`  plain step: ${fmt(f.steps)} x Resumable.step(name_i, Effect.void) vs the same loop of Effect.void (median of ${f.plainRounds} rounds each)`)
  console.log(`    with steps    ${ms(f.plainWith)}`)
  console.log(`    without       ${ms(f.plainWithout)}`)
  console.log(`    per step      ${us(f.stepOverhead)}  (target <= 50 µs: ${f.stepOverhead <= 50 ? "met" : "missed"})`)
  console.log(`    per step, CPU ${us(f.stepOverheadCpu)}`)
  console.log(
    `  transactional checkpoint: ${fmt(f.checkpoints)} x sql.withTransaction(insert row [+ checkpoint]) in a stepCursor ` +
      `(${f.txnRounds} rounds each; per round / median transaction)`
  )
  console.log(`    + commitCursor(i)          ${ms(f.txnWith)} / ${ms(f.txnWithMedian)}`)
  console.log(`    + raw checkpoint UPDATE    ${ms(f.txnRaw)} / ${ms(f.txnRawMedian)}`)
  console.log(`    no checkpoint              ${ms(f.txnWithout)} / ${ms(f.txnWithoutMedian)}`)
  console.log(`    added per commitCursor     ${us(f.checkpointFromTotals)} (totals) / ${us(f.checkpointFromMedians)} (medians)`)
  console.log(`    added per raw UPDATE       ${us(f.rawFromTotals)} (totals) / ${us(f.rawFromMedians)} (medians)`)
  console.log(
    `    WAL per transaction        ${fmt(f.walPerTxn.with)} B with commitCursor, ${fmt(f.walPerTxn.raw)} B raw, ` +
      `${fmt(f.walPerTxn.without)} B without`
  )
  console.log(
    `    our CPU per transaction    ${fmt(f.cpuPerTxn.with)} µs with commitCursor, ${fmt(f.cpuPerTxn.raw)} µs raw, ` +
      `${fmt(f.cpuPerTxn.without)} µs without`
  )
  const v = f.verify
  console.log(`  statements per transaction (recording Tracer, ${v.iterations} transactions each):`)
  console.log(`    with checkpoint    ${fmt(v.statementsPerTxnWith, 2)}: ${v.withStatements.join(" | ")}`)
  console.log(`    without            ${fmt(v.statementsPerTxnWithout, 2)}: ${v.withoutStatements.join(" | ")}`)
  console.log(
    `  pg_stat_xact_user_tables summed over the transactions: river_job updates ${v.withCounts.riverJobUpdates} ` +
      `(HOT ${v.withCounts.riverJobHotUpdates}) with / ${v.withoutCounts.riverJobUpdates} without; ` +
      `business inserts ${v.withCounts.businessInserts} / ${v.withoutCounts.businessInserts}`
  )
}
