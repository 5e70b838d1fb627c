/**
 * The Notifier: River's notifications for one runner, as a service its parts subscribe to. The
 * producer subscribes to `river_insert` (fetch now) and `river_control` (cancel, pause, resume),
 * the elector to `river_leadership`, and all of them to `reconnects` (catch up on what was missed).
 * Two layers provide it:
 *
 * - {@link layerListen}: LISTEN on River's channels for the life of the scope, on one dedicated
 *   connection (as River's notifier does), surviving lost connections. The first LISTENs happen
 *   before the layer is built, so nothing sent after the runner started is missed. When the
 *   connection is lost (server restart, network, a terminated backend), it LISTENs again after a
 *   delay and then announces a reconnect, because notifications sent while it was disconnected
 *   are gone: subscribers catch up (fetch, re-read pause states, check cancels, try an election).
 *   - Reconnect delay: 100 ms, doubling on each failure in a row, at most 5 s; a connection that
 *     stayed up for a healthy period (5 s) starts again from 100 ms.
 *   - Health check: the connection is pinged (`SELECT 1`) every 5 s; a ping that fails or takes
 *     more than 10 s (a half-open connection, which raises no error by itself) drops it and
 *     reconnects. River pings the same way.
 *   - One connection serves every channel when the driver's pooled connection exposes `listen`
 *     (`@effect/sql-pg` 4 does); otherwise each channel gets a connection of its own.
 * - {@link layerPollOnly}: nothing comes from the database (for example behind a
 *   transaction-pooling PgBouncer, or without a `PgClient`); only what this process sends itself
 *   reaches it, through `loopback`, so the runner's own inserts and cancels act at once.
 *
 * Subscribers receive every notification published after they subscribed, in order, each topic
 * on its own; a subscription ends with its scope.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as PgConnection from "@effect/sql-pg/PgConnection"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import { channel, type Topic } from "./notification.ts"

/**
 * River's notifications as streams.
 */
export class Notifier extends Context.Service<Notifier, {
  /** Whether notifications come from the database (LISTEN); false for the poll-only layer. */
  readonly listening: boolean
  /** Subscribes to a topic now: nothing published after this returns is missed. Payloads as sent. */
  readonly subscribe: (topic: Topic) => Effect.Effect<Stream.Stream<string>, never, Scope.Scope>
  /** Subscribes to reconnects now: one element each time a lost connection LISTENs again. */
  readonly reconnects: Effect.Effect<Stream.Stream<void>, never, Scope.Scope>
  /**
   * Hands a notification this process sent (after its commit) to this process's subscribers:
   * `undefined` when the database delivers them anyway (LISTEN), so callers skip it.
   */
  readonly loopback: ((topic: Topic, payload: string) => Effect.Effect<void>) | undefined
}>()("effect-river/internal/Notifier") {}

/** One hub per topic and one for reconnects: what both layers publish to. */
const makeHubs = Effect.gen(function*() {
  const topics = {
    river_insert: yield* PubSub.unbounded<string>(),
    river_control: yield* PubSub.unbounded<string>(),
    river_leadership: yield* PubSub.unbounded<string>()
  } satisfies Record<Topic, PubSub.PubSub<string>>
  const reconnects = yield* PubSub.unbounded<void>()
  return {
    topics,
    reconnectsHub: reconnects,
    subscribe: (topic: Topic) => Effect.map(PubSub.subscribe(topics[topic]), Stream.fromSubscription),
    reconnects: Effect.map(PubSub.subscribe(reconnects), Stream.fromSubscription)
  }
})

/** The poll-only notifier, built in the current scope (see {@link layerPollOnly}). */
export const makePollOnly: Effect.Effect<Notifier["Service"], never, Scope.Scope> = Effect.map(makeHubs, (hubs) =>
  Notifier.of({
    listening: false,
    subscribe: hubs.subscribe,
    reconnects: hubs.reconnects,
    loopback: (topic, payload) => Effect.asVoid(PubSub.publish(hubs.topics[topic], payload))
  }))

/**
 * No notifications from the database; `loopback` delivers this process's own.
 */
export const layerPollOnly: Layer.Layer<Notifier> = Layer.effect(Notifier, makePollOnly)

/** Options of {@link layerListen}. */
export interface ListenOptions {
  readonly pg: PgClient.PgClient
  /** The schema whose channels to LISTEN on (resolved: `current_schema()` when none was configured). */
  readonly schema: string
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

type Listen = (channel: string) => Effect.Effect<Queue.Dequeue<PgConnection.Notification, SqlError>, SqlError, Scope.Scope>

interface Session {
  readonly listen: Listen
  /** A round trip on the LISTEN connection. */
  readonly ping: Effect.Effect<unknown, SqlError>
}

/** LISTENs on channels of one reserved connection (or of one connection each), and pings it. */
const open = (pg: PgClient.PgClient): Effect.Effect<Session, SqlError, Scope.Scope> =>
  Effect.map(pg.reserve, (reserved): Session => {
    const connection = (reserved as unknown as { readonly connection?: Partial<PgConnection.PgConnection> }).connection
    return {
      listen: typeof connection?.listen === "function"
        ? (channel) => connection.listen!(channel)
        : (channel) => pg.listen(channel),
      ping: reserved.executeRaw("SELECT 1", [])
    }
  })

const TOPICS: ReadonlyArray<Topic> = ["river_insert", "river_control", "river_leadership"]

/**
 * The LISTEN notifier, built in the current scope (see {@link layerListen}). Fails when the
 * first LISTEN fails (the runner then fails to start).
 */
export const makeListen = (options: ListenOptions): Effect.Effect<Notifier["Service"], SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const hubs = yield* makeHubs
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
            orElse: () =>
              Effect.die(new Cause.TimeoutError(`the LISTEN connection did not answer a ping within ${Duration.format(PING_TIMEOUT)}`))
          })
        )
      )
    const session = Effect.scoped(
      Effect.gen(function*() {
        const opened = yield* open(options.pg)
        const queues = yield* Effect.forEach(TOPICS, (topic) =>
          Effect.map(opened.listen(channel(options.schema, topic)), (queue) => [queue, hubs.topics[topic]] as const))
        connectedAt = yield* timer(Clock.currentTimeMillis)
        if (connected) PubSub.publishUnsafe(hubs.reconnectsHub, undefined)
        connected = true
        yield* Deferred.succeed(ready, undefined)
        // One reader per channel and the health check; the first failure (a lost or silent
        // connection) ends the session.
        yield* Effect.all([
          ...queues.map(([queue, hub]) =>
            Effect.forever(Effect.map(Queue.take(queue), (n) => void PubSub.publishUnsafe(hub, n.payload)))
          ),
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
    return Notifier.of({ listening: true, subscribe: hubs.subscribe, reconnects: hubs.reconnects, loopback: undefined })
  })

/**
 * LISTEN on River's channels of `schema` through `pg`, supervised (see the module's notes).
 */
export const layerListen = (options: ListenOptions): Layer.Layer<Notifier, SqlError> =>
  Layer.effect(Notifier, makeListen(options))
