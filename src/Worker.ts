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
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type { InvalidOptions, InvalidOutput, JobCancel, JobSnooze } from "./Errors.ts"
import * as internalOutput from "./internal/output.ts"
import * as internal from "./internal/worker.ts"
import type { JobRow } from "./Job.ts"
import type * as JobKind from "./JobKind.ts"

export {
  /**
   * Cancels the job for good (defined in `Errors`).
   *
   * @since 0.1.0
   * @category errors
   */
  JobCancel,
  /**
   * Runs the job again after a delay without using an attempt (defined in `Errors`).
   *
   * @since 0.1.0
   * @category errors
   */
  JobSnooze,
  /**
   * `recordOutput` refused a value (defined in `Errors`).
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidOutput
} from "./Errors.ts"

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
 * The type id of workers.
 *
 * @since 0.1.0
 * @category constants
 */
export const TypeId: "~effect-river/Worker" = internal.TypeId

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
 * @category models
 */
export type Requirements<W> = W extends Worker<infer _A, infer _I, infer _E, infer R> ? R : never

/**
 * Defines a worker for a job kind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, I, E = never, R = never>(
  jobKind: JobKind.JobKind<A, I>,
  work: (job: Job<A>) => Effect.Effect<unknown, E | JobCancel | JobSnooze, R>,
  options?: WorkerOptions
) => Worker<A, I, E, R> = internal.make

/**
 * Records the attempt's output, as River's `RecordOutput` does: any JSON value, stored in the
 * job's `metadata.output` when the attempt's outcome is written (whatever the outcome), readable
 * with `client.get(id)` (and by River). The last value recorded in an attempt wins. Fails with
 * `InvalidOutput` outside a worker, for a value without a JSON form, or over 32 MB of JSON.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Worker } from "effect-river"
 *
 * const ResizeWorker = Worker.make(Resize, (job) =>
 *   Effect.gen(function*() {
 *     const url = yield* resize(job.args.image)
 *     yield* Worker.recordOutput({ url })
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category operations
 */
export const recordOutput: (value: unknown) => Effect.Effect<void, InvalidOutput> = internalOutput.recordOutput

/**
 * The metadata key River stores output under (`rivertype.MetadataKeyOutput`).
 *
 * @since 0.1.0
 * @category constants
 */
export const OutputMetadataKey: "output" = internalOutput.OutputMetadataKey
