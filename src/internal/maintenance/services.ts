/**
 * The leader's maintenance services (River §8.2, §8.5, §8.6), each a loop for a scoped fiber:
 * a pass, then a sleep. A failing pass is logged, and the service waits twice as long (up to
 * 10 passes' interval) before the next, so a sick database is not hammered.
 *
 * - Rescuer: `running` jobs attempted longer ago than the rescue threshold. Per job, first match
 *   wins: a requested cancel → `cancelled`; no worker for its kind → `discarded`; undecodable
 *   args → retry or discard; no timeout (`"none"`) → left alone; timeout not yet elapsed → left
 *   alone; otherwise `retryable` at the retry policy's time, or `discarded` with no attempt
 *   left. Each rescue appends "Stuck job rescued by JobRescuer" and counts
 *   `river:rescue_count`.
 * - Job cleaner: deletes finalized jobs past their state's retention, in id-ordered batches.
 * - Queue cleaner: deletes `river_queue` rows not refreshed for the retention (24 h).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { JobRow } from "../../Job.ts"
import type { RetryPolicy, Worker } from "../../Worker.ts"
import { cancelRequestedDuringAttempt } from "../cancelRequest.ts"
import { timeoutOf } from "../executor.ts"
import { retryAt } from "../retry.ts"
import type { Driver, JobRescueParams } from "../driver/driver.ts"

export const RESCUE_ERROR = "Stuck job rescued by JobRescuer"

/** Runs `pass` every `interval`, backing off after failures. */
export const every = (name: string, interval: Duration.Duration, pass: Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    let failures = 0
    while (true) {
      const exit = yield* Effect.exit(pass)
      if (exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)) {
        failures++
        yield* Effect.logWarning(`effect-river: ${name} failed (${failures} in a row)`, Cause.pretty(exit.cause))
      } else {
        failures = 0
      }
      yield* Effect.sleep(Duration.times(interval, Math.min(2 ** failures, 10)))
    }
  })

export interface RescuerConfig {
  readonly driver: Driver
  readonly workers: ReadonlyMap<string, Worker<any, any, any, any>>
  readonly jobTimeout: Duration.Duration | "none"
  readonly retryPolicy: RetryPolicy | undefined
  readonly rescueAfter: Duration.Duration
  readonly batchSize: number
}

type Decision = Omit<JobRescueParams, "error">

const decide = (config: RescuerConfig, job: JobRow, now: number): Effect.Effect<Decision | undefined> => {
  const finalize = (state: Decision["state"]): Decision => ({ id: job.id, attempt: job.attempt, state, finalizedAt: new Date(now) })
  const retry = (policy: RetryPolicy | undefined) =>
    job.attempt >= job.maxAttempts
      ? Effect.succeed(finalize("discarded"))
      : Effect.map(
        retryAt(policy, job, new Error(RESCUE_ERROR), now),
        (next): Decision =>
          next === undefined
            ? finalize("discarded")
            : { id: job.id, attempt: job.attempt, state: "retryable", scheduledAt: new Date(next) }
      )
  if (cancelRequestedDuringAttempt(job.metadata, job.attemptedAt)) return Effect.succeed(finalize("cancelled"))
  const worker = config.workers.get(job.kind)
  if (worker === undefined) return Effect.succeed(finalize("discarded"))
  if (Result.isFailure(worker.jobKind.decode(job.args))) return retry(undefined)
  const timeout = timeoutOf(config, job)
  if (timeout === "none") return Effect.succeed(undefined)
  if ((job.attemptedAt?.getTime() ?? 0) + Duration.toMillis(timeout) > now) return Effect.succeed(undefined)
  return retry(worker.retryPolicy ?? config.retryPolicy)
}

/** One rescuer pass; returns how many jobs it rescued. */
export const rescue = (config: RescuerConfig) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const before = new Date(now - Duration.toMillis(config.rescueAfter))
    let after = 0n
    let rescued = 0
    while (true) {
      const jobs = yield* config.driver.jobGetStuck({ stuckHorizon: before, afterId: after, max: config.batchSize })
      if (jobs.length === 0) return rescued
      after = jobs[jobs.length - 1]!.id
      const decisions: Array<JobRescueParams> = []
      const nowDate = new Date(now)
      for (const job of jobs) {
        const decision = yield* decide(config, job, now)
        if (decision !== undefined) {
          decisions.push({
            ...decision,
            error: { at: nowDate.toISOString(), attempt: job.attempt, error: RESCUE_ERROR, trace: "" }
          })
        }
      }
      if (decisions.length > 0) {
        rescued += yield* config.driver.jobRescueMany({ jobs: decisions, stuckHorizon: before })
      }
      if (jobs.length < config.batchSize) return rescued
    }
  })

export interface Retention {
  /** `"forever"` keeps that state's jobs. */
  readonly cancelled: Duration.Duration | "forever"
  readonly completed: Duration.Duration | "forever"
  readonly discarded: Duration.Duration | "forever"
}

/** One job cleaner pass; returns how many jobs it deleted. */
export const cleanJobs = (driver: Driver, retention: Retention, batchSize: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const horizon = (keep: Duration.Duration | "forever") =>
      keep === "forever" ? undefined : new Date(now - Duration.toMillis(keep))
    let deleted = 0
    while (true) {
      const n = yield* driver.jobDeleteFinalized({
        cancelledBefore: horizon(retention.cancelled),
        completedBefore: horizon(retention.completed),
        discardedBefore: horizon(retention.discarded),
        max: batchSize
      })
      deleted += n
      if (n < batchSize) return deleted
    }
  })

/** One queue cleaner pass; returns how many queue rows it deleted. */
export const cleanQueues = (driver: Driver, retention: Duration.Duration, batchSize: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let deleted = 0
    while (true) {
      const n = yield* driver.queueDeleteExpired({ updatedBefore: new Date(now - Duration.toMillis(retention)), max: batchSize })
      deleted += n
      if (n < batchSize) return deleted
    }
  })
