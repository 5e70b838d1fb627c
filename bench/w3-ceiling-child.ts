/**
 * W3 raw-ceiling child process: the minimum a runner in another process has to do to stop a job
 * on a notification. It LISTENs on one channel (`PgClient.listen`, own pool), holds one fiber per
 * "job" (`Effect.never` with an `onInterrupt` that reports the time), and for every notification
 * naming a job interrupts that fiber from the LISTEN fiber itself: no parsing beyond the id, no
 * lookup in the database, no runner.
 *
 * `node bench/w3-ceiling-child.ts <database url> <channel> [diag]`, forked with an IPC channel by
 * bench/w3.ts. The parent arms job ids (`arm`), answered by `started` per id and `armed`.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Fiber, Queue, Redacted } from "effect"
import { type ChildMessage, installNotificationProbe, now, type ParentMessage } from "./w3.ts"

const [url, channel, mode] = process.argv.slice(2)
if (url === undefined || channel === undefined || process.send === undefined) {
  console.error("usage: forked by bench/w3.ts: node bench/w3-ceiling-child.ts <database url> <channel>")
  process.exit(2)
}
const send = (message: ChildMessage) => process.send!(message)
if (mode === "diag") installNotificationProbe((id, at) => send({ type: "notified", id, at }))

let stop: () => void = () => {}
const stopped = new Promise<void>((resolve) => {
  stop = resolve
})
process.on("disconnect", () => process.exit(1))

const program = Effect.gen(function*() {
  const pg = yield* PgClient.PgClient
  const fibers = new Map<string, Fiber.Fiber<never>>()
  const armRequests = yield* Queue.unbounded<ReadonlyArray<string>>()
  process.on("message", (message: ParentMessage) => {
    if (message.type === "ping") send({ type: "pong", seq: message.seq, at: now() })
    else if (message.type === "stop") stop()
    else if (message.type === "arm") Queue.offerUnsafe(armRequests, message.ids)
  })

  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const ids = yield* Queue.take(armRequests)
    for (const id of ids) {
      const fiber = yield* Effect.forkScoped(
        Effect.suspend(() => {
          send({ type: "started", id, at: now() })
          return Effect.never
        }).pipe(Effect.onInterrupt(() =>
          Effect.sync(() => {
            const at = now()
            send({ type: "interrupted", id, at })
          })
        ))
      )
      fibers.set(id, fiber)
    }
    send({ type: "armed", ids: [...ids] })
  })))

  const notifications = yield* pg.listen(channel)
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const n = yield* Queue.take(notifications)
    const match = /"job_id"\s*:\s*(\d+)/.exec(n.payload)
    const fiber = match === null ? undefined : fibers.get(match[1]!)
    if (fiber === undefined) return
    fibers.delete(match![1]!)
    yield* Fiber.interrupt(fiber)
  })))

  send({ type: "ready", pid: process.pid })
  yield* Effect.promise(() => stopped)
})

Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })))
).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error("w3-ceiling-child failed:", error)
    process.exit(1)
  }
)
