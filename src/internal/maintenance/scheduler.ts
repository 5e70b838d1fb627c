/**
 * The job scheduler (River §8.3, `JobScheduler`): the leader's service that, every `interval`
 * (5 s, from the election on), makes `retryable` and `scheduled` jobs due within the next
 * `interval` `available`, in batches, and notifies their queues in the same statement (unique-key
 * conflicts are resolved in that statement too: `Driver.jobSchedule`). `scheduled_at` is kept, so
 * fetches still wait until each job is due. A failing pass is logged and retried at the next
 * interval (no backoff: retries must not wait longer than the database's outage).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Driver } from "../driver/driver.ts"
import type * as Loop from "../loop.ts"

/** What the scheduler needs. */
export interface SchedulerConfig {
  readonly driver: Driver
  readonly interval: Duration.Duration
  readonly batchSize?: number | undefined
  /** Called with the queues that got jobs (local producers fetch at once). */
  readonly onScheduled: (queues: ReadonlyArray<string>) => Effect.Effect<void>
}

/** One pass: promotes due jobs batch by batch; returns how many. */
export const runOnce = (config: SchedulerConfig) =>
  Effect.gen(function*() {
    const limit = config.batchSize ?? 10_000
    const intervalMillis = Duration.toMillis(config.interval)
    let total = 0
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const result = yield* config.driver.jobSchedule({
        now: new Date(now),
        scheduleBefore: new Date(now + intervalMillis),
        notifyBefore: new Date(now + 5),
        max: limit
      })
      const scheduled = result.scheduled + result.discarded
      total += scheduled
      if (result.queues.length > 0) yield* config.onScheduled(result.queues)
      if (scheduled < limit) return total
    }
  })

/** The scheduler as a leader service. */
export const service = (config: SchedulerConfig): Loop.Service => ({
  name: "scheduler",
  interval: config.interval,
  start: "now",
  backoff: false,
  runOnce: runOnce(config)
})
