/**
 * Clock skew between this process and the database.
 *
 * effect-river takes job times from the Effect `Clock`; River (Go) takes them from the database
 * (`now()`). Both sides compare the other's timestamps with their own: a runner whose clock lags
 * the database does not fetch a Go-inserted job until its own clock reaches the job's
 * `scheduled_at`, and the rescuer measures database-stamped `attempted_at` with the leader's
 * clock. The runner measures the difference when it starts and after a LISTEN reconnect, and
 * warns above a threshold.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Driver } from "./driver/driver.ts"
import type { Notifier } from "./notifier.ts"

/**
 * The database's clock minus this process's `Clock`, in milliseconds (positive: the database is
 * ahead), taking the middle of the round trip as the moment the database read its clock.
 */
export const measure = (driver: Driver) =>
  Effect.gen(function*() {
    const before = yield* Clock.currentTimeMillis
    const database = yield* driver.databaseTime
    const after = yield* Clock.currentTimeMillis
    return database - (before + after) / 2
  })

/** Measures the skew and logs a warning when it exceeds `thresholdMillis` (never fails). */
export const check = (driver: Driver, thresholdMillis: number) =>
  measure(driver).pipe(
    Effect.flatMap((skew) =>
      Math.abs(skew) <= thresholdMillis
        ? Effect.logDebug(`effect-river: clock skew with the database ${Math.round(skew)} ms`)
        : Effect.logWarning(
          `effect-river: this process's clock is ${Math.abs(Math.round(skew))} ms ${
            skew > 0 ? "behind" : "ahead of"
          } the database's (more than ${thresholdMillis} ms): job times come from this clock, River's from the ` +
            "database's, so jobs inserted by the other side run late or early by that much and stuck-job rescue is " +
            "misjudged; synchronise the clocks (NTP). See docs/river-compatibility.md, \"Time\"."
        )
    ),
    Effect.catchCause(() => Effect.void)
  )

/**
 * Checks the skew now and after every reconnect the notifier announces (the connection was lost:
 * the database may be another one now), for the life of the scope.
 */
export const watch = (driver: Driver, notifier: Notifier["Service"], thresholdMillis: number) =>
  Effect.gen(function*() {
    yield* check(driver, thresholdMillis)
    const reconnects = yield* notifier.reconnects
    yield* Effect.forkScoped(Stream.runForEach(reconnects, () => check(driver, thresholdMillis)))
  }) as Effect.Effect<void, never, Scope.Scope>
