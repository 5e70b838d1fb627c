/**
 * LISTEN on River's channels for the life of a scope, on one dedicated connection (as River's
 * notifier does), surviving lost connections.
 *
 * The first LISTENs happen before `listen` returns, so nothing sent after the runner started is
 * missed. When the connection is lost (server restart, network, a terminated backend), it
 * LISTENs again after a delay and then calls `onReconnect`, because notifications sent while it
 * was disconnected are gone: the runner catches up (fetches, re-reads pause states, checks
 * cancels).
 *
 * - Reconnect delay: 100 ms, doubling on each failure in a row, at most 5 s; a connection that
 *   stayed up for a healthy period (5 s) starts again from 100 ms.
 * - Health check: the connection is pinged (`SELECT 1`) every 5 s; a ping that fails or takes
 *   more than 10 s (a half-open connection, which raises no error by itself) drops it and
 *   reconnects. River pings the same way.
 *
 * One connection serves every channel when the driver's pooled connection exposes `listen`
 * (`@effect/sql-pg` 4 does); otherwise each channel gets a connection of its own.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"

export interface ListenOptions {
  readonly pg: PgClient.PgClient
  /** Handler per channel. Handlers should be quick; they run in the listener's fiber. */
  readonly channels: ReadonlyMap<string, (payload: string) => Effect.Effect<void>>
  readonly onReconnect: Effect.Effect<void>
  /**
   * The clock for the supervisor's own timers (reconnect delays, healthy period, pings). The
   * runner passes the live clock: the connection is real, so its health is measured in real time
   * even when jobs run on `TestClock`. Default: the ambient `Clock`.
   */
  readonly clock?: Clock.Clock | undefined
}

const FIRST_DELAY_MILLIS = 100
const MAX_DELAY_MILLIS = 5_000
/** A connection up this long was healthy: the next loss starts from the shortest delay. */
const HEALTHY_AFTER_MILLIS = 5_000
const PING_INTERVAL = Duration.seconds(5)
const PING_TIMEOUT = Duration.seconds(10)

/** The delay before reconnect attempt `failures` (1 = first failure in a row). */
export const reconnectDelayMillis = (failures: number): number =>
  Math.min(FIRST_DELAY_MILLIS * 2 ** Math.max(0, failures - 1), MAX_DELAY_MILLIS)

type Subscribe = (channel: string) => Effect.Effect<Queue.Dequeue<PgConnection.Notification, SqlError>, SqlError, Scope.Scope>

interface Session {
  readonly subscribe: Subscribe
  /** A round trip on the LISTEN connection. */
  readonly ping: Effect.Effect<unknown, SqlError>
}

/** LISTENs on channels of one reserved connection (or of one connection each), and pings it. */
const open = (pg: PgClient.PgClient): Effect.Effect<Session, SqlError, Scope.Scope> =>
  Effect.map(pg.reserve, (reserved): Session => {
    const connection = (reserved as unknown as { readonly connection?: Partial<PgConnection.PgConnection> }).connection
    return {
      subscribe: typeof connection?.listen === "function"
        ? (channel) => connection.listen!(channel)
        : (channel) => pg.listen(channel),
      ping: reserved.executeRaw("SELECT 1", [])
    }
  })

class PingTimeout extends Error {
  override readonly name = "PingTimeout"
}

export const listen = (options: ListenOptions): Effect.Effect<void, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void, SqlError>()
    let connected = false
    /** When the current connection finished its LISTENs (Clock millis). */
    let connectedAt: number | undefined
    /** Runs a timer of the supervisor's own on its clock. */
    const timer = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      options.clock === undefined ? effect : Effect.provideService(effect, Clock.Clock, options.clock)
    const health = (session: Session) =>
      Effect.forever(
        Effect.andThen(
          Effect.sleep(PING_INTERVAL),
          Effect.timeoutOrElse(session.ping, {
            duration: PING_TIMEOUT,
            orElse: () => Effect.die(new PingTimeout(`the LISTEN connection did not answer a ping within ${Duration.format(PING_TIMEOUT)}`))
          })
        )
      )
    const session = Effect.scoped(
      Effect.gen(function*() {
        const opened = yield* open(options.pg)
        const queues = yield* Effect.forEach([...options.channels], ([channel, handler]) =>
          Effect.map(opened.subscribe(channel), (queue) => [queue, handler] as const))
        connectedAt = yield* timer(Clock.currentTimeMillis)
        if (connected) yield* options.onReconnect
        connected = true
        yield* Deferred.succeed(ready, undefined)
        // One reader per channel and the health check; the first failure (a lost or silent
        // connection) ends the session.
        yield* Effect.all([
          ...queues.map(([queue, handler]) => Effect.forever(Effect.flatMap(Queue.take(queue), (n) => handler(n.payload)))),
          timer(health(opened))
        ], { concurrency: "unbounded", discard: true })
      })
    )
    const supervised = Effect.gen(function*() {
      let failures = 0
      while (true) {
        connectedAt = undefined
        const exit = yield* Effect.exit(session)
        if (exit._tag === "Success" || Cause.hasInterruptsOnly(exit.cause)) return
        yield* Deferred.failCause(ready, exit.cause as Cause.Cause<SqlError>)
        const now = yield* timer(Clock.currentTimeMillis)
        failures = connectedAt !== undefined && now - connectedAt >= HEALTHY_AFTER_MILLIS ? 1 : failures + 1
        const delay = reconnectDelayMillis(failures)
        yield* Effect.logWarning(
          `effect-river: LISTEN connection lost; reconnecting in ${delay} ms (failure ${failures} in a row)`,
          Cause.pretty(exit.cause)
        )
        yield* timer(Effect.sleep(delay))
      }
    })
    yield* Effect.forkScoped(supervised)
    // A first LISTEN that fails is reported to the caller (the runner then fails to start).
    yield* Deferred.await(ready)
  })
