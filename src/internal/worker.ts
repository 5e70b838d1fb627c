/**
 * The implementation of the public `Worker` module: a worker's options validated (with the
 * option parser) when it is defined, the problem kept for the runner to report.
 *
 * @internal
 */
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Effect from "effect/Effect"
import { InvalidOptions, type JobCancel, type JobSnooze } from "../Errors.ts"
import type * as JobKind from "../JobKind.ts"
import type { Job, Worker, WorkerOptions } from "../Worker.ts"
import * as Options from "./options.ts"

/** The type id of workers. */
export const TypeId = "~effect-river/Worker" as const

/** A worker's own options with their rules (`WorkerOptions` documents each). */
const WorkerSettings = Schema.Struct({
  timeout: Schema.optional(Options.durationOr(["none"], { positive: true, rule: "must be a positive duration or \"none\"" }))
})

/** Defines a worker (the public `Worker.make`). */
export const make = <A, I, E = never, R = never>(
  jobKind: JobKind.JobKind<A, I>,
  work: (job: Job<A>) => Effect.Effect<unknown, E | JobCancel | JobSnooze, R>,
  options: WorkerOptions = {}
): Worker<A, I, E, R> => {
  const settings = Options.decode(WorkerSettings, { timeout: options.timeout }, `workers.${jobKind.kind}.`)
  let problem: InvalidOptions | undefined = Result.isFailure(settings) ? settings.failure : undefined
  const timeout = Result.isSuccess(settings) ? settings.success.timeout : undefined
  const retryPolicy = options.retryPolicy
  if (retryPolicy !== undefined && typeof retryPolicy !== "function" && !Schedule.isSchedule(retryPolicy)) {
    problem ??= new InvalidOptions({
      field: `workers.${jobKind.kind}.retryPolicy`,
      rule: "must be a Schedule or a function of the job"
    })
  }
  return { [TypeId]: TypeId, jobKind, work, timeout, retryPolicy, problem }
}
