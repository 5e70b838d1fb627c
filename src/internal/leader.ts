/**
 * Leader election on River's `river_leader` row (§8.1), so effect-river and River processes
 * share one election per schema.
 *
 * - Followers try to claim the row every `electInterval` (+ up to 1 s jitter), and 0–50 ms after
 *   a `resigned` notification on `<schema>.river_leadership` (handed in by the runner's
 *   listener through `onNotification`).
 * - The leader renews every `renewInterval`, and trusts its lease only until the start of its
 *   last successful renewal + TTL − 1 s. A failed renewal (row gone or expired) or an expired
 *   trust makes it step down at once.
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
import type * as SqlClient from "effect/sql/SqlClient"
import type { LeaderSql } from "./sql/leader.ts"

export interface ElectorConfig {
  readonly sql: SqlClient.SqlClient
  readonly q: LeaderSql
  readonly leaderId: string
  readonly ttl: Duration.Duration
  readonly electInterval: Duration.Duration
  readonly renewInterval: Duration.Duration
  /** Started when elected, interrupted when leadership ends. */
  readonly services: Effect.Effect<void, never, Scope.Scope>
}

export interface Elector {
  readonly isLeader: () => boolean
  /** Handles a `river_leadership` notification (resigned → try now; request_resign → resign). */
  readonly onNotification: (payload: string) => Effect.Effect<void>
  /** Asks a follower to try an election now (after a reconnect). */
  readonly wake: Effect.Effect<void>
  /** Resigns if leading (for stop). */
  readonly resign: Effect.Effect<void>
}

export const make = Effect.fnUntraced(function*(config: ElectorConfig) {
  const { leaderId, q, sql } = config
  const ttlSeconds = Duration.toSeconds(config.ttl)
  const wake = yield* Queue.sliding<void>(1)
  let term: { readonly electedUs: bigint; trustUntil: number; readonly scope: Scope.Closeable } | undefined

  const attemptElection = sql.withTransaction(
    Effect.andThen(
      sql.unsafe(q.leaderDeleteExpired),
      sql.unsafe<{ elected_us: bigint }>(q.leaderInsert, [leaderId, ttlSeconds])
    )
  )

  const stepDown = (why: string) =>
    Effect.gen(function*() {
      const current = term
      if (current === undefined) return
      term = undefined
      yield* Effect.logDebug(`effect-river: ${leaderId} is no longer leader (${why})`)
      yield* Scope.close(current.scope, Exit.void)
    })

  const becomeLeader = (electedUs: bigint, attemptStartedAt: number) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      term = { electedUs, trustUntil: attemptStartedAt + Duration.toMillis(config.ttl) - 1_000, scope }
      yield* Effect.logDebug(`effect-river: ${leaderId} elected leader`)
      yield* config.services.pipe(Scope.provide(scope), Effect.forkIn(scope))
    })

  const followerStep = Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const rows = yield* attemptElection
    if (rows.length > 0) return yield* becomeLeader(rows[0]!.elected_us, startedAt)
    const jitter = yield* Random.nextBetween(0, 1_000)
    yield* Effect.raceFirst(Effect.sleep(Duration.toMillis(config.electInterval) + jitter), Queue.take(wake))
  })

  const leaderStep = Effect.gen(function*() {
    yield* Effect.sleep(config.renewInterval)
    const current = term
    if (current === undefined) return
    const startedAt = yield* Clock.currentTimeMillis
    const renewed = yield* sql.unsafe(q.leaderRenew, [current.electedUs, leaderId, ttlSeconds]).pipe(Effect.option)
    if (Option.isSome(renewed) && renewed.value.length > 0) {
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
    yield* sql.unsafe(q.leaderResign, [current.electedUs, leaderId]).pipe(
      Effect.retry({ times: 2 }),
      Effect.catchCause((cause) => Effect.logWarning("effect-river: resigning leadership failed", Cause.pretty(cause)))
    )
  }).pipe(Effect.uninterruptible)

  const onNotification = (payload: string) =>
    Effect.gen(function*() {
      const message = parse(payload)
      if (message?.action === "resigned" && term === undefined) {
        // Let the resigning leader finish; then try at once (River: 0–50 ms).
        yield* Effect.sleep(yield* Random.nextBetween(0, 50))
        Queue.offerUnsafe(wake, undefined)
      } else if (message?.action === "request_resign" && term !== undefined) {
        yield* resign
      }
    })

  yield* Effect.forkScoped(loop)
  return {
    isLeader: () => term !== undefined,
    onNotification,
    wake: Effect.sync(() => void Queue.offerUnsafe(wake, undefined)),
    resign
  } satisfies Elector
})

const parse = (payload: string): { readonly action?: unknown } | undefined => {
  try {
    const value: unknown = JSON.parse(payload)
    return typeof value === "object" && value !== null ? value : undefined
  } catch {
    return undefined
  }
}
