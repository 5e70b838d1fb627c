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
import type * as SqlClient from "effect/sql/SqlClient"
import type { JobRow, JobState } from "../../Job.ts"
import type { RetryPolicy, Worker } from "../../Worker.ts"
import { cancelRequestedDuringAttempt } from "../cancelRequest.ts"
import { timeoutOf } from "../executor.ts"
import { retryAt } from "../retry.ts"
import { decodeJobRow, type RawJobRow } from "../sql/job.ts"
import type { MaintenanceSql } from "../sql/maintenance.ts"

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
  readonly sql: SqlClient.SqlClient
  readonly q: MaintenanceSql
  readonly workers: ReadonlyMap<string, Worker<any, any, any, any>>
  readonly jobTimeout: Duration.Duration | "none"
  readonly retryPolicy: RetryPolicy | undefined
  readonly rescueAfter: Duration.Duration
  readonly batchSize: number
}

interface Decision {
  readonly id: bigint
  readonly state: JobState
  readonly finalizedAt: Date | undefined
  readonly scheduledAt: Date | undefined
}

const decide = (config: RescuerConfig, job: JobRow, now: number): Effect.Effect<Decision | undefined> => {
  const finalize = (state: JobState): Decision => ({ id: job.id, state, finalizedAt: new Date(now), scheduledAt: undefined })
  const retry = (policy: RetryPolicy | undefined) =>
    job.attempt >= job.maxAttempts
      ? Effect.succeed(finalize("discarded"))
      : Effect.map(
        retryAt(policy, job, new Error(RESCUE_ERROR), now),
        (next): Decision =>
          next === undefined
            ? finalize("discarded")
            : { id: job.id, state: "retryable", finalizedAt: undefined, scheduledAt: new Date(next) }
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
      const raw = yield* config.sql.unsafe<RawJobRow>(config.q.jobGetStuck, [before, after, config.batchSize])
      if (raw.length === 0) return rescued
      const jobs = raw.map(decodeJobRow)
      after = jobs[jobs.length - 1]!.id
      const decisions: Array<Decision> = []
      for (const job of jobs) {
        const decision = yield* decide(config, job, now)
        if (decision !== undefined) decisions.push(decision)
      }
      if (decisions.length > 0) {
        const byId = new Map(jobs.map((j) => [j.id, j]))
        const nowDate = new Date(now)
        const rows = yield* config.sql.unsafe<{ id: bigint }>(config.q.jobRescueMany, [
          decisions.map((d) => d.id),
          decisions.map((d) => d.state),
          decisions.map((d) => d.finalizedAt ?? nowDate),
          decisions.map((d) => d.finalizedAt !== undefined),
          decisions.map((d) => d.scheduledAt ?? nowDate),
          decisions.map((d) => d.scheduledAt !== undefined),
          decisions.map((d) =>
            JSON.stringify({ at: nowDate.toISOString(), attempt: byId.get(d.id)!.attempt, error: RESCUE_ERROR, trace: "" })
          ),
          decisions.map((d) => byId.get(d.id)!.attempt),
          before
        ])
        rescued += rows.length
      }
      if (raw.length < config.batchSize) return rescued
    }
  })

export interface Retention {
  /** `"forever"` keeps that state's jobs. */
  readonly cancelled: Duration.Duration | "forever"
  readonly completed: Duration.Duration | "forever"
  readonly discarded: Duration.Duration | "forever"
}

/** One job cleaner pass; returns how many jobs it deleted. */
export const cleanJobs = (sql: SqlClient.SqlClient, q: MaintenanceSql, retention: Retention, batchSize: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const horizon = (keep: Duration.Duration | "forever") => keep === "forever" ? null : new Date(now - Duration.toMillis(keep))
    let deleted = 0
    while (true) {
      const [row] = yield* sql.unsafe<{ n: number }>(q.jobDeleteFinalized, [
        horizon(retention.cancelled),
        horizon(retention.completed),
        horizon(retention.discarded),
        batchSize
      ])
      const n = row?.n ?? 0
      deleted += n
      if (n < batchSize) return deleted
    }
  })

/** One queue cleaner pass; returns how many queue rows it deleted. */
export const cleanQueues = (sql: SqlClient.SqlClient, q: MaintenanceSql, retention: Duration.Duration, batchSize: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let deleted = 0
    while (true) {
      const [row] = yield* sql.unsafe<{ n: number }>(q.queueDeleteExpired, [new Date(now - Duration.toMillis(retention)), batchSize])
      const n = row?.n ?? 0
      deleted += n
      if (n < batchSize) return deleted
    }
  })
