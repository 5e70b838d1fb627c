/**
 * Workers: Effect programs that run the jobs of one kind.
 *
 * A worker's error channel decides the job's fate:
 * - success: `completed`;
 * - `JobCancel`: `cancelled` for good, whatever attempts remain;
 * - `JobSnooze`: run again after the delay, without using an attempt;
 * - any other failure, defect, thrown exception or timeout: retried with backoff, then
 *   `discarded` once `maxAttempts` is used up.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobSnooze, Worker } from "effect-river"
 *
 * const SendEmailWorker = Worker.make(SendEmail, (job) =>
 *   Effect.gen(function*() {
 *     if (yield* rateLimited) return yield* JobSnooze.of("30 seconds")
 *     yield* Mailer.send(job.args.to, job.args.subject)
 *   }), { timeout: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { InvalidOptions } from "./Errors.ts"
import { show } from "./internal/show.ts"
import type { JobRow } from "./Job.ts"
import type * as JobKind from "./JobKind.ts"

/**
 * Cancels the job for good: state `cancelled`, no further attempts, the reason recorded in the
 * job's `errors` as `JobCancelError: <reason>`.
 *
 * @example
 * ```ts
 * return yield* JobCancel.of("customer deleted")
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class JobCancel extends Schema.TaggedError<JobCancel>()("JobCancel", {
  reason: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  /** A cancel with a reason and an optional underlying cause. */
  static of(reason: string, cause?: unknown): JobCancel {
    return new JobCancel(cause === undefined ? { reason } : { reason, cause })
  }
  override get message(): string {
    return `JobCancelError: ${this.reason}`
  }
}

/**
 * Runs the job again after `delay` without using an attempt: `attempt` goes back down by one,
 * `metadata.snoozes` goes up by one, no error is recorded. A delay up to 5 seconds makes the job
 * `available` with a future `scheduled_at`; a longer one makes it `scheduled`. A negative delay
 * is a job error (River silently runs it at once).
 *
 * @example
 * ```ts
 * return yield* JobSnooze.of("5 minutes")
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class JobSnooze extends Schema.TaggedError<JobSnooze>()("JobSnooze", {
  millis: Schema.Number
}) {
  /** A snooze for a duration (`"5 minutes"`, `Duration.seconds(30)`, or milliseconds). */
  static of(delay: Duration.Input): JobSnooze {
    return new JobSnooze({ millis: typeof delay === "number" ? delay : Duration.toMillis(Duration.fromInputUnsafe(delay)) })
  }
  override get message(): string {
    return `job snoozed for ${this.millis} ms`
  }
}

/**
 * The job as a worker sees it: the row, with `args` decoded by the kind's schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<A> extends Omit<JobRow, "args"> {
  /** Decoded args. */
  readonly args: A
  /** The args as stored (the schema's encoded JSON). */
  readonly encodedArgs: unknown
}

/**
 * When to retry a failed job. Either
 * - a `Schedule`: the delay before retry *n* is the schedule's *n*-th delay (n = errors recorded
 *   so far + 1); when the schedule ends, the job is discarded; or
 * - a function of the job (its `errors` already hold earlier failures) and the failure, returning
 *   the delay (`Duration.Input`) or the time of the next attempt (`Date`).
 *
 * Without one, River's policy applies: `(errors + 1)^4` seconds, ±10 % jitter.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryPolicy =
  | Schedule.Schedule<unknown, unknown>
  | ((job: JobRow, error: unknown) => Duration.Input | Date)

/**
 * Per-worker options.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /**
   * How long one attempt may run before it fails with a timeout error (and is retried).
   * `"none"` disables the limit. Default: the runner's `jobTimeout` (1 minute).
   */
  readonly timeout?: Duration.Input | "none" | undefined
  /** Retry policy for this kind; default: the runner's (River's backoff). */
  readonly retryPolicy?: RetryPolicy | undefined
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId = "~effect-river/Worker" as const

/**
 * A worker for the jobs of one kind. `E` is the worker's own failure type, `R` the services it
 * needs (provided by the layers given to the runner).
 *
 * @since 0.1.0
 * @category models
 */
export interface Worker<in out A, in out I, out E, out R> {
  readonly [TypeId]: typeof TypeId
  readonly jobKind: JobKind.JobKind<A, I>
  readonly work: (job: Job<A>) => Effect.Effect<unknown, E | JobCancel | JobSnooze, R>
  /** `undefined` = the runner's default; `"none"` = no limit. */
  readonly timeout: Duration.Duration | "none" | undefined
  readonly retryPolicy: RetryPolicy | undefined
  /** @internal the reason the options are invalid, if they are. */
  readonly problem: InvalidOptions | undefined
}

/**
 * Any worker (for registries).
 *
 * @since 0.1.0
 * @category models
 */
export type Any = Worker<any, any, any, any>

/**
 * Services needed by a list of workers.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Requirements<W> = W extends Worker<infer _A, infer _I, infer _E, infer R> ? R : never

/**
 * Defines a worker for a job kind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I, E = never, R = never>(
  jobKind: JobKind.JobKind<A, I>,
  work: (job: Job<A>) => Effect.Effect<unknown, E | JobCancel | JobSnooze, R>,
  options: WorkerOptions = {}
): Worker<A, I, E, R> => {
  let problem: InvalidOptions | undefined
  let timeout: Duration.Duration | "none" | undefined
  if (options.timeout === "none" || options.timeout === undefined) {
    timeout = options.timeout
  } else {
    const decoded = Duration.fromInput(options.timeout)
    if (decoded._tag === "None" || Duration.toMillis(decoded.value) <= 0) {
      problem = new InvalidOptions({
        field: `workers.${jobKind.kind}.timeout`,
        rule: "must be a positive duration or \"none\"",
        value: show(options.timeout)
      })
    } else {
      timeout = decoded.value
    }
  }
  const retryPolicy = options.retryPolicy
  if (retryPolicy !== undefined && typeof retryPolicy !== "function" && !Schedule.isSchedule(retryPolicy)) {
    problem ??= new InvalidOptions({
      field: `workers.${jobKind.kind}.retryPolicy`,
      rule: "must be a Schedule or a function of the job"
    })
  }
  return { [TypeId]: TypeId, jobKind, work, timeout, retryPolicy, problem }
}
