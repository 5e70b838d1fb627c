/**
 * pg-boss (12.x) as a benchmark contender, on its own database of the same server, through its
 * own APIs: `insert(name, jobs)` (its batch insert), `send` (one job), `work` (its workers),
 * `cancel`.
 *
 * A `PgBoss` instance is started before each round (its constructor defaults: pool of 10,
 * supervision and scheduling on) and stopped after it (the instance that inserts between rounds
 * runs no maintenance); the clock runs from `work()` — pg-boss
 * splits starting an instance from starting a worker, which effect-river and graphile-worker do
 * in one call. A drain counts the handled jobs, then polls `pgboss.job` every 5 ms until all are
 * `completed`; a windowed drain counts the `completed` rows when the window closes.
 */
import { PgBoss } from "pg-boss"
import pg from "pg"
import { waitFor } from "../guard.ts"
import { createDatabase, fmt } from "../util.ts"
import type { DrainRound, DrainSpec } from "./types.ts"

/** `work()` options (pg-boss's names) and the instance's LISTEN/NOTIFY switch. */
export interface PgBossSettings {
  /** Workers, each fetching and running one batch at a time (default 1). */
  readonly localConcurrency: number
  /** Jobs per fetch, handed to the handler together (default 1). */
  readonly batchSize?: number
  /** Seconds between polls (default 2, at least 0.5). */
  readonly pollingIntervalSeconds?: number
  /** Fetch again at once while fetches come back full (default false; needs batchSize > 1). */
  readonly burstWhenBatchFull?: boolean
  /** Constructor `useListenNotify` plus the queue's `notify` (default false). */
  readonly notify?: boolean
}

export const describePgBoss = (s: PgBossSettings): string =>
  [
    `localConcurrency ${fmt(s.localConcurrency)}`,
    s.batchSize === undefined ? undefined : `batchSize ${fmt(s.batchSize)}`,
    s.pollingIntervalSeconds === undefined ? undefined : `pollingIntervalSeconds ${s.pollingIntervalSeconds}`,
    s.burstWhenBatchFull === true ? "burstWhenBatchFull" : undefined,
    s.notify === true ? "useListenNotify + queue notify" : undefined
  ].filter((x) => x !== undefined).join(", ")

const QUEUE = "bench_noop"
const CANCEL_QUEUE = "bench_forever"

export interface PgBossBench {
  readonly url: string
  readonly reset: () => Promise<void>
  /** Inserts `jobs` jobs with `insert(name, jobs)` in batches of `batch`; returns jobs/s. */
  readonly insert: (jobs: number, batch: number) => Promise<number>
  readonly prepare: (jobs: number, batch: number) => Promise<number>
  readonly drain: (settings: PgBossSettings, spec: DrainSpec) => Promise<DrainRound>
  /** Idle workers, then `n` single `send` calls `spacing` ms apart; send → handler start, ms. */
  readonly latency: (settings: PgBossSettings, n: number, spacing: number) => Promise<ReadonlyArray<number>>
  /**
   * Cancel latency: `n` jobs that wait for their `signal` run in workers of one instance (queue
   * `heartbeatSeconds` 10, the minimum, workers `heartbeatRefreshSeconds` as given); a second
   * instance (own pool) cancels them one at a time, at a random phase of the heartbeat period.
   * A sample runs from just before `cancel` to
   * the job's abort event (ms). pg-boss aborts a running job's signal only when a heartbeat finds
   * the job no longer active; without heartbeats (the default) a running job is never told.
   */
  readonly cancel: (options: { readonly n: number; readonly heartbeatRefreshSeconds: number }) => Promise<ReadonlyArray<number>>
  readonly close: () => Promise<void>
}

export const makePgBoss = async (serverUrl: string, database = "bench_pgboss"): Promise<PgBossBench> => {
  const url = await createDatabase(serverUrl, database)
  const errors: Array<string> = []
  const instance = async (notify = false, background = true) => {
    const boss = new PgBoss({
      connectionString: url,
      ...(notify ? { useListenNotify: true } : {}),
      // The long-lived instance that inserts between rounds must not run pg-boss's maintenance
      // (supervision, cron, monitoring: once a minute by default) while other contenders are
      // measured; the instances that work a round keep the defaults.
      ...(background ? {} : { supervise: false, schedule: false })
    })
    boss.on("error", (e: Error) => void errors.push(e.message))
    await boss.start()
    return boss
  }
  const setup = await instance(false, false)
  await setup.createQueue(QUEUE)
  await setup.createQueue(`${QUEUE}_notify`, { notify: true })
  await setup.createQueue(CANCEL_QUEUE, { heartbeatSeconds: 10 })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  const completedCount = async (queue: string) =>
    (await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'",
      [queue]
    )).rows[0]!.n
  const check = () => {
    if (errors.length > 0) throw new Error(`pg-boss reported errors: ${errors.splice(0).slice(0, 3).join("; ")}`)
  }
  const workOptions = (s: PgBossSettings) => ({
    localConcurrency: s.localConcurrency,
    ...(s.batchSize === undefined ? {} : { batchSize: s.batchSize }),
    ...(s.pollingIntervalSeconds === undefined ? {} : { pollingIntervalSeconds: s.pollingIntervalSeconds }),
    ...(s.burstWhenBatchFull === undefined ? {} : { burstWhenBatchFull: s.burstWhenBatchFull })
  })

  const reset = async () => {
    await admin.query("TRUNCATE pgboss.job")
    await admin.query("CHECKPOINT")
  }
  const insert = async (jobs: number, batch: number) => {
    const t0 = performance.now()
    for (let s = 0; s < jobs; s += batch) {
      const n = Math.min(batch, jobs - s)
      await setup.insert(QUEUE, Array.from({ length: n }, (_, i) => ({ data: { n: s + i, label: "bench" } })))
    }
    return jobs / ((performance.now() - t0) / 1000)
  }

  return {
    url,
    reset,
    insert,
    prepare: async (jobs, batch) => {
      await reset()
      const rate = await insert(jobs, batch)
      await admin.query("CHECKPOINT")
      return rate
    },
    drain: async (settings, spec) => {
      const boss = await instance()
      let handled = 0
      try {
        const cpu0 = process.cpuUsage()
        const t0 = performance.now()
        await boss.work(QUEUE, workOptions(settings), async (jobs) => {
          handled += jobs.length
        })
        const label = `pg-boss drain (${describePgBoss(settings)})`
        await waitFor(() => handled >= spec.jobs || performance.now() - t0 >= (spec.windowMillis ?? Number.POSITIVE_INFINITY), {
          millis: spec.timeoutMillis,
          label,
          progress: () => `${fmt(handled)} of ${fmt(spec.jobs)} jobs handled`
        })
        let completed = spec.jobs
        if (handled >= spec.jobs) {
          await waitFor(async () => (await completedCount(QUEUE)) >= spec.jobs, {
            millis: spec.timeoutMillis,
            label: `${label}, completions`
          })
        } else {
          completed = await completedCount(QUEUE)
        }
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        check()
        return { completed, seconds, cpuMicros: (cpu.user + cpu.system) / Math.max(1, completed) }
      } finally {
        await boss.stop({ graceful: false })
      }
    },
    latency: async (settings, n, spacing) => {
      await reset()
      const notify = settings.notify === true
      const queue = notify ? `${QUEUE}_notify` : QUEUE
      const boss = await instance(notify)
      try {
        const arrived = new Array<number>(n)
        let count = 0
        await boss.work<{ i: number }>(queue, workOptions(settings), async (jobs) => {
          const at = performance.now()
          for (const job of jobs) {
            arrived[job.data.i] = at
            count++
          }
        })
        await new Promise((r) => setTimeout(r, 200))
        const started = new Array<number>(n)
        const t0 = performance.now()
        for (let i = 0; i < n; i++) {
          const wait = t0 + i * spacing - performance.now()
          if (wait > 0) await new Promise((r) => setTimeout(r, wait))
          started[i] = performance.now()
          await boss.send(queue, { i })
        }
        await waitFor(() => count >= n, {
          millis: 10_000,
          label: `pg-boss latency block (${describePgBoss(settings)})`,
          progress: () => `${count} of ${n} jobs arrived`
        })
        check()
        return started.map((s, i) => arrived[i]! - s)
      } finally {
        await boss.stop({ graceful: false })
      }
    },
    cancel: async ({ heartbeatRefreshSeconds, n }) => {
      await reset()
      const worker = await instance()
      const canceller = await instance()
      try {
        const started = new Map<string, number>()
        const aborted = new Map<string, number>()
        await worker.work(
          CANCEL_QUEUE,
          { localConcurrency: n, heartbeatRefreshSeconds, pollingIntervalSeconds: 0.5 },
          async ([job]) => {
            started.set(job!.id, performance.now())
            await new Promise<void>((resolve) => {
              const onAbort = () => {
                aborted.set(job!.id, performance.now())
                resolve()
              }
              if (job!.signal.aborted) onAbort()
              else job!.signal.addEventListener("abort", onAbort, { once: true })
            })
          }
        )
        const ids: Array<string> = []
        for (let i = 0; i < n; i++) ids.push((await canceller.send(CANCEL_QUEUE, { i }))!)
        await waitFor(() => started.size >= n, {
          millis: 20_000,
          label: "pg-boss cancel: starting the jobs",
          progress: () => `${started.size} of ${n} running`
        })
        const samples: Array<number> = []
        for (const id of ids) {
          const t0 = performance.now()
          await canceller.cancel(CANCEL_QUEUE, id)
          await waitFor(() => aborted.has(id), {
            millis: 15_000,
            label: `pg-boss cancel of a running job (heartbeatRefreshSeconds ${heartbeatRefreshSeconds})`,
            progress: () => "the job's signal was not aborted"
          })
          samples.push(aborted.get(id)! - t0)
          // A random pause: the heartbeat ticks on a fixed period, and cancels made at a fixed
          // delay after the previous abort would all land at the same phase of it.
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 1000 * heartbeatRefreshSeconds))
        }
        check()
        return samples
      } finally {
        await worker.stop({ graceful: false })
        await canceller.stop({ graceful: false })
      }
    },
    close: async () => {
      await admin.end()
      await setup.stop({ graceful: false })
    }
  }
}
