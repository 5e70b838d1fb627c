/**
 * The elector: leader election on River's `river_leader` row (§8.1), so effect-river and River
 * processes share one election per schema.
 *
 * - Followers try to claim the row every `electInterval` (+ up to 1 s jitter), 0–50 ms after a
 *   `resigned` notification on `<schema>.river_leadership`, and after a reconnect (both heard
 *   through the Notifier); a `request_resign` makes the leader resign.
 * - The leader renews every `renewInterval`, and trusts its lease only until the start of its
 *   last successful renewal + TTL − 1 s. A failed renewal (row gone or expired) or an expired
 *   trust makes it step down at once; a renewal still unanswered when the trust ends (a hung
 *   query, a pool exhausted by workers) is abandoned and the leader steps down, so its services
 *   never run past its lease while another process is elected.
 * - The lease lives on the database clock, so the elector's own timers (elections, renewals,
 *   trust) run on the clock it is given — the runner passes the live one — while the services
 *   keep the ambient clock (`TestClock` drives the scheduler in tests).
 * - Resigning is bounded (2 s): a stop with the database unreachable does not wait on it; the
 *   row then expires after the TTL.
 * - While leading, the leader-only services run in a scope of their own; stepping down closes
 *   it. On stop the leader resigns: it deletes its own term's row and notifies.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Driver } from "./driver/driver.ts"
import { parseLeadership } from "./notification.ts"
import type { Notifier } from "./notifier.ts"
import * as Telemetry from "./telemetry.ts"

export interface ElectorConfig {
  readonly driver: Driver
  /** `river_leadership` notifications (a resignation: try now) and reconnects (try now). */
  readonly notifier: Notifier["Service"]
  readonly leaderId: string
  readonly ttl: Duration.Duration
  readonly electInterval: Duration.Duration
  readonly renewInterval: Duration.Duration
  /** Started when elected, interrupted when leadership ends. */
  readonly services: Effect.Effect<void, never, Scope.Scope>
  /** The clock of the elector's own timers (default: the ambient one). */
  readonly clock?: Clock.Clock | undefined
}

/** How long resigning may take before the stop goes on without it (the row expires by itself). */
const RESIGN_TIMEOUT_MILLIS = 2_000

export interface Elector {
  readonly isLeader: () => boolean
  /** Resigns if leading (for stop). */
  readonly resign: Effect.Effect<void>
}

export const make = Effect.fnUntraced(function*(config: ElectorConfig) {
  const { driver, leaderId, ttl } = config
  /** The services keep the clock of whoever built the elector. */
  const servicesClock = yield* Clock.Clock
  /** Runs an effect of the elector's own on its clock. */
  const timed = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    config.clock === undefined ? effect : Effect.provideService(effect, Clock.Clock, config.clock)
  const wake = yield* Queue.sliding<void>(1)
  let term: { readonly electedUs: bigint; trustUntil: number; readonly scope: Scope.Closeable } | undefined

  const attemptElection = driver.leaderAttemptElect({ leaderId, ttl })

  const stepDown = (why: string) =>
    Effect.gen(function*() {
      const current = term
      if (current === undefined) return
      term = undefined
      yield* Effect.logInfo(`effect-river: ${leaderId} is no longer leader (${why})`)
      yield* Telemetry.recordLeader(false)
      yield* Scope.close(current.scope, Exit.void)
    })

  const becomeLeader = (electedUs: bigint, attemptStartedAt: number) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      term = { electedUs, trustUntil: attemptStartedAt + Duration.toMillis(config.ttl) - 1_000, scope }
      yield* Effect.logInfo(`effect-river: ${leaderId} elected leader`)
      yield* Telemetry.recordLeader(true)
      yield* config.services.pipe(Scope.provide(scope), Effect.provideService(Clock.Clock, servicesClock), Effect.forkIn(scope))
    })

  const followerStep = Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const term = yield* attemptElection
    if (term !== undefined) return yield* becomeLeader(term, startedAt)
    const jitter = yield* Random.nextBetween(0, 1_000)
    yield* Effect.raceFirst(Effect.sleep(Duration.toMillis(config.electInterval) + jitter), Queue.take(wake))
  })

  const leaderStep = Effect.gen(function*() {
    yield* Effect.sleep(config.renewInterval)
    const current = term
    if (current === undefined) return
    const startedAt = yield* Clock.currentTimeMillis
    // A renewal still unanswered when the trust ends is abandoned: the lease may be gone by then.
    const answered = yield* driver.leaderAttemptReelect({ leaderId, term: current.electedUs, ttl }).pipe(
      Effect.option,
      Effect.timeoutOption(Math.max(0, current.trustUntil - startedAt))
    )
    if (Option.isNone(answered)) return yield* stepDown("the renewal did not answer before the lease ended")
    const renewed = answered.value
    if (Option.isSome(renewed) && renewed.value) {
      current.trustUntil = startedAt + Duration.toMillis(config.ttl) - 1_000
      return
    }
    const now = yield* Clock.currentTimeMillis
    if (Option.isSome(renewed) || now >= current.trustUntil) {
      yield* stepDown(Option.isSome(renewed) ? "lost the leader row" : "could not renew in time")
    }
  })

  const loop = Effect.gen(function*() {
    while (true) {
      yield* (term === undefined ? followerStep : leaderStep).pipe(
        Effect.catchCause((cause) =>
          Effect.andThen(
            Effect.logWarning("effect-river: leader election step failed", Cause.pretty(cause)),
            Effect.sleep(config.electInterval)
          )
        )
      )
    }
  })

  const resign: Effect.Effect<void> = Effect.gen(function*() {
    const current = term
    if (current === undefined) return
    yield* stepDown("resigned")
    yield* timed(
      driver.leaderResign({ leaderId, term: current.electedUs }).pipe(
        Effect.retry({ times: 2 }),
        Effect.interruptible, // so that the timeout can abandon it inside the uninterruptible resign
        Effect.timeoutOrElse({
          duration: RESIGN_TIMEOUT_MILLIS,
          orElse: () => Effect.fail(new Error(`no answer within ${RESIGN_TIMEOUT_MILLIS} ms; the lease expires by itself`))
        }),
        Effect.catchCause((cause) => Effect.logWarning("effect-river: resigning leadership failed", Cause.pretty(cause)))
      )
    )
  }).pipe(Effect.uninterruptible)

  const onNotification = (payload: string) =>
    Effect.gen(function*() {
      const action = parseLeadership(payload)
      if (action === "resigned" && term === undefined) {
        // Let the resigning leader finish; then try at once (River: 0–50 ms).
        yield* timed(Effect.sleep(yield* Random.nextBetween(0, 50)))
        Queue.offerUnsafe(wake, undefined)
      } else if (action === "request_resign" && term !== undefined) {
        yield* resign
      }
    })

  const leadership = yield* config.notifier.subscribe("river_leadership")
  const reconnects = yield* config.notifier.reconnects
  yield* Effect.forkScoped(Stream.runForEach(leadership, onNotification))
  yield* Effect.forkScoped(Stream.runForEach(reconnects, () => Effect.sync(() => void Queue.offerUnsafe(wake, undefined))))
  yield* Effect.forkScoped(timed(loop))
  return {
    isLeader: () => term !== undefined,
    resign
  } satisfies Elector
})
