/**
 * The implementation of the public `PeriodicJob` module: the definition validated (with the
 * option parser) when it is made, the problem kept for the runner to report.
 *
 * @internal
 */
import * as Cron from "effect/Cron"
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type { InvalidOptions } from "../Errors.ts"
import type * as JobKind from "../JobKind.ts"
import type { PeriodicJob } from "../PeriodicJob.ts"
import * as Options from "./options.ts"

/** The options of a periodic job (`PeriodicJob.make` documents each). */
export interface PeriodicJobOptions {
  readonly id: string
  readonly schedule: Duration.Input | Cron.Cron
  readonly job: () => JobKind.InsertRequest | undefined
  readonly runOnStart?: boolean | undefined
}

const Id = Schema.Struct({ id: Options.matching(/^[\w.:-]{1,128}$/, "must be 1 to 128 letters, digits or _ . : -") })
const Interval = Schema.Struct({
  schedule: Options.duration({ min: 1_000, rule: "must be an interval of at least 1 second or a Cron" })
})

/** Defines a periodic job (the public `PeriodicJob.make`). */
export const make = (options: PeriodicJobOptions): PeriodicJob => {
  const id = Options.decode(Id, { id: options.id }, "periodicJobs.")
  let problem: InvalidOptions | undefined = Result.isFailure(id) ? id.failure : undefined
  let next: (after: number) => number = (after) => after
  if (Cron.isCron(options.schedule)) {
    const cron = options.schedule
    next = (after) => Cron.next(cron, new Date(after)).getTime()
  } else {
    const interval = Options.decode(Interval, { schedule: options.schedule }, `periodicJobs.${options.id}.`)
    if (Result.isFailure(interval)) {
      problem ??= interval.failure
    } else {
      const millis = Duration.toMillis(interval.success.schedule)
      next = (after) => after + millis
    }
  }
  return { id: options.id, next, job: options.job, runOnStart: options.runOnStart === true, problem }
}
