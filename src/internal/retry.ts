/**
 * Retry timing: River's default backoff and the two kinds of user policy.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import type { JobRow } from "../Job.ts"
import type { RetryPolicy } from "../Worker.ts"

/**
 * The last instant a `Date` can hold (+275760-09-13); PostgreSQL's `timestamptz` goes further, so
 * every valid `Date` is storable. A snooze or retry beyond it could not be written.
 */
export const MAX_TIME_MILLIS = 8.64e15

/** ~292 years, River's cap (the largest Go duration), reached from n = 310. */
const MAX_DELAY_MILLIS = 9_223_372_036_854

/**
 * River's default: `n^4` seconds with ±10 % jitter, n = errors already recorded + 1 (so snoozes,
 * which record no error, do not skew it). `random` is uniform in [0, 1).
 */
export const defaultRetryDelayMillis = (errorCount: number, random: number): number => {
  const n = errorCount + 1
  if (n >= 310) return MAX_DELAY_MILLIS
  return n ** 4 * 1000 * (1 + (random * 0.2 - 0.1))
}

/**
 * The time of the next attempt, or `undefined` when the policy says to stop (a schedule that
 * ended): then the job is discarded.
 */
export const nextRetryAt = (
  policy: RetryPolicy | undefined,
  job: JobRow,
  error: unknown,
  nowMillis: number
): Effect.Effect<number | undefined> => {
  if (policy === undefined) {
    return Effect.map(Random.next, (r) => nowMillis + defaultRetryDelayMillis(job.errors.length, r))
  }
  if (Schedule.isSchedule(policy)) {
    const schedule = policy as Schedule.Schedule<unknown, unknown>
    return Effect.gen(function*() {
      const step = yield* Schedule.toStep(schedule)
      let delay = 0
      for (let i = 0; i <= job.errors.length; i++) {
        const result = yield* Effect.exit(step(nowMillis, error))
        if (Exit.isFailure(result)) return undefined
        delay = Duration.toMillis(result.value[1])
      }
      return nowMillis + delay
    })
  }
  return Effect.sync(() => {
    const next = policy(job, error)
    if (next instanceof Date) return next.getTime()
    return nowMillis + Duration.toMillis(Duration.fromInputUnsafe(next))
  })
}

/**
 * The time of the next attempt as the policy answers it (`undefined`: the policy stopped, the job
 * is discarded), falling back to River's default when the policy throws or answers a time that is
 * not finite, in the past, or beyond the last instant a `Date` holds (River logs a warning and
 * does the same). Shared by the executor and the rescuer.
 */
export const retryAt = (
  policy: RetryPolicy | undefined,
  job: JobRow,
  error: unknown,
  nowMillis: number
): Effect.Effect<number | undefined> =>
  nextRetryAt(policy, job, error, nowMillis).pipe(
    Effect.flatMap((next) =>
      next !== undefined && !(Number.isFinite(next) && next >= nowMillis && next <= MAX_TIME_MILLIS)
        ? nextRetryAt(undefined, job, error, nowMillis)
        : Effect.succeed(next)
    ),
    Effect.catchDefect(() => nextRetryAt(undefined, job, error, nowMillis))
  )
