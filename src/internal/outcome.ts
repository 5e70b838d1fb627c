/**
 * What the end of an attempt means, as pure functions: {@link decide} reads the attempt's `Exit`
 * (and the reason the runner interrupted it, which travels with the interrupt) and returns a
 * {@link Verdict}; {@link completionOf} turns a verdict into the row's new state, given the retry
 * policy's answer for a failure. Nothing here touches a clock, a database or a fiber, so the rules
 * (docs/state-machine.md, "The outcome of one attempt") are tested as a table
 * (test/internal/outcome.test.ts).
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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { AttemptError, JobRow, JobState } from "../Job.ts"
import type { JobEventKind } from "../JobEvent.ts"
import { JobCancel, JobSnooze, JobTimeout, UnexpectedInterrupt } from "../Errors.ts"
import type { JobSetStateParams } from "./driver/driver.ts"
import { MAX_TIME_MILLIS } from "./retry.ts"

/** River's scheduler interval: retries and snoozes due within it go straight to `available`. */
export const AVAILABLE_WITHIN_MILLIS = 5_000

/** Why the runner interrupted a job fiber. */
export type InterruptReason = "remote-cancel" | "shutdown" | "timeout"

/** The key under which an interrupt carries its reason (a `Cause` annotation). */
export const InterruptReasonKey = Context.Service<InterruptReason>("effect-river/internal/InterruptReason")

/** The annotations an interrupt for `reason` carries. */
export const interruptAnnotations = (reason: InterruptReason): Context.Context<never> =>
  Context.make(InterruptReasonKey, reason) as Context.Context<never>

/** The reason the runner gave when it interrupted the attempt (the latest, if several), if it did. */
export const interruptReasonOf = (cause: Cause.Cause<unknown>): InterruptReason | undefined => {
  let found: InterruptReason | undefined
  for (const reason of cause.reasons) {
    if (reason._tag !== "Interrupt") continue
    const value = reason.annotations.get(InterruptReasonKey.key) as InterruptReason | undefined
    if (value !== undefined) found = value
  }
  return found
}

/** One job's outcome, as the executor decided it: what the driver writes, and what the event reports. */
export interface Completion extends JobSetStateParams {
  /** For the event published after the write. */
  readonly kind: JobEventKind
  /** The worker's failure value (error, defect, `JobCancel`, `JobSnooze`), for the testing kit. */
  readonly failure?: unknown
  readonly job: JobRow
  readonly startedAt: number
  readonly finishedAt: number
}

/** What an attempt's end means, before any retry time is known. */
export type Verdict =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Cancelled"; readonly message: string; readonly failure: JobCancel | undefined }
  | { readonly _tag: "Interrupted" }
  | { readonly _tag: "Snoozed"; readonly failure: JobSnooze }
  | { readonly _tag: "Failed"; readonly failure: unknown; readonly message: string; readonly trace: string }

const COMPLETED: Verdict = { _tag: "Completed" }
const INTERRUPTED: Verdict = { _tag: "Interrupted" }
const REMOTE_CANCEL: Verdict = { _tag: "Cancelled", message: "JobCancelError: job cancelled remotely", failure: undefined }

/** River's attempt error: when the attempt started, its number, the message and a trace (`""` for none). */
export const attemptError = (
  job: Pick<JobRow, "attempt" | "attemptedAt">,
  error: string,
  trace = "",
  at: Date | null = job.attemptedAt
): AttemptError => ({ at: (at ?? new Date(0)).toISOString(), attempt: job.attempt, error, trace })

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

const failed = (failure: unknown, message: string, trace = ""): Verdict => ({ _tag: "Failed", failure, message, trace })

/**
 * What the attempt's exit means. `reason` is the one the runner's interrupt carried (see
 * {@link interruptReasonOf}); `timeout` is the job's attempt limit (for the timeout's error).
 */
export const decide = (
  exit: Exit.Exit<unknown, unknown>,
  reason: InterruptReason | undefined,
  context: { readonly now: number; readonly timeout: Duration.Duration | "none" }
): Verdict => {
  if (Exit.isSuccess(exit)) return COMPLETED
  const cause = exit.cause
  if (reason === "remote-cancel") return REMOTE_CANCEL
  if (Cause.hasInterruptsOnly(cause)) {
    if (reason === "timeout") {
      const error = new JobTimeout({ after: context.timeout === "none" ? Duration.zero : context.timeout })
      return failed(error, error.message)
    }
    if (reason === "shutdown") return INTERRUPTED
    return failed(new UnexpectedInterrupt(), "job interrupted")
  }
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value
    if (e instanceof JobCancel) return { _tag: "Cancelled", message: e.message, failure: e }
    if (e instanceof JobSnooze) {
      if (!(e.millis >= 0) || !Number.isFinite(e.millis) || context.now + e.millis > MAX_TIME_MILLIS) {
        return failed(e, `JobSnooze: the delay must be a finite duration >= 0 that ends by +275760-09-13 (got ${e.millis} ms)`)
      }
      return { _tag: "Snoozed", failure: e }
    }
    return failed(e, describeFailure(e))
  }
  const defect = Cause.findDefect(cause)
  if (Result.isSuccess(defect)) {
    const d = defect.success
    const message = d instanceof Error ? `${d.name === "Error" ? "" : `${d.name}: `}${d.message}` : describeFailure(d)
    const trace = d instanceof Error && typeof d.stack === "string" ? d.stack : Cause.pretty(cause)
    return failed(d, message, trace)
  }
  return failed(new UnexpectedInterrupt(), "job interrupted", Cause.pretty(cause))
}

/** Whether the verdict needs the retry policy's answer: a failure with an attempt left. */
export const wantsRetryTime = (row: Pick<JobRow, "attempt" | "maxAttempts">, verdict: Verdict): boolean =>
  verdict._tag === "Failed" && row.attempt < row.maxAttempts

/**
 * The outcome to write for a verdict. `retryAt` is the retry policy's time for a failure with an
 * attempt left (see {@link wantsRetryTime}; `undefined`: the policy stopped, the job is
 * discarded).
 */
export const completionOf = (
  row: JobRow,
  verdict: Verdict,
  times: { readonly startedAt: number; readonly finishedAt: number },
  retryAt?: number | undefined
): Completion => {
  const now = times.finishedAt
  const base = { id: row.id, job: row, startedAt: times.startedAt, finishedAt: now }
  switch (verdict._tag) {
    case "Completed":
      return { ...base, kind: "completed", state: "completed", finalizedAt: new Date(now) }
    case "Cancelled":
      return {
        ...base,
        kind: "cancelled",
        state: "cancelled",
        finalizedAt: new Date(now),
        error: attemptError(row, verdict.message),
        ...(verdict.failure === undefined ? {} : { failure: verdict.failure })
      }
    case "Interrupted":
      return { ...base, kind: "interrupted", state: "available", attempt: Math.max(row.attempt - 1, 0), scheduledAt: new Date(now) }
    case "Snoozed": {
      const millis = verdict.failure.millis
      const snoozes = typeof row.metadata.snoozes === "number" ? row.metadata.snoozes : 0
      return {
        ...base,
        kind: "snoozed",
        state: millis <= AVAILABLE_WITHIN_MILLIS ? "available" : "scheduled",
        attempt: Math.max(row.attempt - 1, 0),
        scheduledAt: new Date(now + millis),
        metadata: { snoozes: snoozes + 1 },
        failure: verdict.failure
      }
    }
    case "Failed": {
      const error = attemptError(row, verdict.message, verdict.trace)
      if (row.attempt >= row.maxAttempts || retryAt === undefined) {
        return { ...base, kind: "failed", state: "discarded", finalizedAt: new Date(now), error, failure: verdict.failure }
      }
      const state: JobState = retryAt - now <= AVAILABLE_WITHIN_MILLIS ? "available" : "retryable"
      return { ...base, kind: "failed", state, scheduledAt: new Date(retryAt), error, failure: verdict.failure }
    }
  }
}
