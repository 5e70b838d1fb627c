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
 *
 * Default settings and competitors (issue 16), in the same blocks, fewer samples each:
 *
 * - **effect-river, defaults**: `Runner.make` with `maxWorkers` 10 and nothing else, inserting
 *   through the runner's own client (`insertNotifyCooldown` 100 ms, `fetchCooldown` 100 ms).
 * - **graphile-worker, defaults**: `run({ concurrency: 10 })` (LISTEN/NOTIFY on by default),
 *   `WorkerUtils.addJob` per job.
 * - **pg-boss, defaults**: `work(name, { localConcurrency: 10 })` (polls every 2 s), `send` per
 *   job, 250 ms apart: its 10 workers take at most 5 jobs/s, and 20 ms spacing would measure a
 *   growing queue instead of a latency.
 * - **pg-boss, tuned**: the same with `useListenNotify` and the queue's `notify` on.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Queue, References, Schema } from "effect"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { describeGraphile, type GraphileSettings, makeGraphile } from "./contenders/graphile.ts"
import { describePgBoss, makePgBoss, type PgBossSettings } from "./contenders/pgboss.ts"
import { step } from "./guard.ts"
import * as Sql from "./sql.ts"
import { benchDatabase, fmt, percentile } from "./util.ts"

const Probe = JobKind.make("bench_latency", {
  args: Schema.Struct({ i: Schema.Int })
})

export interface W2Options {
  readonly inserts?: number
  readonly spacingMillis?: number
  readonly warmup?: number
  /** Samples of each default-settings and competitor row (split over the blocks). */
  readonly others?: number
  /** Samples of pg-boss at its defaults (250 ms apart). */
  readonly pgbossDefaultInserts?: number
}

/** One row of the default-settings / competitor table. */
export interface W2Row {
  readonly name: string
  readonly settings: string
  readonly spacingMillis: number
  readonly samples: number
  readonly latency: Percentiles
}

export const GRAPHILE_DEFAULTS: GraphileSettings = { concurrency: 10 }
export const PGBOSS_DEFAULTS: PgBossSettings = { localConcurrency: 10 }
export const PGBOSS_TUNED: PgBossSettings = { localConcurrency: 10, notify: true }
const PGBOSS_DEFAULT_SPACING = 250

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
  readonly defaults: { readonly effectRiver: W2Row; readonly graphile: W2Row; readonly pgboss: W2Row }
  readonly pgbossTuned: W2Row
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
  const others = options.others ?? 200
  const pgbossDefaultInserts = options.pgbossDefaultInserts ?? 40
  const { layer } = await benchDatabase(serverUrl, "bench_w2", 10)
  const graphile = await makeGraphile(serverUrl, "bench_w2_graphile")
  const pgboss = await makePgBoss(serverUrl, "bench_w2_pgboss")

  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
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
        const fetch = () => sql.unsafe<Sql.RawJobRow>(Sql.jobGetAvailable, ["default", 10, new Date(), "bench_ceiling"])
        yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
          yield* Queue.take(notifications)
          for (const row of yield* fetch()) arrived[(JSON.parse(row.args) as { i: number }).i] = performance.now()
        })))
        const payloads = [`{"queue": "default"}`]
        const insert = (i: number) => {
          const now = new Date()
          return sql.unsafe(Sql.jobInsertMany, [
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

    // --- effect-river at its defaults: maxWorkers 10, inserting through the runner's client.
    const libraryDefaults = (n: number) =>
      Effect.scoped(Effect.gen(function*() {
        yield* sql`TRUNCATE river_job`
        const arrived: Array<number> = []
        const worker = Worker.make(Probe, (job) =>
          Effect.sync(() => {
            arrived[job.args.i] = performance.now()
          }))
        const { client } = yield* Runner.make({ queues: { default: { maxWorkers: 10 } }, workers: [worker] })
        yield* Effect.sleep("200 millis")
        return yield* measure(n, (i) => client.insert(Probe, { i }), arrived)
      }))

    const share = (total: number, b: number) => Math.floor(total / blocks) + (b < total % blocks ? 1 : 0)

    step("w2: warm-up")
    yield* ceiling(warmup)
    yield* library(warmup)
    yield* libraryDefaults(Math.min(warmup, 20))
    yield* Effect.promise(() => graphile.latency(GRAPHILE_DEFAULTS, Math.min(warmup, 20), spacing))
    yield* Effect.promise(() => pgboss.latency(PGBOSS_TUNED, Math.min(warmup, 20), spacing))
    const raw: Samples = { latency: [], insert: [] }
    const lib: Samples = { latency: [], insert: [] }
    const libDefaults: Array<number> = []
    const gw: Array<number> = []
    const pbDefaults: Array<number> = []
    const pbTuned: Array<number> = []
    const add = (to: Samples, from: Samples) => {
      to.latency.push(...from.latency)
      to.insert.push(...from.insert)
    }
    for (let b = 0; b < blocks; b++) {
      const n = share(inserts, b)
      step(`w2: block ${b + 1} of ${blocks}, ceiling`)
      add(raw, yield* ceiling(n))
      step(`w2: block ${b + 1} of ${blocks}, effect-river tuned`)
      add(lib, yield* library(n))
      step(`w2: block ${b + 1} of ${blocks}, effect-river defaults`)
      libDefaults.push(...(yield* libraryDefaults(share(others, b))).latency)
      step(`w2: block ${b + 1} of ${blocks}, graphile-worker defaults`)
      gw.push(...(yield* Effect.promise(() => graphile.latency(GRAPHILE_DEFAULTS, share(others, b), spacing))))
      step(`w2: block ${b + 1} of ${blocks}, pg-boss tuned`)
      pbTuned.push(...(yield* Effect.promise(() => pgboss.latency(PGBOSS_TUNED, share(others, b), spacing))))
      step(`w2: block ${b + 1} of ${blocks}, pg-boss defaults`)
      pbDefaults.push(
        ...(yield* Effect.promise(() => pgboss.latency(PGBOSS_DEFAULTS, share(pgbossDefaultInserts, b), PGBOSS_DEFAULT_SPACING)))
      )
    }
    const row = (name: string, settings: string, spacingMillis: number, xs: ReadonlyArray<number>): W2Row => ({
      name,
      settings,
      spacingMillis,
      samples: xs.length,
      latency: summarize(xs)
    })
    return {
      inserts,
      spacingMillis: spacing,
      settings: `runner maxWorkers ${SETTINGS.maxWorkers}, fetchCooldown ${SETTINGS.fetchCooldown}, ` +
        `fetchPollInterval ${SETTINGS.fetchPollInterval}, completerFlushInterval ${SETTINGS.completerFlushInterval}; ` +
        `client insertNotifyCooldown ${SETTINGS.insertNotifyCooldown}; other settings default`,
      library: summarize(lib.latency),
      ceiling: summarize(raw.latency),
      libraryInsert: summarize(lib.insert),
      ceilingInsert: summarize(raw.insert),
      defaults: {
        effectRiver: row("effect-river", "runner maxWorkers 10, runner's client; everything else default", spacing, libDefaults),
        graphile: row("graphile-worker", describeGraphile(GRAPHILE_DEFAULTS), spacing, gw),
        pgboss: row("pg-boss", describePgBoss(PGBOSS_DEFAULTS), PGBOSS_DEFAULT_SPACING, pbDefaults)
      },
      pgbossTuned: row("pg-boss", describePgBoss(PGBOSS_TUNED), spacing, pbTuned)
    } satisfies W2Figures
  })

  try {
    return await Effect.runPromise(
      program.pipe(Effect.scoped, Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Warn"))
    )
  } finally {
    await graphile.close()
    await pgboss.close()
  }
}

export const printW2 = (f: W2Figures) => {
  const row = (label: string, p: Percentiles) =>
    `  ${label.padEnd(28)}${[p.p50, p.p95, p.p99, p.max].map((x) => fmt(x, 2).padStart(10)).join("")}  ms`
  console.log(`\n## w2: ${fmt(f.inserts)} single inserts ${f.spacingMillis} ms apart into an idle runner; insert call -> worker start`)
  console.log(`  settings: ${f.settings}`)
  console.log(`  ${"".padEnd(28)}${["p50", "p95", "p99", "max"].map((h) => h.padStart(10)).join("")}`)
  console.log(row("effect-river", f.library))
  console.log(row("raw ceiling (LISTEN+fetch)", f.ceiling))
  console.log(row("  insert call, effect-river", f.libraryInsert))
  console.log(row("  insert call, ceiling", f.ceilingInsert))
  console.log(`  ${"p50 difference".padEnd(28)}${fmt(f.library.p50 - f.ceiling.p50, 2).padStart(10)}  ms  (issue 16 goal <= 0.5 ms; p99 target <= 8 ms)`)
  console.log(`  default settings and competitors (same blocks):`)
  for (const [label, r] of [
    ["effect-river, defaults", f.defaults.effectRiver],
    ["graphile-worker, defaults", f.defaults.graphile],
    ["pg-boss, defaults", f.defaults.pgboss],
    ["pg-boss, tuned", f.pgbossTuned]
  ] as const) {
    console.log(`${row(label, r.latency)}   ${r.samples} samples ${r.spacingMillis} ms apart [${r.settings}]`)
  }
  const gap = f.defaults.effectRiver.latency.p50 - f.defaults.graphile.latency.p50
  console.log(
    `  ${"p50, defaults: ours - graph.".padEnd(28)}${fmt(gap, 2).padStart(10)}  ms  (issue 16 goal <= 1 ms; ` +
      `ratio ${(f.defaults.effectRiver.latency.p50 / f.defaults.graphile.latency.p50).toFixed(1)}×)`
  )
}
