/**
 * The periodic job enqueuer (River §8.4, `PeriodicJobEnqueuer`, improved): the leader's service
 * that, on gaining leadership, reads each
 * periodic job's last run from the database (the newest job with its `river:periodic_job_id`),
 * inserts at once a run that fell due while nobody led (once, not every missed one), then sleeps
 * until the earliest planned run, inserts everything due in one statement — `available`, with
 * `scheduled_at` at the planned time, as River inserts periodic jobs — and plans the next runs.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Client from "../../Client.ts"
import type { InsertRequest } from "../../JobKind.ts"
import type { PeriodicJob } from "../../PeriodicJob.ts"
import { AvailableAt } from "../availableAt.ts"
import type { Driver } from "../driver/driver.ts"
import type * as Loop from "../loop.ts"

/** River's metadata key naming a run's periodic job. */
export const PERIODIC_ID_KEY = "river:periodic_job_id"

/** What the enqueuer needs. */
export interface EnqueuerConfig {
  readonly driver: Driver
  readonly client: Client.Client["Service"]
  readonly jobs: ReadonlyArray<PeriodicJob>
}

/**
 * A run as River's enqueuer inserts it: metadata `periodic: true` and `river:periodic_job_id`,
 * `available` with `scheduled_at` at the planned time (unless the job's own options schedule it).
 */
const periodicRun = (request: InsertRequest, id: string, at: number): InsertRequest => ({
  ...request,
  options: {
    ...request.options,
    metadata: { ...request.options?.metadata, periodic: true, [PERIODIC_ID_KEY]: id }
  },
  ...(request.options?.scheduledAt === undefined ? { [AvailableAt]: new Date(at) } : {})
})

const insertEach = (config: EnqueuerConfig, requests: ReadonlyArray<InsertRequest>, ids: ReadonlyArray<string>) =>
  Effect.forEach(requests, (request, i) =>
    config.client.insertMany([request]).pipe(
      Effect.catchCause((cause) =>
        Effect.logWarning(`effect-river: inserting periodic job ${ids[i]} failed`, Cause.pretty(cause))
      )
    ), { discard: true })

/** The enqueuer's loop: runs for as long as the leadership lasts. */
export const runOnce = (config: EnqueuerConfig) =>
  Effect.gen(function*() {
    if (config.jobs.length === 0) return
    const plan = new Map<string, number>()
    const start = yield* Clock.currentTimeMillis
    for (const job of config.jobs) {
      const latest = yield* config.driver.jobGetLatestScheduledAt({ metadataContains: { [PERIODIC_ID_KEY]: job.id } })
      const last = latest?.getTime()
      if (last === undefined) {
        plan.set(job.id, job.runOnStart ? start : job.next(start))
      } else {
        const due = job.next(last)
        // A run that fell due while nobody led is made up for once, now.
        plan.set(job.id, due <= start ? start : due)
      }
    }
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const earliest = Math.min(...plan.values())
      if (earliest > now) {
        yield* Effect.sleep(earliest - now)
        continue
      }
      const requests: Array<InsertRequest> = []
      const ids: Array<string> = []
      for (const job of config.jobs) {
        const at = plan.get(job.id)!
        if (at > now) continue
        let next = job.next(at)
        while (next <= now) next = job.next(next) // runs missed in between are not all replayed
        plan.set(job.id, next)
        const request = yield* Effect.sync(job.job).pipe(
          Effect.catchDefect((defect) =>
            Effect.as(Effect.logWarning(`effect-river: periodic job ${job.id} failed to build its job`, defect), undefined)
          )
        )
        if (request !== undefined) {
          requests.push(periodicRun(request, job.id, at))
          ids.push(job.id)
        }
      }
      if (requests.length > 0) {
        yield* config.client.insertMany(requests).pipe(
          // One periodic job building invalid args or options must not keep the others due with
          // it from being inserted: insert them one by one, and name the one that failed.
          Effect.catchTags({
            InvalidArgs: () => insertEach(config, requests, ids),
            InvalidOptions: () => insertEach(config, requests, ids)
          }),
          Effect.catchCause((cause) => Effect.logWarning("effect-river: inserting periodic jobs failed", Cause.pretty(cause)))
        )
      }
    }
  })

/** The enqueuer as a leader service: a loop of its own, started again a second after it failed. */
export const service = (config: EnqueuerConfig): Loop.Service => ({
  name: "periodic job enqueuer",
  interval: Duration.seconds(1),
  start: "now",
  runOnce: runOnce(config)
})
