/**
 * Flow control across processes: three runner processes (runner-process.ts) on one queue with a
 * global limit, with partitions, with a rate limit; then with a runner SIGKILLed mid-run and with
 * PostgreSQL restarted mid-run.
 *
 * Every handler records its start and end in `flow_log` (the database's clock, autocommit), so
 * its interval lies inside the time its job was `running`. An attempt that never recorded its end
 * (its runner was killed, or the database went away) ends when its attempt's error says it ended
 * (the rescue, or the failure). The most intervals open at once, overall and per customer, must
 * never exceed the limit. Each scenario prints one `OUTCOME` line with what it measured.
 */
import { describe, expect, inject, it } from "vitest"
import {
  count,
  type Db,
  disposers,
  freshDatabase,
  killRunner,
  registerCleanup,
  SCHEMA,
  settings,
  sleep,
  startRunners,
  stopRunners,
  waitFor
} from "./harness.ts"
import { Flow, type RunnerConfig } from "./kinds.ts"
import { type RestartablePostgres, startRestartablePostgres } from "./pg.ts"

registerCleanup()

const ids = (prefix: string) => [1, 2, 3].map((i) => `${prefix}-${i}`)

interface Interval {
  readonly start: number
  readonly end: number
  readonly customer: string
}

/** Every handler interval: its recorded end, else its attempt's error time, else the job's finalization. */
const intervals = async (db: Db): Promise<ReadonlyArray<Interval>> =>
  (await db.q<{ s: Date; e: Date | null; customer: string }>(
    `SELECT l.started_at AS s, l.customer,
       coalesce(
         l.ended_at,
         (SELECT (e ->> 'at')::timestamptz FROM unnest(j.errors) AS e WHERE (e ->> 'attempt')::int = l.attempt LIMIT 1),
         j.finalized_at
       ) AS e
     FROM ${SCHEMA}.flow_log l JOIN ${SCHEMA}.river_job j ON j.id = l.job_id`
  )).map((r) => ({
    start: new Date(r.s).getTime(),
    end: r.e === null ? Number.POSITIVE_INFINITY : new Date(r.e).getTime(),
    customer: r.customer
  }))

/** The most intervals open at once (an end at the instant of a start closes first). */
const peak = (list: ReadonlyArray<Interval>): number => {
  const events = list.flatMap((i) => [[i.start, 1] as const, [i.end, -1] as const])
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let open = 0
  let max = 0
  for (const [, delta] of events) {
    open += delta
    max = Math.max(max, open)
  }
  return max
}

const peakPerCustomer = (list: ReadonlyArray<Interval>): number => {
  const by = new Map<string, Array<Interval>>()
  for (const i of list) by.set(i.customer, [...(by.get(i.customer) ?? []), i])
  return Math.max(0, ...[...by.values()].map(peak))
}

/**
 * How long a freed slot stays empty under a binding limit: for each start after the first
 * `limit`, the time since the latest end before it (p50 and p90, ms).
 */
const slotLatency = (list: ReadonlyArray<Interval>, limit: number) => {
  const starts = list.map((i) => i.start).sort((a, b) => a - b)
  const ends = list.map((i) => i.end).filter(Number.isFinite).sort((a, b) => a - b)
  const gaps: Array<number> = []
  let e = 0
  for (const start of starts.slice(limit)) {
    while (e + 1 < ends.length && ends[e + 1]! <= start) e++
    if (ends[e]! <= start) gaps.push(start - ends[e]!)
  }
  gaps.sort((a, b) => a - b)
  const at = (q: number) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] ?? 0
  return { p50: Math.round(at(0.5)), p90: Math.round(at(0.9)) }
}

const outcome = (scenario: string, fields: Record<string, unknown>) =>
  console.log(`OUTCOME flow-${scenario}: ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(" ")}`)

const limited = (url: string, id: string, limits: NonNullable<RunnerConfig["limits"]>, overrides: Partial<RunnerConfig> = {}) =>
  settings(url, id, { maxWorkers: 10, fetchPollInterval: 1_000, limits, ...overrides })

const completed = (db: Db, total: number, timeoutMs: number) =>
  waitFor(`${total} completed jobs`, timeoutMs, async () => (await count(db, "river_job WHERE state = 'completed'")) === total, 200)

describe("flow control across three runner processes", () => {
  const serverUrl = inject("DATABASE_URL")

  it("globalLimit 5: never more than 5 handlers at once over 2,000 jobs, and the limit is used", async () => {
    const db = await freshDatabase(serverUrl, "flow_global")
    const runners = await startRunners(ids("global").map((id) => limited(db.url, id, { globalLimit: 5 })))
    const total = 2_000
    const ms = 20
    const started = Date.now()
    await db.insert(Array.from({ length: total }, (_, n) => Flow.of({ customer: "all", n, ms })))
    await completed(db, total, 120_000)
    const elapsed = Date.now() - started
    const list = await intervals(db)
    expect(list.length).toBe(total)
    expect(peak(list)).toBe(5)
    const perRunner = await db.q<{ runner_id: string; n: number }>(
      `SELECT runner_id, count(*)::int AS n FROM ${SCHEMA}.flow_log GROUP BY 1 ORDER BY 1`
    )
    // Every job ran once, on one of the three. How they spread is not a guarantee: a runner
    // completing a job starts the next in its slot (the slot hand-over), so the runners that hold
    // the slots of a busy queue keep them (the others take over when one stops or dies: below).
    expect(perRunner.reduce((n, r) => n + r.n, 0)).toBe(total)
    outcome("global", {
      jobs: total,
      peak: peak(list),
      jobs_per_s: Math.round(total / (elapsed / 1_000)),
      ideal_jobs_per_s: 5 * (1_000 / ms),
      slot_latency_p50_ms: slotLatency(list, 5).p50,
      slot_latency_p90_ms: slotLatency(list, 5).p90,
      per_runner: perRunner.map((r) => r.n).join("/")
    })
    expect(await stopRunners(runners)).toEqual([0, 0, 0])
  }, 180_000)

  it("partition by customer, limit 1: one job per customer at a time, customers in parallel", async () => {
    const db = await freshDatabase(serverUrl, "flow_part")
    const runners = await startRunners(
      ids("part").map((id) => limited(db.url, id, { globalLimit: 1, partition: { byArgs: ["customer"] } }))
    )
    const customers = 8
    const each = 40
    const total = customers * each
    await db.insert(
      // Customer 0's backlog first in fetch order: the others must not wait behind it.
      Array.from({ length: total }, (_, n) => Flow.of({ customer: `c${Math.floor(n / each)}`, n, ms: 20 }))
    )
    await completed(db, total, 120_000)
    const list = await intervals(db)
    expect(list.length).toBe(total)
    expect(peakPerCustomer(list)).toBe(1)
    expect(peak(list)).toBeGreaterThan(1)
    outcome("partition", { jobs: total, customers, peak_per_customer: peakPerCustomer(list), peak: peak(list) })
    expect(await stopRunners(runners)).toEqual([0, 0, 0])
  }, 180_000)

  it("rateLimit 25 per second: the starts in every one-second window stay within 25", async () => {
    const db = await freshDatabase(serverUrl, "flow_rate")
    const runners = await startRunners(ids("rate").map((id) => limited(db.url, id, { rateLimit: { limit: 25, per: 1_000 } })))
    const total = 150
    await db.insert(Array.from({ length: total }, (_, n) => Flow.of({ customer: "all", n, ms: 0 })))
    await completed(db, total, 120_000)
    const starts = (await db.q<{ at: Date }>(`SELECT attempted_at AS at FROM ${SCHEMA}.river_job ORDER BY attempted_at`))
      .map((r) => new Date(r.at).getTime())
    expect(starts.length).toBe(total)
    let worst = 0
    for (let i = 0; i < starts.length; i++) {
      let j = i
      while (j < starts.length && starts[j]! - starts[i]! < 1_000) j++
      worst = Math.max(worst, j - i)
    }
    expect(worst).toBeLessThanOrEqual(25)
    outcome("rate", { jobs: total, worst_window: worst, span_ms: starts.at(-1)! - starts[0]! })
    expect(await stopRunners(runners)).toEqual([0, 0, 0])
  }, 180_000)

  it("a runner SIGKILLed mid-run: its slots come back when its jobs are rescued; the limit holds throughout", async () => {
    const db = await freshDatabase(serverUrl, "flow_kill")
    const timings = { jobTimeout: 5_000, rescueStuckJobsAfter: 6_000, rescuerInterval: 500 }
    const [victimId, ...otherIds] = ids("kill")
    // The victim runs alone and is killed while it runs a long job: that job holds a slot until
    // the rescuer takes it, while the others work the rest with the four slots left.
    const [victim] = await startRunners([limited(db.url, victimId!, { globalLimit: 5 }, timings)])
    const [long] = await db.insert([Flow.of({ customer: "long", n: -1, ms: 4_000 })])
    await waitFor("the victim running the long job", 60_000, async () =>
      (await count(db, "flow_log WHERE job_id = $1 AND runner_id = $2 AND ended_at IS NULL", [long, victimId])) === 1, 20)
    await killRunner(victim!)
    const others = await startRunners(otherIds.map((id) => limited(db.url, id, { globalLimit: 5 }, timings)))
    const total = 300
    await db.insert(Array.from({ length: total }, (_, n) => Flow.of({ customer: "all", n, ms: 50 })))
    await completed(db, total + 1, 150_000)
    const list = await intervals(db)
    const [rescue] = await db.q<{ n: number }>(
      `SELECT coalesce((metadata ->> 'river:rescue_count')::int, 0) AS n FROM ${SCHEMA}.river_job WHERE id = $1`,
      [long]
    )
    expect(rescue!.n).toBe(1)
    expect(list.every((i) => Number.isFinite(i.end))).toBe(true)
    expect(peak(list)).toBeLessThanOrEqual(5)
    outcome("kill", { jobs: total + 1, peak: peak(list), attempts: list.length, long_job_rescues: rescue!.n })
    expect(await stopRunners(others)).toEqual([0, 0])
  }, 240_000)

  it("PostgreSQL restarted mid-run: the limit holds before and after, every job completes", async () => {
    let server: RestartablePostgres | undefined
    disposers.push(async () => {
      await server?.destroy()
    })
    server = await startRestartablePostgres()
    const db = await freshDatabase(server.url, "flow_restart")
    const timings = { jobTimeout: 2_000, rescueStuckJobsAfter: 3_000, rescuerInterval: 500 }
    const runners = await startRunners(ids("restart").map((id) => limited(db.url, id, { globalLimit: 5 }, timings)))
    const total = 600
    await db.insert(Array.from({ length: total }, (_, n) => Flow.of({ customer: "all", n, ms: 30 })))
    await waitFor("100 handler starts", 60_000, async () => (await count(db, "flow_log")) >= 100, 50)
    await server.stop()
    await sleep(2_000)
    await server.start()
    await completed(db, total, 180_000)
    const list = await intervals(db)
    expect(peak(list)).toBeLessThanOrEqual(5)
    outcome("restart", { jobs: total, peak: peak(list), attempts: list.length })
    expect(await stopRunners(runners)).toEqual([0, 0, 0])
  }, 300_000)
})
