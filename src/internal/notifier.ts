/**
 * LISTEN on one channel for the life of a scope, surviving lost connections.
 *
 * The first LISTEN happens before `listen` returns, so nothing sent after the runner started is
 * missed. When the connection is lost (server restart, network), the listener LISTENs again with
 * a growing delay (up to 5 s) and then calls `onReconnect`, because notifications sent while it
 * was disconnected are gone: the runner fetches once to catch up.
 *
 * @internal
 */
import type { PgClient } from "@effect/sql-pg"
import { Cause, Deferred, Effect, Queue, Schedule, type Scope } from "effect"
import type { SqlError } from "effect/sql/SqlError"

export interface ListenOptions {
  readonly pg: PgClient.PgClient
  readonly channel: string
  readonly onPayload: (payload: string) => Effect.Effect<void>
  readonly onReconnect: Effect.Effect<void>
}

/** 100 ms, 200 ms, 400 ms … capped at 5 s, forever. */
const reconnectSchedule = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")])

export const listen = (options: ListenOptions): Effect.Effect<void, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void, SqlError>()
    let connected = false
    const session = Effect.scoped(
      Effect.gen(function*() {
        const queue = yield* options.pg.listen(options.channel)
        if (connected) yield* options.onReconnect
        connected = true
        yield* Deferred.succeed(ready, undefined)
        while (true) {
          const notification = yield* Queue.take(queue)
          yield* options.onPayload(notification.payload)
        }
      })
    )
    const supervised = session.pipe(
      Effect.tapCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.void
          : Effect.andThen(
            Deferred.failCause(ready, cause),
            Effect.logWarning(`effect-river: LISTEN ${options.channel} lost; reconnecting`, Cause.pretty(cause))
          )
      ),
      Effect.retry(reconnectSchedule)
    )
    yield* Effect.forkScoped(supervised)
    // A first LISTEN that fails is reported to the caller (the runner then fails to start).
    yield* Deferred.await(ready)
  })
