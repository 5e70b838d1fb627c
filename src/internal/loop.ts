/**
 * The one loop shape of the runtime's background services (the leader's maintenance services and
 * each producer's own upkeep): wait the first delay, run a pass, sleep the interval, repeat. A
 * failing pass is logged, and the loop then waits twice as long (up to 10 times the interval)
 * before the next, so a sick database is not hammered; a pass that succeeds resets the wait.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"

/** A background service: what it is called, how often it runs and what one pass does. */
export interface Service {
  /** For logs: `effect-river: <name> failed (n in a row)`. */
  readonly name: string
  readonly interval: Duration.Duration
  /**
   * Before the first pass: none (`"now"`), one interval (`"interval"`), or up to 1 s at random
   * (`"jitter"`, so that services started together do not all hit the database at once, as
   * River's do after an election).
   */
  readonly start: "now" | "interval" | "jitter"
  /** Wait longer after failures in a row (the default), or keep the interval. */
  readonly backoff?: boolean | undefined
  /** One pass. */
  readonly runOnce: Effect.Effect<unknown, unknown>
}

/** Runs a service until interrupted. */
export const run = (service: Service): Effect.Effect<never> =>
  Effect.gen(function*() {
    if (service.start === "interval") yield* Effect.sleep(service.interval)
    else if (service.start === "jitter") yield* Effect.sleep(yield* Random.nextBetween(0, 1_000))
    let failures = 0
    while (true) {
      const exit = yield* Effect.exit(service.runOnce)
      if (exit._tag === "Failure" && !Cause.hasInterruptsOnly(exit.cause)) {
        failures++
        yield* Effect.logWarning(`effect-river: ${service.name} failed (${failures} in a row)`, Cause.pretty(exit.cause))
      } else {
        failures = 0
        if (exit._tag === "Success" && exit.value !== undefined) {
          yield* Effect.logDebug(`effect-river: ${service.name} pass`, exit.value)
        }
      }
      const factor = service.backoff === false ? 1 : Math.min(2 ** failures, 10)
      yield* Effect.sleep(Duration.times(service.interval, factor))
    }
  })
