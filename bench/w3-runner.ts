/**
 * W3 child process: a `Runner` in a process of its own (own connection pool) working the
 * `bench_w3_forever` kind, whose job runs forever and, when interrupted, reports the time.
 *
 * `node bench/w3-runner.ts <database url> <schema | -> [diag]`, forked with an IPC channel by
 * bench/w3.ts. Messages to the parent (times are `performance.timeOrigin + performance.now()`):
 * `ready` once the runner runs (its LISTENs are up), `started` when a job's worker starts,
 * `interrupted` from the worker's `onInterrupt`, `completed` for every runner event (published
 * after the outcome is committed), `pong` for the parent's clock-offset pings. With `diag`, a
 * probe on socket reads reports when a cancel notification's bytes reached this process
 * (`notified`).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, PubSub, Redacted } from "effect"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { type ChildMessage, installNotificationProbe, now, type ParentMessage, W3_RUNNER_SETTINGS, W3Job } from "./w3.ts"

const [url, schemaArg, mode] = process.argv.slice(2)
if (url === undefined || process.send === undefined) {
  console.error("usage: forked by bench/w3.ts: node bench/w3-runner.ts <database url> <schema | -> [diag]")
  process.exit(2)
}
const schema = schemaArg === undefined || schemaArg === "-" || schemaArg === "" ? undefined : schemaArg
const diag = mode === "diag"
const send = (message: ChildMessage) => process.send!(message)
if (diag) installNotificationProbe((id, at) => send({ type: "notified", id, at }))

let stop: () => void = () => {}
const stopped = new Promise<void>((resolve) => {
  stop = resolve
})
process.on("message", (message: ParentMessage) => {
  if (message.type === "ping") send({ type: "pong", seq: message.seq, at: now() })
  else if (message.type === "stop") stop()
})
process.on("disconnect", () => process.exit(1))

const Forever = Worker.make(W3Job, (job) =>
  Effect.suspend(() => {
    send({ type: "started", id: String(job.id), at: now() })
    return Effect.never
  }).pipe(
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        const at = now() // taken before the IPC send
        send({ type: "interrupted", id: String(job.id), at })
      })
    )
  ), { timeout: "none" })

const program = Effect.gen(function*() {
  const { runner } = yield* Runner.make({
    queues: { default: { maxWorkers: W3_RUNNER_SETTINGS.maxWorkers } },
    workers: [Forever],
    schema,
    jobTimeout: "none",
    // Nothing should be running at the end; do not wait 30 s if something is.
    softStopTimeout: "100 millis"
  })
  const events = yield* runner.subscribe
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(PubSub.take(events), (event) =>
    Effect.sync(() => send({ type: "completed", id: String(event.job.id), kind: event.kind, at: now() })))))
  send({ type: "ready", pid: process.pid })
  yield* Effect.promise(() => stopped)
})

Effect.runPromise(
  program.pipe(
    Effect.scoped,
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: W3_RUNNER_SETTINGS.maxConnections }))
  )
).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error("w3-runner failed:", error)
    process.exit(1)
  }
)
