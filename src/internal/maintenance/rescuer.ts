/**
 * The rescuer (River §8.2, `JobRescuer`): the leader's service that recovers jobs left `running`
 * by a runner that died. Every `interval` (30 s) it reads, in id-ordered batches, the jobs still
 * `running` longer than `rescueAfter` after their attempt started, and decides each with
 * {@link decide} — a pure function, tested as a table (test/internal/rescuer.test.ts). Per job,
 * first match wins:
 *
 * - a cancel requested during the attempt → `cancelled`;
 * - no worker for its kind → `discarded`;
 * - args that no longer decode → retried (River's backoff) or discarded;
 * - no timeout (`"none"`) → left alone (it may run for as long as it likes);
 * - timeout not yet elapsed → left alone;
 * - otherwise → `retryable` at the retry policy's time, or `discarded` with no attempt left.
 *
 * Each rescue appends "Stuck job rescued by JobRescuer" and counts `river:rescue_count`; the write
 * applies only while the row is still at the attempt read and still stuck (a job fetched again
 * meanwhile is left alone).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { JobRow } from "../../Job.ts"
import type { RetryPolicy, Worker } from "../../Worker.ts"
import { cancelRequestedDuringAttempt } from "../cancelRequest.ts"
import type { Driver, JobRescueParams } from "../driver/driver.ts"
import { timeoutOf } from "../executor.ts"
import type * as Loop from "../loop.ts"
import { attemptError } from "../outcome.ts"
import { retryAt } from "../retry.ts"

/** The error a rescue appends (River's text). */
export const RESCUE_ERROR = "Stuck job rescued by JobRescuer"

/** What the rescuer needs. */
export interface RescuerConfig {
  readonly driver: Driver
  readonly workers: ReadonlyMap<string, Worker<any, any, any, any>>
  readonly jobTimeout: Duration.Duration | "none"
  readonly retryPolicy: RetryPolicy | undefined
  /** A job `running` this long after its attempt started is stuck. */
  readonly rescueAfter: Duration.Duration
  readonly interval: Duration.Duration
  readonly batchSize: number
}

/** What to do with one stuck job. */
export type Decision =
  | { readonly _tag: "Leave" }
  | { readonly _tag: "Finalize"; readonly state: "cancelled" | "discarded" }
  | { readonly _tag: "Retry"; readonly policy: RetryPolicy | undefined }

const LEAVE: Decision = { _tag: "Leave" }

/** River's rules for one stuck job (see the module's notes). Pure. */
export const decide = (
  config: Pick<RescuerConfig, "workers" | "jobTimeout" | "retryPolicy">,
  job: JobRow,
  now: number
): Decision => {
  if (cancelRequestedDuringAttempt(job.metadata, job.attemptedAt)) return { _tag: "Finalize", state: "cancelled" }
  const worker = config.workers.get(job.kind)
  if (worker === undefined) return { _tag: "Finalize", state: "discarded" }
  if (Result.isFailure(worker.jobKind.decode(job.args))) return { _tag: "Retry", policy: undefined }
  const timeout = timeoutOf(config, job.kind)
  if (timeout === "none") return LEAVE
  if ((job.attemptedAt?.getTime() ?? 0) + Duration.toMillis(timeout) > now) return LEAVE
  return { _tag: "Retry", policy: worker.retryPolicy ?? config.retryPolicy }
}

/**
 * The rescue to write for a decision (`undefined` for "leave"). `retryAtMillis` is the retry
 * policy's time for a retry with an attempt left (`undefined`: the policy stopped). Pure.
 */
export const rescueOf = (
  job: JobRow,
  decision: Decision,
  now: number,
  retryAtMillis?: number | undefined
): JobRescueParams | undefined => {
  if (decision._tag === "Leave") return undefined
  const base = { id: job.id, attempt: job.attempt, error: attemptError(job, RESCUE_ERROR, "", new Date(now)) }
  if (decision._tag === "Finalize") return { ...base, state: decision.state, finalizedAt: new Date(now) }
  if (job.attempt >= job.maxAttempts || retryAtMillis === undefined) return { ...base, state: "discarded", finalizedAt: new Date(now) }
  return { ...base, state: "retryable", scheduledAt: new Date(retryAtMillis) }
}

/** One pass; returns how many jobs it rescued. */
export const runOnce = (config: RescuerConfig) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const stuckHorizon = new Date(now - Duration.toMillis(config.rescueAfter))
    let afterId = 0n
    let rescued = 0
    while (true) {
      const jobs = yield* config.driver.jobGetStuck({ stuckHorizon, afterId, max: config.batchSize })
      if (jobs.length === 0) return rescued
      afterId = jobs[jobs.length - 1]!.id
      const rescues: Array<JobRescueParams> = []
      for (const job of jobs) {
        const decision = decide(config, job, now)
        const next = decision._tag === "Retry" && job.attempt < job.maxAttempts
          ? yield* retryAt(decision.policy, job, new Error(RESCUE_ERROR), now)
          : undefined
        const rescue = rescueOf(job, decision, now, next)
        if (rescue !== undefined) rescues.push(rescue)
      }
      if (rescues.length > 0) rescued += yield* config.driver.jobRescueMany({ jobs: rescues, stuckHorizon })
      if (jobs.length < config.batchSize) return rescued
    }
  })

/** The rescuer as a leader service (first pass up to 1 s after the election). */
export const service = (config: RescuerConfig): Loop.Service => ({
  name: "rescuer",
  interval: config.interval,
  start: "jitter",
  runOnce: runOnce(config)
})
