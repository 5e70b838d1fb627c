/**
 * LISTEN on River's channels for the life of a scope, on one dedicated connection (as River's
 * notifier does), surviving lost connections.
 *
 * The first LISTENs happen before `listen` returns, so nothing sent after the runner started is
 * missed. When the connection is lost (server restart, network, a terminated backend), it
 * LISTENs again with a growing delay (100 ms doubling, at most 5 s) and then calls
 * `onReconnect`, because notifications sent while it was disconnected are gone: the runner
 * catches up (fetches, re-reads pause states, checks cancels).
 *
 * One connection serves every channel when the driver's pooled connection exposes `listen`
 * (`@effect/sql-pg` 4 does); otherwise each channel gets a connection of its own.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"

export interface ListenOptions {
  readonly pg: PgClient.PgClient
  /** Handler per channel. Handlers should be quick; they run in the listener's fiber. */
  readonly channels: ReadonlyMap<string, (payload: string) => Effect.Effect<void>>
  readonly onReconnect: Effect.Effect<void>
}

/** 100 ms, 200 ms, 400 ms … capped at 5 s, forever. */
const reconnectSchedule = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")])

type Subscribe = (channel: string) => Effect.Effect<Queue.Dequeue<PgConnection.Notification, SqlError>, SqlError, Scope.Scope>

/** A function that LISTENs on channels of one reserved connection, or of one connection each. */
const subscriber = (pg: PgClient.PgClient): Effect.Effect<Subscribe, SqlError, Scope.Scope> =>
  Effect.map(pg.reserve, (reserved): Subscribe => {
    const connection = (reserved as unknown as { readonly connection?: Partial<PgConnection.PgConnection> }).connection
    return typeof connection?.listen === "function"
      ? (channel) => connection.listen!(channel)
      : (channel) => pg.listen(channel)
  })

export const listen = (options: ListenOptions): Effect.Effect<void, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void, SqlError>()
    let connected = false
    const session = Effect.scoped(
      Effect.gen(function*() {
        const subscribe = yield* subscriber(options.pg)
        const queues = yield* Effect.forEach([...options.channels], ([channel, handler]) =>
          Effect.map(subscribe(channel), (queue) => [queue, handler] as const))
        if (connected) yield* options.onReconnect
        connected = true
        yield* Deferred.succeed(ready, undefined)
        // One reader per channel; the first failure (a lost connection) ends the session.
        yield* Effect.forEach(queues, ([queue, handler]) =>
          Effect.forever(Effect.flatMap(Queue.take(queue), (n) => handler(n.payload))), { concurrency: "unbounded", discard: true })
      })
    )
    const supervised = session.pipe(
      Effect.tapCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.void
          : Effect.andThen(
            Deferred.failCause(ready, cause),
            Effect.logWarning(`effect-river: LISTEN connection lost; reconnecting`, Cause.pretty(cause))
          )
      ),
      Effect.retry(reconnectSchedule)
    )
    yield* Effect.forkScoped(supervised)
    // A first LISTEN that fails is reported to the caller (the runner then fails to start).
    yield* Deferred.await(ready)
  })
