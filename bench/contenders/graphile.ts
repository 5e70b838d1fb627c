/**
 * graphile-worker (0.18) as a benchmark contender, on its own database of the same server,
 * through its own APIs: `WorkerUtils.addJobs` (its batch insert), `WorkerUtils.addJob` (one job),
 * and `run()` with a task list (its worker pool).
 *
 * Completion: graphile-worker deletes a job when it completes, and batches or defers the delete
 * (`completeJobBatchDelay`), so the handler running is not the end. A drain counts the handlers,
 * then polls the table every 5 ms until it is empty: the clock stops when every completion is
 * committed. A windowed drain counts the rows left when the window closes.
 */
import { Logger, makeWorkerUtils, run, type WorkerUtils } from "graphile-worker"
import pg from "pg"
import { waitFor } from "../guard.ts"
import { createDatabase, fmt } from "../util.ts"
import type { DrainRound, DrainSpec } from "./types.ts"

/** The settings a drain or a latency block runs with (graphile-worker's names). */
export interface GraphileSettings {
  /** Jobs run at once (`concurrency`; default 1). */
  readonly concurrency: number
  /** `pollInterval`, ms (default 2,000; new jobs are announced by LISTEN/NOTIFY). */
  readonly pollInterval?: number
  /** `preset.worker.localQueue.size` (default -1: off; each worker fetches its own job). */
  readonly localQueueSize?: number
  /** `preset.worker.completeJobBatchDelay`, ms (default -1: one DELETE per job). */
  readonly completeJobBatchDelay?: number
  /** `maxPoolSize` (default 10). */
  readonly maxPoolSize?: number
}

export const describeGraphile = (s: GraphileSettings): string =>
  [
    `concurrency ${fmt(s.concurrency)}`,
    s.localQueueSize === undefined ? undefined : `localQueue.size ${fmt(s.localQueueSize)}`,
    s.completeJobBatchDelay === undefined ? undefined : `completeJobBatchDelay ${s.completeJobBatchDelay}`,
    s.pollInterval === undefined ? undefined : `pollInterval ${s.pollInterval} ms`,
    s.maxPoolSize === undefined ? undefined : `maxPoolSize ${s.maxPoolSize}`
  ].filter((x) => x !== undefined).join(", ")

const silent = new Logger(() => () => {})
const TASK = "bench_noop"

export interface GraphileBench {
  readonly url: string
  /** Empty job table, CHECKPOINT. */
  readonly reset: () => Promise<void>
  /** Inserts `jobs` jobs with `addJobs` in batches of `batch`; returns jobs/s. */
  readonly insert: (jobs: number, batch: number) => Promise<number>
  /** reset + insert + CHECKPOINT; returns the insert rate. */
  readonly prepare: (jobs: number, batch: number) => Promise<number>
  readonly drain: (settings: GraphileSettings, spec: DrainSpec) => Promise<DrainRound>
  /**
   * An idle pool, then `n` single `addJob` calls `spacing` ms apart; the latency of job i runs
   * from just before its `addJob` to the first line of its task (ms).
   */
  readonly latency: (settings: GraphileSettings, n: number, spacing: number) => Promise<ReadonlyArray<number>>
  readonly close: () => Promise<void>
}

export const makeGraphile = async (serverUrl: string, database = "bench_graphile"): Promise<GraphileBench> => {
  const url = await createDatabase(serverUrl, database)
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, logger: silent })
  await utils.migrate()
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  const remaining = async () =>
    (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")).rows[0]!.n
  const empty = async () =>
    !(await admin.query<{ e: boolean }>("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS e")).rows[0]!.e

  const start = (settings: GraphileSettings, task: (payload: unknown) => void) =>
    run({
      connectionString: url,
      logger: silent,
      noHandleSignals: true,
      crontab: "",
      concurrency: settings.concurrency,
      ...(settings.pollInterval === undefined ? {} : { pollInterval: settings.pollInterval }),
      ...(settings.maxPoolSize === undefined ? {} : { maxPoolSize: settings.maxPoolSize }),
      taskList: { [TASK]: async (payload) => task(payload) },
      preset: {
        worker: {
          ...(settings.localQueueSize === undefined ? {} : { localQueue: { size: settings.localQueueSize } }),
          ...(settings.completeJobBatchDelay === undefined ? {} : { completeJobBatchDelay: settings.completeJobBatchDelay })
        }
      }
    })

  const reset = async () => {
    await admin.query("TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues CASCADE")
    await admin.query("CHECKPOINT")
  }
  const insert = async (jobs: number, batch: number) => {
    const t0 = performance.now()
    for (let s = 0; s < jobs; s += batch) {
      const n = Math.min(batch, jobs - s)
      await utils.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: TASK, payload: { n: s + i, label: "bench" } })))
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
      let handled = 0
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const runner = await start(settings, () => void handled++)
      try {
        const label = `graphile-worker drain (${describeGraphile(settings)})`
        await waitFor(() => handled >= spec.jobs || performance.now() - t0 >= (spec.windowMillis ?? Number.POSITIVE_INFINITY), {
          millis: spec.timeoutMillis,
          label,
          progress: () => `${fmt(handled)} of ${fmt(spec.jobs)} tasks ran`
        })
        let completed = spec.jobs
        if (handled >= spec.jobs) {
          await waitFor(empty, {
            millis: spec.timeoutMillis,
            label: `${label}, completions`,
            progress: () => "jobs left in graphile_worker._private_jobs"
          })
        } else {
          completed = spec.jobs - (await remaining())
        }
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        return { completed, seconds, cpuMicros: (cpu.user + cpu.system) / Math.max(1, completed) }
      } finally {
        await runner.stop()
      }
    },
    latency: async (settings, n, spacing) => {
      await reset()
      const arrived = new Array<number>(n)
      let count = 0
      const runner = await start(settings, (payload) => {
        arrived[(payload as { i: number }).i] = performance.now()
        count++
      })
      try {
        await new Promise((r) => setTimeout(r, 200))
        const started = new Array<number>(n)
        const t0 = performance.now()
        for (let i = 0; i < n; i++) {
          const wait = t0 + i * spacing - performance.now()
          if (wait > 0) await new Promise((r) => setTimeout(r, wait))
          started[i] = performance.now()
          await utils.addJob(TASK, { i })
        }
        await waitFor(() => count >= n, {
          millis: 10_000,
          label: `graphile-worker latency block (${describeGraphile(settings)})`,
          progress: () => `${count} of ${n} jobs arrived`
        })
        return started.map((s, i) => arrived[i]! - s)
      } finally {
        await runner.stop()
      }
    },
    close: async () => {
      await admin.end()
      await utils.release()
    }
  }
}
