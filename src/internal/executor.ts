/**
 * The executor: runs one fetched job through its worker and turns the `Exit` into an outcome
 * (a {@link Completion} for the completer).
 *
 * Order of decisions, River's §5.1 adapted to Effect:
 * 1. the job was cancelled remotely and the run did not succeed → cancelled;
 * 2. success → completed;
 * 3. interrupted by the runner's stop (and nothing else went wrong) → interrupted: available
 *    again at once, attempt − 1, no error;
 * 4. `JobCancel` → cancelled; `JobSnooze` → snoozed (attempt − 1);
 * 5. anything else (failure, defect, thrown exception, timeout, undecodable args, unknown kind) →
 *    discarded when no attempt is left, else retried at the policy's time (`available` when that
 *    is within 5 s, `retryable` otherwise).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { AttemptError, JobRow } from "../Job.ts"
import * as Resumable from "../Resumable.ts"
import { JobCancel, JobSnooze, type RetryPolicy, type Worker } from "../Worker.ts"
import type { Completion } from "./completer.ts"
import { MAX_TIME_MILLIS, retryAt } from "./retry.ts"
import type { Driver } from "./driver/driver.ts"

/** River's scheduler interval: retries and snoozes due within it go straight to `available`. */
export const AVAILABLE_WITHIN_MILLIS = 5_000

/** A fetched job whose kind has no worker in this runner. */
export class UnknownJobKind extends Data.TaggedError("UnknownJobKind")<{ readonly kind: string }> {
  override get message(): string {
    return `job kind is not registered in the client's Workers bundle: ${this.kind}`
  }
}

/** A job interrupted by something other than the runner (for example its own code). */
class UnexpectedInterrupt extends Data.TaggedError("UnexpectedInterrupt")<{}> {
  override get message(): string {
    return "job interrupted"
  }
}

/** Why the runner interrupted a job fiber. */
export type InterruptReason = "remote-cancel" | "shutdown" | "timeout"

export interface ExecutorConfig {
  readonly driver: Driver
  readonly workers: ReadonlyMap<string, Worker<any, any, any, any>>
  readonly jobTimeout: Duration.Duration | "none"
  readonly retryPolicy: RetryPolicy | undefined
  /** Reasons recorded before the runner interrupts a job's fiber. */
  readonly interruptReasons: Map<bigint, InterruptReason>
  /**
   * Timeouts are enforced by the caller (the producer's deadline sweep interrupts overdue jobs
   * with reason "timeout") instead of one timer race per job.
   */
  readonly externalTimeouts?: boolean | undefined
}

/** The attempt time limit of a job: its worker's, else the runner's. */
export const timeoutOf = (
  config: Pick<ExecutorConfig, "workers" | "jobTimeout">,
  row: JobRow
): Duration.Duration | "none" =>
  config.workers.get(row.kind)?.timeout ?? config.jobTimeout

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/** A readable message for a failure value. */
export const describeFailure = (error: unknown): string => {
  if (isRecord(error)) {
    const tag = typeof error._tag === "string" ? error._tag : undefined
    const message = typeof error.message === "string" ? error.message : undefined
    if (message !== undefined && message !== "") {
      return tag === undefined || message.startsWith(tag) || message.startsWith("job ") ? message : `${tag}: ${message}`
    }
    if (tag !== undefined) return tag
    try {
      return JSON.stringify(error)
    } catch {
      return String(error)
    }
  }
  return String(error)
}

/**
 * Builds the effect that runs the worker for one row (decoding, timeout included). `onWorkExit`
 * sees the worker's own exit as it ends, inside any timeout or interruption around it.
 */
const workFor = (
  config: ExecutorConfig,
  row: JobRow,
  resumable: Resumable.ResumableJob["Service"],
  onWorkExit: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
): Effect.Effect<unknown, unknown, any> => {
  const worker = config.workers.get(row.kind)
  if (worker === undefined) return Effect.fail(new UnknownJobKind({ kind: row.kind }))
  const decoded = worker.jobKind.decode(row.args)
  if (Result.isFailure(decoded)) return Effect.fail(decoded.failure)
  const job = { ...row, args: decoded.success, encodedArgs: row.args }
  const work = Effect.suspend(() => worker.work(job)).pipe(
    Effect.tap(() => Resumable.verifyResumed(resumable)),
    Effect.provideService(Resumable.ResumableJob, resumable),
    Effect.onExit(onWorkExit)
  )
  const timeout = worker.timeout ?? config.jobTimeout
  if (timeout === "none" || config.externalTimeouts === true) return work
  return Effect.timeoutOrElse(work, {
    duration: timeout,
    orElse: () => Effect.fail(new JobTimeout({ after: timeout }))
  })
}

/** A job ran past its timeout. */
export class JobTimeout extends Data.TaggedError("JobTimeout")<{ readonly after: Duration.Duration }> {
  override get message(): string {
    return `job timed out after ${Duration.format(this.after)}`
  }
}

const attemptError = (row: JobRow, error: string, trace: string): AttemptError => ({
  at: (row.attemptedAt ?? new Date(0)).toISOString(),
  attempt: row.attempt,
  error,
  trace
})

/**
 * Runs the job and hands its outcome to `complete`. The worker runs interruptibly; deciding and
 * handing over the outcome does not, so an interrupted job still gets one.
 */
export const execute = (
  config: ExecutorConfig,
  row: JobRow,
  complete: (completion: Completion) => Effect.Effect<void>
): Effect.Effect<void, never, any> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      // The work's own exit, captured as it ends: an interrupt that arrives after the work
      // finished (for example in uninterruptible code) must not hide a success.
      let workExit: Exit.Exit<unknown, unknown> | undefined
      const resumable = Resumable.make({
        jobId: row.id,
        attempt: row.attempt,
        metadata: row.metadata,
        driver: config.driver
      })
      const attempt = workFor(config, row, resumable, (e) =>
        Effect.sync(() => {
          workExit = e
        }))
      const exit = yield* Effect.exit(restore(attempt))
      const finishedAt = yield* Clock.currentTimeMillis
      // A successful work wins over an interruption that came after it; otherwise the exit of
      // the whole attempt (which includes timeouts and decoding) decides.
      const decisive = workExit !== undefined && Exit.isSuccess(workExit) ? workExit : exit
      let completion = yield* outcome(config, row, decisive, startedAt, finishedAt)
      // Every outcome but success keeps the resumable progress (River loses it on panics).
      if (completion.kind !== "completed") {
        const patch = yield* Resumable.checkpoint(resumable)
        if (patch !== undefined) completion = { ...completion, metadata: { ...completion.metadata, ...patch } }
      }
      yield* complete(completion)
    })
  )

const outcome = (
  config: ExecutorConfig,
  row: JobRow,
  exit: Exit.Exit<unknown, unknown>,
  startedAt: number,
  now: number
): Effect.Effect<Completion> => {
  const base = { id: row.id, job: row, startedAt, finishedAt: now }
  const reason = config.interruptReasons.get(row.id)
  config.interruptReasons.delete(row.id)
  if (Exit.isSuccess(exit)) {
    return Effect.succeed({ ...base, kind: "completed", state: "completed", finalizedAt: new Date(now) })
  }
  const cause = exit.cause
  if (reason === "remote-cancel") {
    return Effect.succeed({
      ...base,
      kind: "cancelled",
      state: "cancelled",
      finalizedAt: new Date(now),
      error: attemptError(row, "JobCancelError: job cancelled remotely", "")
    })
  }
  if (Cause.hasInterruptsOnly(cause)) {
    if (reason === "timeout") {
      const after = timeoutOf(config, row)
      const error = new JobTimeout({ after: after === "none" ? Duration.zero : after })
      return failed(config, row, base, error, error.message, "", now)
    }
    if (reason === "shutdown") {
      return Effect.succeed({
        ...base,
        kind: "interrupted",
        state: "available",
        attempt: Math.max(row.attempt - 1, 0),
        scheduledAt: new Date(now)
      })
    }
    return failed(config, row, base, new UnexpectedInterrupt(), "job interrupted", "", now)
  }
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value
    if (e instanceof JobCancel) {
      return Effect.succeed({
        ...base,
        kind: "cancelled",
        state: "cancelled",
        finalizedAt: new Date(now),
        error: attemptError(row, e.message, ""),
        failure: e
      })
    }
    if (e instanceof JobSnooze) {
      if (!(e.millis >= 0) || !Number.isFinite(e.millis) || now + e.millis > MAX_TIME_MILLIS) {
        return failed(
          config,
          row,
          base,
          e,
          `JobSnooze: the delay must be a finite duration >= 0 that ends by +275760-09-13 (got ${e.millis} ms)`,
          "",
          now
        )
      }
      const snoozes = typeof row.metadata.snoozes === "number" ? row.metadata.snoozes : 0
      return Effect.succeed({
        ...base,
        kind: "snoozed",
        state: e.millis <= AVAILABLE_WITHIN_MILLIS ? "available" : "scheduled",
        attempt: Math.max(row.attempt - 1, 0),
        scheduledAt: new Date(now + e.millis),
        metadata: { snoozes: snoozes + 1 },
        failure: e
      })
    }
    return failed(config, row, base, e, describeFailure(e), "", now)
  }
  const defect = Cause.findDefect(cause)
  if (Result.isSuccess(defect)) {
    const d = defect.success
    const message = d instanceof Error ? `${d.name === "Error" ? "" : `${d.name}: `}${d.message}` : describeFailure(d)
    const trace = d instanceof Error && typeof d.stack === "string" ? d.stack : Cause.pretty(cause)
    return failed(config, row, base, d, message, trace, now)
  }
  return failed(config, row, base, new UnexpectedInterrupt(), "job interrupted", Cause.pretty(cause), now)
}

const failed = (
  config: ExecutorConfig,
  row: JobRow,
  base: Pick<Completion, "id" | "job" | "startedAt" | "finishedAt">,
  error: unknown,
  message: string,
  trace: string,
  now: number
): Effect.Effect<Completion> => {
  const attemptErr = attemptError(row, message, trace)
  const discard: Completion = {
    ...base,
    kind: "failed",
    state: "discarded",
    finalizedAt: new Date(now),
    error: attemptErr,
    failure: error
  }
  if (row.attempt >= row.maxAttempts) return Effect.succeed(discard)
  const policy = config.workers.get(row.kind)?.retryPolicy ?? config.retryPolicy
  return retryAt(policy, row, error, now).pipe(
    Effect.map((next): Completion =>
      next === undefined ? discard : {
        ...base,
        kind: "failed",
        state: next - now <= AVAILABLE_WITHIN_MILLIS ? "available" : "retryable",
        scheduledAt: new Date(next),
        error: attemptErr,
        failure: error
      }
    )
  )
}
