/**
 * The queue cleaner (River §8.6, `QueueCleaner`): the leader's service that deletes `river_queue`
 * rows no producer refreshed for the retention (24 h), every `interval` (1 h), in batches.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Driver } from "../driver/driver.ts"
import type * as Loop from "../loop.ts"

/** What the queue cleaner needs. */
export interface QueueCleanerConfig {
  readonly driver: Driver
  readonly retention: Duration.Duration
  readonly interval: Duration.Duration
  readonly batchSize: number
}

/** One pass; returns how many queue rows it deleted. */
export const runOnce = (config: QueueCleanerConfig) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let deleted = 0
    while (true) {
      const n = yield* config.driver.queueDeleteExpired({
        updatedBefore: new Date(now - Duration.toMillis(config.retention)),
        max: config.batchSize
      })
      deleted += n
      if (n < config.batchSize) return deleted
    }
  })

/** The queue cleaner as a leader service (first pass up to 1 s after the election). */
export const service = (config: QueueCleanerConfig): Loop.Service => ({
  name: "queue cleaner",
  interval: config.interval,
  start: "jitter",
  runOnce: runOnce(config)
})
