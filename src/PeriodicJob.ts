/**
 * Periodic jobs: jobs the leader inserts on a schedule (a fixed interval or a cron expression).
 *
 * Only the leader enqueues them. Unlike River, whose schedule lives in the leader's memory (a
 * leader change or restart starts counting from "now", and long intervals can starve), the last
 * run of each periodic job is read from the database — the newest job carrying its
 * `river:periodic_job_id` — so a run that fell due while nobody led is inserted as soon as a
 * leader is back, once.
 *
 * @example
 * ```ts
 * import { Cron } from "effect"
 *
 * const nightly = PeriodicJob.make({
 *   id: "nightly_report",
 *   schedule: Cron.parseUnsafe("0 3 * * *"),
 *   job: () => Report.of({ kind: "daily" })
 * })
 * const nudge = PeriodicJob.make({ id: "nudge", schedule: "15 minutes", job: () => Nudge.of({}), runOnStart: true })
 *
 * Runner.layer({ queues, workers, periodicJobs: [nightly, nudge] })
 * ```
 *
 * @since 0.1.0
 */
import type * as Cron from "effect/Cron"
import type * as Duration from "effect/Duration"
import type { InvalidOptions } from "./Errors.ts"
import * as internal from "./internal/periodicJob.ts"
import type * as JobKind from "./JobKind.ts"

/**
 * A periodic job.
 *
 * @since 0.1.0
 * @category models
 */
export interface PeriodicJob {
  /** Stable identifier, stored as `river:periodic_job_id` (it is how past runs are found). */
  readonly id: string
  /** The next run after `after` (epoch milliseconds). */
  readonly next: (after: number) => number
  /** The job to insert for a run; `undefined` skips the run. */
  readonly job: () => JobKind.InsertRequest | undefined
  /** Insert once as soon as a leader starts when the job has never run. */
  readonly runOnStart: boolean
  /** @internal why the definition is invalid, if it is. */
  readonly problem: InvalidOptions | undefined
}

/**
 * Defines a periodic job: `schedule` is a fixed interval (`"15 minutes"`, at least 1 second) or an
 * Effect `Cron`; `id` (1–128 letters, digits or `_ . : -`) is stored with every run.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: {
  readonly id: string
  readonly schedule: Duration.Input | Cron.Cron
  readonly job: () => JobKind.InsertRequest | undefined
  readonly runOnStart?: boolean | undefined
}) => PeriodicJob = internal.make
