/**
 * W2, latency: an idle runner, then single inserts 20 ms apart; the latency of one job is the time
 * from just before the insert call to the first line of its worker (`performance.now()` at both
 * ends, same process).
 *
 * - **effect-river**: a runner (one queue, maxWorkers 10) and an insert-only `Client` whose
 *   `insertNotifyCooldown` is 1 ms (River's 100 ms limit would hold back 4 inserts in 5 at this
 *   spacing); each job is one `client.insert(kind, { i })`. The path: insert statement carrying
 *   `pg_notify` → the runner's LISTEN connection → producer wake-up → fetch → job fiber → worker.
 * - **raw ceiling**: the same path with nothing around it: a LISTEN connection on
 *   `<schema>.river_insert` (`PgClient.listen`) whose every notification triggers one fetch
 *   statement (River's `jobGetAvailable`, LIMIT 10), and one insert statement per job (the same
 *   `INSERT … RETURNING` + `pg_notify` statement the client sends, prebuilt parameters, through
 *   `PgClient.unsafe`); latency ends when the fetched row arrives.
 *
 * Both run on the same database after a warm-up of each, in four alternating blocks (ceiling,
 * library, ceiling, …; a new runner per library block) so that drift on a shared machine hits both
 * alike. Also reported: how long the
 * insert call itself took (statement + commit; with fsync on, most of the latency).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Queue, References, Schema } from "effect"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { jobSql, type RawJobRow } from "../src/internal/driver/pg/job.ts"
import { benchDatabase, fmt, percentile } from "./util.ts"

const Probe = JobKind.make("bench_latency", {
  args: Schema.Struct({ i: Schema.Int })
})

export interface W2Options {
  readonly inserts?: number
  readonly spacingMillis?: number
  readonly warmup?: number
}

export interface Percentiles {
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

export interface W2Figures {
  readonly inserts: number
  readonly spacingMillis: number
  readonly settings: string
  readonly library: Percentiles
  readonly ceiling: Percentiles
  /** The insert call alone (until it returned). */
  readonly libraryInsert: Percentiles
  readonly ceilingInsert: Percentiles
}

interface Samples {
  readonly latency: Array<number>
  readonly insert: Array<number>
}

const summarize = (xs: ReadonlyArray<number>): Percentiles => ({
  p50: percentile(xs, 50),
  p95: percentile(xs, 95),
  p99: percentile(xs, 99),
  max: Math.max(...xs)
})

const SETTINGS = {
  maxWorkers: 10,
  fetchCooldown: "1 millis",
  fetchPollInterval: "1 second",
  // Write each outcome at once instead of batching for 50 ms: at one job per 20 ms there is
  // nothing to batch, and a delayed completion commit would land on a later insert's commit.
  completerFlushInterval: 0,
  insertNotifyCooldown: "1 millis"
} as const

export const runW2 = async (serverUrl: string, options: W2Options = {}): Promise<W2Figures> => {
  const inserts = options.inserts ?? 500
  const spacing = options.spacingMillis ?? 20
  const warmup = options.warmup ?? 50
  const blocks = 4
  const { layer } = await benchDatabase(serverUrl, "bench_w2", 10)

  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const q = jobSql(undefined, "")
    const channel = (yield* sql<{ c: string }>`SELECT current_schema() || '.river_insert' AS c`)[0]!.c

    /**
     * Runs `n` inserts `spacing` ms apart (on a fixed grid, so a slow insert does not shift the
     * next ones) and waits for every job to arrive; returns the latencies in ms.
     */
    const measure = (
      n: number,
      insert: (i: number) => Effect.Effect<unknown, unknown>,
      arrived: Array<number>
    ) =>
      Effect.gen(function*() {
        const started = new Array<number>(n)
        const returned = new Array<number>(n)
        arrived.length = 0
        const t0 = performance.now()
        for (let i = 0; i < n; i++) {
          const wait = t0 + i * spacing - performance.now()
          if (wait > 0) yield* Effect.sleep(wait)
          started[i] = performance.now()
          yield* insert(i)
          returned[i] = performance.now()
        }
        const deadline = performance.now() + 10_000
        while (arrived.filter((x) => x !== undefined).length < n) {
          if (performance.now() > deadline) return yield* Effect.die(new Error("w2: jobs did not all arrive within 10 s"))
          yield* Effect.sleep(5)
        }
        return {
          latency: started.map((s, i) => arrived[i]! - s),
          insert: started.map((s, i) => returned[i]! - s)
        } satisfies Samples
      })

    // --- raw ceiling: LISTEN + one fetch per notification; one insert statement per job.
    const ceiling = (n: number) =>
      Effect.scoped(Effect.gen(function*() {
        yield* sql`TRUNCATE river_job`
        const arrived: Array<number> = []
        const notifications = yield* sql.listen(channel)
        const fetch = () => sql.unsafe<RawJobRow>(q.jobGetAvailable, ["default", 10, new Date(), "bench_ceiling"])
        yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
          yield* Queue.take(notifications)
          for (const row of yield* fetch()) arrived[(JSON.parse(row.args) as { i: number }).i] = performance.now()
        })))
        const payloads = [`{"queue": "default"}`]
        const insert = (i: number) => {
          const now = new Date()
          return sql.unsafe(q.jobInsertMany, [
            [`{"i":${i}}`],
            now,
            ["bench_latency"],
            [25],
            ["{}"],
            [1],
            ["default"],
            [now],
            ["available"],
            [""],
            payloads
          ])
        }
        return yield* measure(n, insert, arrived)
      }))

    // --- effect-river: an idle runner and an insert-only client.
    const library = (n: number) =>
      Effect.scoped(Effect.gen(function*() {
        yield* sql`TRUNCATE river_job`
        const arrived: Array<number> = []
        const worker = Worker.make(Probe, (job) =>
          Effect.sync(() => {
            arrived[job.args.i] = performance.now()
          }))
        yield* Runner.make({
          queues: { default: { maxWorkers: SETTINGS.maxWorkers } },
          workers: [worker],
          fetchCooldown: SETTINGS.fetchCooldown,
          fetchPollInterval: SETTINGS.fetchPollInterval,
          completerFlushInterval: SETTINGS.completerFlushInterval
        })
        const client = yield* Client.make({ insertNotifyCooldown: SETTINGS.insertNotifyCooldown })
        yield* Effect.sleep("200 millis") // idle: the start-up fetch has found nothing
        return yield* measure(n, (i) => client.insert(Probe, { i }), arrived)
      }))

    yield* ceiling(warmup)
    yield* library(warmup)
    const raw: Samples = { latency: [], insert: [] }
    const lib: Samples = { latency: [], insert: [] }
    const add = (to: Samples, from: Samples) => {
      to.latency.push(...from.latency)
      to.insert.push(...from.insert)
    }
    for (let b = 0; b < blocks; b++) {
      const n = Math.floor(inserts / blocks) + (b < inserts % blocks ? 1 : 0)
      add(raw, yield* ceiling(n))
      add(lib, yield* library(n))
    }
    return {
      inserts,
      spacingMillis: spacing,
      settings: `runner maxWorkers ${SETTINGS.maxWorkers}, fetchCooldown ${SETTINGS.fetchCooldown}, ` +
        `fetchPollInterval ${SETTINGS.fetchPollInterval}, completerFlushInterval ${SETTINGS.completerFlushInterval}; ` +
        `client insertNotifyCooldown ${SETTINGS.insertNotifyCooldown}; other settings default`,
      library: summarize(lib.latency),
      ceiling: summarize(raw.latency),
      libraryInsert: summarize(lib.insert),
      ceilingInsert: summarize(raw.insert)
    } satisfies W2Figures
  })

  return Effect.runPromise(
    program.pipe(Effect.scoped, Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Warn"))
  )
}

export const printW2 = (f: W2Figures) => {
  const row = (label: string, p: Percentiles) =>
    `  ${label.padEnd(28)}${[p.p50, p.p95, p.p99, p.max].map((x) => fmt(x, 2).padStart(8)).join("")}  ms`
  console.log(`\n## w2: ${fmt(f.inserts)} single inserts ${f.spacingMillis} ms apart into an idle runner; insert call -> worker start`)
  console.log(`  settings: ${f.settings}`)
  console.log(`  ${"".padEnd(28)}${["p50", "p95", "p99", "max"].map((h) => h.padStart(8)).join("")}`)
  console.log(row("effect-river", f.library))
  console.log(row("raw ceiling (LISTEN+fetch)", f.ceiling))
  console.log(row("  insert call, effect-river", f.libraryInsert))
  console.log(row("  insert call, ceiling", f.ceilingInsert))
  console.log(`  ${"p50 difference".padEnd(28)}${fmt(f.library.p50 - f.ceiling.p50, 2).padStart(8)}  ms  (target <= 0.5 ms; p99 target <= 8 ms)`)
}
