/**
 * Events the runner publishes: each job outcome after it has been written to the database
 * (`JobEvent`, from `runner.subscribe` / `runner.events`), and — for subscribers that ask for
 * them with `runner.subscribeAll` / `runner.allEvents` — each attempt's start (`JobStarted`).
 * Outcome-only subscribers never see a `started` event, so a `switch` on `JobEventKind` stays
 * exhaustive.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type { JobRow } from "./Job.ts"

/**
 * What happened to the job in this attempt, as decided by the executor. The row's final state
 * may differ: a `failed` job whose cancel was requested meanwhile ends `cancelled`.
 *
 * - `completed`: the worker succeeded.
 * - `failed`: the worker failed; the row is `retryable`/`available` (retry) or `discarded`.
 * - `cancelled`: the worker returned `JobCancel`, or the job was cancelled remotely.
 * - `snoozed`: the worker returned `JobSnooze`.
 * - `interrupted`: the runner stopped while the job ran; the job is `available` again.
 *
 * @since 0.1.0
 * @category models
 */
export type JobEventKind = "completed" | "failed" | "cancelled" | "snoozed" | "interrupted"

/**
 * Timings of one attempt.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobStatistics {
  /** From `scheduled_at` (or insert) until the job was fetched. */
  readonly queueWait: Duration.Duration
  /** How long the worker ran. */
  readonly run: Duration.Duration
  /** From the end of the run until the outcome was committed. */
  readonly complete: Duration.Duration
}

/**
 * One job outcome.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobEvent {
  readonly kind: JobEventKind
  /** The row as written by the completion (its state is final for this attempt). */
  readonly job: JobRow
  /** The error message recorded for `failed` and `cancelled` outcomes. */
  readonly error: string | undefined
  readonly stats: JobStatistics
}

/**
 * An attempt started: the job was fetched by this runner and its worker is about to run. The row
 * is as fetched (`state` `running`, `attempt` and `attemptedAt` of this attempt).
 *
 * @since 0.1.0
 * @category models
 */
export interface JobStarted {
  readonly kind: "started"
  readonly job: JobRow
}

/**
 * Any event: an attempt's start or an outcome (what `runner.subscribeAll` delivers, in order).
 *
 * @since 0.1.0
 * @category models
 */
export type AnyJobEvent = JobStarted | JobEvent
