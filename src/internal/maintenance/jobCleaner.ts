/**
 * The job cleaner (River §8.5, `JobCleaner`): the leader's service that deletes finalized jobs
 * past their state's retention (cancelled and completed 24 h, discarded 7 d by default;
 * `"forever"` keeps a state's jobs), every `interval` (30 s), in id-ordered batches.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Driver } from "../driver/driver.ts"
import type * as Loop from "../loop.ts"

/** How long finalized jobs are kept, per state. */
export interface Retention {
  /** `"forever"` keeps that state's jobs. */
  readonly cancelled: Duration.Duration | "forever"
  readonly completed: Duration.Duration | "forever"
  readonly discarded: Duration.Duration | "forever"
}

/** What the job cleaner needs. */
export interface JobCleanerConfig {
  readonly driver: Driver
  readonly retention: Retention
  readonly interval: Duration.Duration
  readonly batchSize: number
}

/** One pass; returns how many jobs it deleted. */
export const runOnce = (config: JobCleanerConfig) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const horizon = (keep: Duration.Duration | "forever") =>
      keep === "forever" ? undefined : new Date(now - Duration.toMillis(keep))
    let deleted = 0
    while (true) {
      const n = yield* config.driver.jobDeleteFinalized({
        cancelledBefore: horizon(config.retention.cancelled),
        completedBefore: horizon(config.retention.completed),
        discardedBefore: horizon(config.retention.discarded),
        max: config.batchSize
      })
      deleted += n
      if (n < config.batchSize) return deleted
    }
  })

/** The job cleaner as a leader service (first pass up to 1 s after the election). */
export const service = (config: JobCleanerConfig): Loop.Service => ({
  name: "job cleaner",
  interval: config.interval,
  start: "jitter",
  runOnce: runOnce(config)
})
