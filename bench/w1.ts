/**
 * W1, throughput: 20,000 no-op jobs inserted in batches of 1,000 with no runner running, then a
 * runner is started and timed until every job is `completed`.
 *
 * - **effect-river**: `Runner.make` with one queue (River's bench settings: fetchCooldown 2 ms,
 *   fetchPollInterval 20 ms), a worker that does nothing; the clock runs from just before
 *   `Runner.make` to the 20,000th `completed` event from `runner.subscribe` (events are published
 *   after the completer's write commits), then SQL checks that all 20,000 rows are `completed`.
 *   Several `maxWorkers` values are tried; the best is reported.
 * - **raw ceiling**: the two statements the runtime sends, straight through the driver
 *   (`PgClient.unsafe`, prebuilt parameter arrays, rows left undecoded): River's locking fetch
 *   (`jobGetAvailable`, `LIMIT batch … FOR UPDATE SKIP LOCKED`, marks the batch running) and River's
 *   batched completion (`jobSetStateIfRunningMany` with state `completed` and `finalized_at`).
 *   Pipelined on two pool connections: the fetch of batch N+1 runs while batch N is completed.
 *   Several batch sizes are tried; the best is reported.
 *
 * Each measured round starts from the same state: table truncated, 20,000 jobs inserted,
 * `CHECKPOINT`. The library's insert rate (`Client.insertMany`) is reported too, and so is the
 * benchmark process's CPU time per job (`process.cpuUsage`; PostgreSQL's is not included).
 *
 * Two diagnostic rounds run in the sweep, not in the ratio: the library with `jobTimeout: "none"`
 * (what the per-job timeout costs), and the ceiling with a minimal completion
 * (`UPDATE … SET state = 'completed', finalized_at = $2 WHERE id = ANY($1)`, nothing returned:
 * what River's completion statement costs).
 */
import { PgClient } from "@effect/sql-pg"
import { type Duration, Effect, Exit, Latch, PubSub, References, Schema, Scope } from "effect"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { jobSql, type RawJobRow } from "../src/internal/driver/pg/job.ts"
import { benchDatabase, fmt, median } from "./util.ts"

const Noop = JobKind.make("bench_noop", {
  args: Schema.Struct({ n: Schema.Int })
})

export interface W1Options {
  readonly jobs?: number
  readonly insertBatch?: number
  /** maxWorkers values tried for the library (one round each); the best gets `rounds` more. */
  readonly maxWorkers?: ReadonlyArray<number>
  /** Batch sizes tried for the ceiling (one round each); the best gets `rounds` more. */
  readonly ceilingBatches?: ReadonlyArray<number>
  readonly rounds?: number
  readonly fetchCooldown?: Duration.Input & string
  readonly fetchPollInterval?: Duration.Input & string
}

export interface W1Trial {
  readonly label: string
  readonly jobsPerSecond: number
  /** CPU time of this process per job, in µs. */
  readonly cpuMicros: number
}

interface Round {
  readonly jobsPerSecond: number
  readonly cpuMicros: number
}

export interface W1Figures {
  readonly jobs: number
  readonly insertBatch: number
  readonly rounds: number
  readonly fetchCooldown: Duration.Input & string
  readonly fetchPollInterval: Duration.Input & string
  /** Median insert rate of the library rounds (`Client.insertMany`). */
  readonly insert: number
  readonly maxWorkers: number
  readonly library: number
  readonly libraryCpuMicros: number
  readonly ceilingBatch: number
  readonly ceiling: number
  readonly ceilingCpuMicros: number
  readonly sweep: ReadonlyArray<W1Trial>
}

export const runW1 = async (serverUrl: string, options: W1Options = {}): Promise<W1Figures> => {
  const jobs = options.jobs ?? 20_000
  const insertBatch = options.insertBatch ?? 1_000
  const maxWorkersList = options.maxWorkers ?? [500, 1_000, 2_000, 5_000]
  const ceilingBatches = options.ceilingBatches ?? [500, 1_000, 2_000]
  const rounds = options.rounds ?? 5
  const fetchCooldown: Duration.Input & string = options.fetchCooldown ?? "2 millis"
  const fetchPollInterval: Duration.Input & string = options.fetchPollInterval ?? "20 millis"
  const { layer } = await benchDatabase(serverUrl, "bench_w1", 10)

  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const q = jobSql(undefined, "")
    const client = yield* Client.make({})

    /** Empty table, `jobs` available jobs inserted by the library; returns the insert rate. */
    const prepare = Effect.gen(function*() {
      yield* sql`TRUNCATE river_job`
      const t0 = performance.now()
      for (let start = 0; start < jobs; start += insertBatch) {
        const n = Math.min(insertBatch, jobs - start)
        yield* client.insertMany(Array.from({ length: n }, (_, i) => Noop.of({ n: start + i })))
      }
      const rate = jobs / ((performance.now() - t0) / 1000)
      yield* sql`CHECKPOINT`
      return rate
    })

    const verify = Effect.gen(function*() {
      const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM river_job WHERE state = 'completed'`
      if (rows[0]!.n !== jobs) return yield* Effect.die(new Error(`expected ${jobs} completed jobs, found ${rows[0]!.n}`))
    })

    /** Runs `work` and returns its rate and this process's CPU time per job. */
    const timed = <R>(work: Effect.Effect<void, unknown, R>) =>
      Effect.gen(function*() {
        const cpu0 = process.cpuUsage()
        const t0 = performance.now()
        yield* work
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        return { jobsPerSecond: jobs / seconds, cpuMicros: (cpu.user + cpu.system) / jobs } satisfies Round
      })

    /** One library round: the insert rate and the work round. */
    const library = (maxWorkers: number, jobTimeout?: "none") =>
      Effect.gen(function*() {
        const insertRate = yield* prepare
        // The worker waits for `go` (opened right after subscribing) so that no completion can
        // be published before the subscription exists; once open, it returns at once.
        const go = yield* Latch.make(false)
        const worker = Worker.make(Noop, () => go.await)
        const scope = yield* Scope.make()
        const round = yield* timed(Effect.gen(function*() {
          const { runner } = yield* Runner.make({
            queues: { default: { maxWorkers } },
            workers: [worker],
            fetchCooldown,
            fetchPollInterval,
            // Room for every event: a sliding buffer would drop the oldest.
            eventBuffer: jobs * 2,
            ...(jobTimeout === undefined ? {} : { jobTimeout })
          }).pipe(Scope.provide(scope))
          const events = yield* runner.subscribe.pipe(Scope.provide(scope))
          yield* go.open
          let completed = 0
          while (completed < jobs) {
            for (const event of yield* PubSub.takeAll(events)) if (event.kind === "completed") completed++
          }
        }))
        yield* Scope.close(scope, Exit.void)
        yield* verify
        return { insertRate, ...round }
      })

    const clientId = "bench_ceiling"
    const fetch = (limit: number) => sql.unsafe<RawJobRow>(q.jobGetAvailable, ["default", limit, new Date(), clientId])
    const complete = (rows: ReadonlyArray<RawJobRow>) => {
      const n = rows.length
      const now = new Date()
      const ids = new Array<bigint>(n)
      for (let i = 0; i < n; i++) ids[i] = rows[i]!.id
      return sql.unsafe(q.jobSetStateIfRunningMany, [
        ids,
        Array<string>(n).fill("completed"),
        Array<boolean>(n).fill(false),
        Array<number>(n).fill(0),
        Array<boolean>(n).fill(false),
        Array<string>(n).fill("{}"),
        Array<boolean>(n).fill(true),
        Array<Date>(n).fill(now),
        Array<boolean>(n).fill(false),
        Array<string>(n).fill("{}"),
        Array<boolean>(n).fill(false),
        Array<Date>(n).fill(now),
        now,
        rows.map((r) => r.attempt),
        Array<string>(n).fill("")
      ])
    }

    const completeMinimal = (rows: ReadonlyArray<RawJobRow>) =>
      sql.unsafe(`UPDATE river_job SET state = 'completed', finalized_at = $2 WHERE id = ANY($1::bigint[])`, [
        rows.map((r) => r.id),
        new Date()
      ])

    /**
     * One ceiling round with fetch batches of `batch`: fetch batch 1; then, until a fetch comes
     * back empty, fetch batch N+1 and complete batch N at once (two pool connections).
     */
    const ceiling = (batch: number, completion: (rows: ReadonlyArray<RawJobRow>) => Effect.Effect<unknown, unknown> = complete) =>
      Effect.gen(function*() {
        yield* prepare
        const round = yield* timed(Effect.gen(function*() {
          let rows = yield* fetch(batch)
          while (rows.length > 0) {
            const [next] = yield* Effect.all([fetch(batch), completion(rows)], { concurrency: 2 })
            rows = next
          }
        }))
        yield* verify
        return round
      })

    const sweep: Array<W1Trial> = []
    const trial = (label: string, round: Round) => sweep.push({ label, ...round })
    // Warm-up: prepared statements, JIT.
    yield* ceiling(1_000)
    yield* library(1_000)
    yield* ceiling(1_000)
    yield* library(1_000)

    let best = { maxWorkers: maxWorkersList[0]!, rate: 0 }
    for (const maxWorkers of maxWorkersList) {
      const round = yield* library(maxWorkers)
      trial(`effect-river maxWorkers ${fmt(maxWorkers)}`, round)
      if (round.jobsPerSecond > best.rate) best = { maxWorkers, rate: round.jobsPerSecond }
    }
    let bestBatch = { batch: ceilingBatches[0]!, rate: 0 }
    for (const batch of ceilingBatches) {
      const round = yield* ceiling(batch)
      trial(`ceiling batch ${fmt(batch)}`, round)
      if (round.jobsPerSecond > bestBatch.rate) bestBatch = { batch, rate: round.jobsPerSecond }
    }
    trial(`(effect-river ${fmt(best.maxWorkers)}, jobTimeout none)`, yield* library(best.maxWorkers, "none"))
    trial(`(ceiling ${fmt(bestBatch.batch)}, minimal UPDATE)`, yield* ceiling(bestBatch.batch, completeMinimal))

    // The best of each, alternated, `rounds` times.
    const insertRates: Array<number> = []
    const lib: Array<Round> = []
    const raw: Array<Round> = []
    for (let r = 0; r < rounds; r++) {
      raw.push(yield* ceiling(bestBatch.batch))
      const round = yield* library(best.maxWorkers)
      insertRates.push(round.insertRate)
      lib.push(round)
    }
    return {
      jobs,
      insertBatch,
      rounds,
      fetchCooldown,
      fetchPollInterval,
      insert: median(insertRates),
      maxWorkers: best.maxWorkers,
      library: median(lib.map((r) => r.jobsPerSecond)),
      libraryCpuMicros: median(lib.map((r) => r.cpuMicros)),
      ceilingBatch: bestBatch.batch,
      ceiling: median(raw.map((r) => r.jobsPerSecond)),
      ceilingCpuMicros: median(raw.map((r) => r.cpuMicros)),
      sweep
    } satisfies W1Figures
  })

  return Effect.runPromise(
    program.pipe(Effect.scoped, Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Warn"))
  )
}

export const printW1 = (f: W1Figures) => {
  const line = (label: string, rate: number, cpu?: number) =>
    console.log(`  ${label.padEnd(40)}${fmt(rate).padStart(8)} jobs/s${cpu === undefined ? "" : `   ${fmt(cpu, 1).padStart(5)} µs CPU/job`}`)
  console.log(`\n## w1: ${fmt(f.jobs)} no-op jobs, inserted in batches of ${fmt(f.insertBatch)}, then worked`)
  console.log(`  settings: one queue, fetchCooldown ${f.fetchCooldown}, fetchPollInterval ${f.fetchPollInterval}, other runner settings default`)
  console.log(`  sweep, one round each (parenthesized: diagnostics, not in the ratio):`)
  for (const t of f.sweep) line(`  ${t.label}`, t.jobsPerSecond, t.cpuMicros)
  console.log(`  best of each, median of ${f.rounds} alternating rounds:`)
  line("insert (Client.insertMany)", f.insert)
  line(`work, effect-river (maxWorkers ${fmt(f.maxWorkers)})`, f.library, f.libraryCpuMicros)
  line(`work, raw ceiling (batch ${fmt(f.ceilingBatch)})`, f.ceiling, f.ceilingCpuMicros)
  console.log(`  ${"ratio".padEnd(40)}${fmt((100 * f.library) / f.ceiling, 1).padStart(8)} %  (target >= 90 %)`)
}
