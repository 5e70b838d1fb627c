/**
 * Burst cost (issue 16): what a burst of inserts costs the database while a runner listens. An idle
 * runner (one queue, `maxWorkers` 10, a no-op worker, pool of callers + 14), then 20,000 single `client.insert` calls
 * from 50 concurrent callers through the runner's own client, as fast as they go. Counted from
 * the first insert to the last one's return:
 *
 * - **notifications**: `river_insert` notifications, received by a LISTEN connection of our own
 *   (node-postgres) on the same channel as the runner (up to 100 ms after the last insert
 *   returned, for delivery);
 * - **fetches**: the runner's locking fetch statements, from `pg_stat_statements` (calls and rows
 *   of statements on `river_job` with `SKIP LOCKED` that set `attempted_by`), tracked for this
 *   database only (`pg_stat_statements.track` is `none` elsewhere) and reset just before the
 *   burst. Without the extension (a DATABASE_URL server that does not preload it) fetches are
 *   not counted.
 *
 * Two runners, each on a fresh database: the runtime's **defaults** (`fetchCooldown` and
 * `insertNotifyCooldown` 100 ms) and the **W2 latency settings** (`fetchCooldown` 1 ms,
 * `insertNotifyCooldown` 1 ms, `completerFlushInterval` 0): what a latency-tuned runner costs under
 * a burst. Later runtime changes should keep both figures of the defaults at or below these.
 */
import { PgClient } from "@effect/sql-pg"
import { type Duration, Effect, References } from "effect"
import pg from "pg"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { Noop } from "./contenders/river.ts"
import { step } from "./guard.ts"
import { benchDatabase, fmt } from "./util.ts"

export interface BurstVariant {
  readonly label: string
  readonly options: {
    readonly fetchCooldown?: Duration.Input & string
    readonly insertNotifyCooldown?: Duration.Input & string
    readonly completerFlushInterval?: Duration.Input & number
  }
}

export const BURST_VARIANTS: ReadonlyArray<BurstVariant> = [
  { label: "defaults", options: {} },
  {
    label: "W2 latency settings",
    options: { fetchCooldown: "1 millis", insertNotifyCooldown: "1 millis", completerFlushInterval: 0 }
  }
]

export interface BurstRun {
  readonly label: string
  readonly settings: string
  readonly jobs: number
  readonly seconds: number
  readonly notifications: number
  /** undefined: pg_stat_statements not available. */
  readonly fetches: { readonly calls: number; readonly rows: number } | undefined
  /** Jobs completed by the end of the burst. */
  readonly completed: number
}

export interface BurstFigures {
  readonly callers: number
  readonly runs: ReadonlyArray<BurstRun>
}

const FETCH_FILTER = `query ILIKE '%river_job%' AND query ILIKE '%SKIP LOCKED%' AND query ILIKE '%attempted_by%'`

const once = async (serverUrl: string, variant: BurstVariant, jobs: number, callers: number): Promise<BurstRun> => {
  const name = "bench_burst"
  const { layer, url } = await benchDatabase(serverUrl, name, callers + 14)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  let tracked = true
  try {
    await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    await admin.query(`ALTER DATABASE "${name}" SET pg_stat_statements.track = 'top'`)
    await admin.query("SET pg_stat_statements.track = 'top'")
  } catch {
    tracked = false
  }
  const listener = new pg.Client({ connectionString: url })
  await listener.connect()
  const received: Array<number> = []
  listener.on("notification", (n) => {
    if (n.channel.endsWith(".river_insert")) received.push(performance.now())
  })
  await listener.query(`LISTEN "public.river_insert"`)
  try {
    return await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const { client } = yield* Runner.make({
          queues: { default: { maxWorkers: 10 } },
          workers: [Worker.make(Noop, () => Effect.void)],
          ...variant.options
        })
        yield* Effect.sleep("500 millis") // idle: start-up fetches done
        if (tracked) yield* Effect.promise(() => admin.query("SELECT pg_stat_statements_reset()"))
        received.length = 0
        const t0 = performance.now()
        yield* Effect.forEach(
          Array.from({ length: jobs }, (_, i) => i),
          (n) => client.insert(Noop, { n }),
          { concurrency: callers, discard: true }
        )
        const t1 = performance.now()
        const fetches = tracked
          ? yield* Effect.promise(async () => {
            const r = await admin.query<{ calls: string | null; rows: string | null }>(
              `SELECT sum(calls)::text AS calls, sum(rows)::text AS rows FROM pg_stat_statements
               WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ${FETCH_FILTER}`
            )
            return { calls: Number(r.rows[0]!.calls ?? 0), rows: Number(r.rows[0]!.rows ?? 0) }
          })
          : undefined
        const [{ n: completed }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM river_job WHERE state = 'completed'`) as [{ n: number }]
        yield* Effect.sleep("100 millis")
        const notifications = received.filter((at) => at <= t1 + 100).length
        return {
          label: variant.label,
          settings: `maxWorkers 10${
            Object.entries(variant.options).map(([k, v]) => `, ${k} ${v}`).join("")
          }; other settings default; ${callers} callers`,
          jobs,
          seconds: (t1 - t0) / 1000,
          notifications,
          fetches,
          completed
        } satisfies BurstRun
      })).pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Warn"))
    )
  } finally {
    await listener.end()
    await admin.end()
  }
}

export const runBurst = async (
  serverUrl: string,
  options: { readonly jobs?: number; readonly callers?: number } = {}
): Promise<BurstFigures> => {
  const jobs = options.jobs ?? 20_000
  const callers = options.callers ?? 50
  const runs: Array<BurstRun> = []
  for (const variant of BURST_VARIANTS) {
    step(`burst: ${variant.label}`)
    runs.push(await once(serverUrl, variant, jobs, callers))
  }
  return { callers, runs }
}

export const perSecond = (n: number, seconds: number) => n / seconds

export const printBurst = (f: BurstFigures) => {
  const first = f.runs[0]!
  console.log(
    `\n## burst: ${fmt(first.jobs)} single inserts from ${f.callers} concurrent callers into a listening runner; cost while they run`
  )
  for (const r of f.runs) {
    console.log(`  runner ${r.label} [${r.settings}]`)
    console.log(`    inserts             ${fmt(r.jobs).padStart(8)} in ${r.seconds.toFixed(2)} s = ${fmt(r.jobs / r.seconds).padStart(6)} /s`)
    console.log(
      `    notifications       ${fmt(r.notifications).padStart(8)}            = ${
        fmt(perSecond(r.notifications, r.seconds), 1).padStart(6)
      } /s   (${fmt((1000 * r.notifications) / r.jobs, 1)} per 1,000 inserts)`
    )
    if (r.fetches === undefined) console.log("    fetches             n/a (pg_stat_statements not loaded by this server)")
    else {
      console.log(
        `    fetches             ${fmt(r.fetches.calls).padStart(8)}            = ${
          fmt(perSecond(r.fetches.calls, r.seconds), 1).padStart(6)
        } /s   (${fmt(r.fetches.rows / Math.max(1, r.fetches.calls), 1)} jobs per fetch)`
      )
    }
    console.log(`    completed meanwhile ${fmt(r.completed).padStart(8)}`)
  }
  console.log("  (issue 16: later runtime changes keep the defaults' fetches/s and notifications/s at or below these)")
}
