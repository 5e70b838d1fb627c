/**
 * The LISTEN supervisor's reconnect policy and health check, on a scripted connection (no
 * database): each `reserve` opens a session whose LISTEN queues and ping the test controls, and
 * TestClock measures the delay before the next `reserve`. The real reconnect against PostgreSQL
 * is covered in test/Runner.test.ts ("re-LISTENs after losing its connection").
 */
import { assert, describe, it } from "@effect/vitest"
import type { PgClient } from "@effect/sql-pg"
import { Clock, Effect, Queue, Ref, Stream } from "effect"
import { ConnectionError, SqlError } from "effect/sql/SqlError"
import { TestClock } from "effect/testing"
import { makeListen, makePollOnly } from "../../src/internal/notifier.ts"

interface Session {
  readonly openedAt: number
  readonly channels: Array<string>
  readonly queues: Array<Queue.Queue<{ readonly channel: string; readonly payload: string; readonly processId: number }, SqlError>>
}

/** A PgClient stand-in whose sessions are recorded; `ping` decides how each health check ends. */
const scripted = (ping: Ref.Ref<"ok" | "hang">) =>
  Effect.gen(function*() {
    const sessions: Array<Session> = []
    const reserve = Effect.gen(function*() {
      const session: Session = { openedAt: yield* Clock.currentTimeMillis, channels: [], queues: [] }
      sessions.push(session)
      return {
        executeRaw: () => Effect.flatMap(Ref.get(ping), (mode) => (mode === "ok" ? Effect.succeed([]) : Effect.never)),
        connection: {
          listen: (channel: string) =>
            Effect.map(Queue.unbounded<{ channel: string; payload: string; processId: number }, SqlError>(), (queue) => {
              session.channels.push(channel)
              session.queues.push(queue)
              return queue
            })
        }
      }
    })
    return { pg: { reserve } as unknown as PgClient.PgClient, sessions }
  })

const lost = (session: Session) =>
  Effect.forEach(session.queues, (queue) =>
    Queue.fail(queue, new SqlError({ reason: new ConnectionError({ cause: "scripted", message: "connection lost" }) })))

/** Moves the clock 10 ms at a time until a new session opens; returns how far it moved. */
const delayUntilSession = (sessions: ReadonlyArray<Session>, count: number, max = 60_000) =>
  Effect.gen(function*() {
    let moved = 0
    for (let i = 0; i < 20 && sessions.length < count; i++) yield* Effect.yieldNow
    while (sessions.length < count) {
      if (moved >= max) return yield* Effect.die(new Error(`no session ${count} after ${moved} ms`))
      yield* TestClock.adjust("10 millis")
      moved += 10
      for (let i = 0; i < 20 && sessions.length < count; i++) yield* Effect.yieldNow
    }
    return moved
  })

describe("LISTEN supervisor", () => {
  it.effect("delivers each channel's notifications to that topic's subscribers, in order", () =>
    Effect.gen(function*() {
      const ping = yield* Ref.make<"ok" | "hang">("ok")
      const { pg, sessions } = yield* scripted(ping)
      const notifier = yield* makeListen({ pg, schema: "s" })
      const inserts = yield* notifier.subscribe("river_insert")
      const controls = yield* notifier.subscribe("river_control")
      assert.deepStrictEqual(sessions[0]!.channels, ["s.river_insert", "s.river_control", "s.river_leadership"])
      const [insert, control] = sessions[0]!.queues
      for (const payload of ["a", "b"]) yield* Queue.offer(insert!, { channel: "s.river_insert", payload, processId: 1 })
      yield* Queue.offer(control!, { channel: "s.river_control", payload: "c", processId: 1 })
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(Stream.take(inserts, 2))), ["a", "b"])
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(Stream.take(controls, 1))), ["c"])
      assert.isTrue(notifier.listening)
      assert.isUndefined(notifier.loopback)
    }))

  it.effect("after a healthy period, a lost connection is re-opened after the shortest delay again", () =>
    Effect.gen(function*() {
      const ping = yield* Ref.make<"ok" | "hang">("ok")
      const { pg, sessions } = yield* scripted(ping)
      yield* makeListen({ pg, schema: "s" })
      assert.strictEqual(sessions.length, 1)
      const delays: Array<number> = []
      for (let loss = 1; loss <= 8; loss++) {
        yield* TestClock.adjust("7 seconds") // connected and healthy for 7 s
        yield* lost(sessions.at(-1)!)
        delays.push(yield* delayUntilSession(sessions, loss + 1))
      }
      for (const delay of delays) assert.isAtMost(delay, 110, `delays: ${delays.join(", ")}`)
    }))

  it.effect("a connection that keeps failing at once backs off, doubling up to 5 s", () =>
    Effect.gen(function*() {
      const ping = yield* Ref.make<"ok" | "hang">("ok")
      const { pg, sessions } = yield* scripted(ping)
      yield* makeListen({ pg, schema: "s" })
      const delays: Array<number> = []
      for (let loss = 1; loss <= 8; loss++) {
        yield* lost(sessions.at(-1)!)
        delays.push(yield* delayUntilSession(sessions, loss + 1))
      }
      assert.deepStrictEqual(delays, [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000])
    }))

  it.effect("a connection that stops answering is replaced: pinged every 5 s, given up after 10 s", () =>
    Effect.gen(function*() {
      const ping = yield* Ref.make<"ok" | "hang">("ok")
      const { pg, sessions } = yield* scripted(ping)
      const reconnects = yield* Ref.make(0)
      const notifier = yield* makeListen({ pg, schema: "s" })
      yield* Effect.forkScoped(Stream.runForEach(yield* notifier.reconnects, () => Ref.update(reconnects, (n) => n + 1)))
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(sessions.length, 1, "answered pings keep the connection")
      yield* Ref.set(ping, "hang") // half-open: no error, no answer
      const start = sessions[0]!.openedAt
      const delay = yield* delayUntilSession(sessions, 2)
      const reopenedAfter = sessions[1]!.openedAt - start - 30_000
      assert.isAtMost(reopenedAfter, 5_000 + 10_000 + 100 + 10, `re-opened ${reopenedAfter} ms after the last good ping window`)
      assert.isAtLeast(delay, 10_000, "not before the ping timed out")
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      assert.strictEqual(yield* Ref.get(reconnects), 1, "subscribers hear of the reconnect (and catch up)")
    }))
})

describe("poll-only notifier", () => {
  it.effect("hears nothing from the database; delivers what this process loops back, to each topic's subscribers", () =>
    Effect.gen(function*() {
      const notifier = yield* makePollOnly
      assert.isFalse(notifier.listening)
      const inserts = yield* notifier.subscribe("river_insert")
      const controls = yield* notifier.subscribe("river_control")
      yield* notifier.loopback!("river_insert", `{"queue": "a"}`)
      yield* notifier.loopback!("river_control", `{"action" : "cancel", "job_id" : 1, "queue" : "a"}`)
      yield* notifier.loopback!("river_insert", `{"queue": "b"}`)
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(Stream.take(inserts, 2))), [`{"queue": "a"}`, `{"queue": "b"}`])
      assert.deepStrictEqual(Array.from(yield* Stream.runCollect(Stream.take(controls, 1))), [`{"action" : "cancel", "job_id" : 1, "queue" : "a"}`])
    }))
})
