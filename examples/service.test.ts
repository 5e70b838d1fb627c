/**
 * `examples/service.ts` as it is deployed: a child process on the test run's PostgreSQL. SIGTERM
 * while jobs run stops it gracefully within the soft-stop bound (exit 0, the interrupted jobs
 * back to `available`); a second signal stops it at once; a missing `DATABASE_URL` stops it at
 * start with a message naming the variable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createDatabase, urlForDatabase } from "../test/utils/db.ts"
import * as Client from "../src/Client.ts"
import type { JobRow } from "../src/Job.ts"
import * as Testing from "../src/Testing.ts"
import { Sleep } from "./service.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const nodeBin = join(root, "node_modules", ".bin", "node")

interface Service {
  readonly child: ChildProcess
  readonly output: () => string
  /** Exit code and the time (ms, performance.now) it exited. */
  readonly exited: Deferred.Deferred<{ readonly code: number | null; readonly at: number }>
}

const startService = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const { DATABASE_URL: _, ...inherited } = process.env
    const child = spawn(nodeBin, ["examples/service.ts"], { cwd: root, env: { ...inherited, ...env } })
    const chunks: Array<string> = []
    child.stdout!.on("data", (chunk: Buffer) => chunks.push(chunk.toString("utf8")))
    child.stderr!.on("data", (chunk: Buffer) => chunks.push(chunk.toString("utf8")))
    const exited = yield* Deferred.make<{ readonly code: number | null; readonly at: number }>()
    child.on("exit", (code) => Deferred.doneUnsafe(exited, Effect.succeed({ code, at: performance.now() })))
    yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))
    return { child, output: () => chunks.join(""), exited } satisfies Service
  })

/** Polls (real time, generous deadline) until `check` holds. */
const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, deadline = Duration.seconds(60)) =>
  check.pipe(
    Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutOrElse({ duration: deadline, orElse: () => Effect.die(new Error(`timed out waiting for ${what}`)) })
  )

const waitForOutput = (service: Service, text: string) =>
  eventually(`"${text}" in the service's output`, Effect.sync(() => service.output().includes(text)))

/** Starts the service on a fresh database, inserts two minute-long jobs, waits until both run. */
const startWithRunningJobs = (softStop: string) =>
  Effect.gen(function*() {
    const url = urlForDatabase(yield* createDatabase("service"))
    const service = yield* startService({ DATABASE_URL: url, RIVER_SCHEMA: "svc", RIVER_SOFT_STOP_TIMEOUT: softStop })
    yield* waitForOutput(service, "worker started")
    const db = Testing.database(url, { maxConnections: 2 })
    const ids = yield* Effect.scoped(Effect.gen(function*() {
      const client = yield* Client.make({ schema: "svc" })
      const jobs = yield* client.insertMany([Sleep.of({ millis: 60_000 }), Sleep.of({ millis: 60_000 })])
      return jobs.map((r) => r.job.id)
    })).pipe(Effect.provide(db))
    const rows = Effect.scoped(Effect.gen(function*() {
      const client = yield* Client.make({ schema: "svc" })
      return yield* Effect.forEach(ids, (id) => client.get(id))
    })).pipe(Effect.provide(db))
    yield* eventually("both jobs running", Effect.map(rows, (jobs) => jobs.every((j) => j.state === "running")))
    return { service, rows }
  })

const assertBackToAvailable = (jobs: ReadonlyArray<JobRow>) => {
  for (const job of jobs) {
    assert.strictEqual(job.state, "available", `job ${job.id}`)
    assert.strictEqual(job.attempt, 0, "the interrupted attempt is given back")
    assert.deepStrictEqual(job.errors, [], "an interruption by a stop records no error")
  }
}

describe("examples/service.ts", () => {
  it.live("SIGTERM while jobs run: exits 0 within the soft-stop bound, the jobs back to available", () =>
    Effect.gen(function*() {
      const softStopMillis = 1_500
      const { rows, service } = yield* startWithRunningJobs(`${softStopMillis} millis`)
      const signalledAt = performance.now()
      service.child.kill("SIGTERM")
      const { at, code } = yield* Deferred.await(service.exited)
      assert.strictEqual(code, 0, service.output())
      // The jobs run for a minute: the stop waits the soft-stop timeout, then interrupts them.
      // The bound leaves room for a loaded machine (the final writes, the pool's close).
      assert.isBelow(at - signalledAt, softStopMillis + 15_000, service.output())
      assert.include(service.output(), "stopping gracefully")
      assertBackToAvailable(yield* rows)
    }), { timeout: 120_000 })

  it.live("a second signal stops at once, long before the soft-stop timeout", () =>
    Effect.gen(function*() {
      const { rows, service } = yield* startWithRunningJobs("10 minutes")
      service.child.kill("SIGTERM")
      yield* waitForOutput(service, "stopping gracefully")
      assert.isNull(service.child.exitCode, "still waiting for its jobs")
      const signalledAt = performance.now()
      service.child.kill("SIGINT")
      const { at, code } = yield* Deferred.await(service.exited).pipe(
        Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("no exit after the second signal")) })
      )
      assert.strictEqual(code, 0, service.output())
      assert.isBelow(at - signalledAt, 15_000)
      assert.include(service.output(), "again: interrupting the running jobs now")
      assertBackToAvailable(yield* rows)
    }), { timeout: 120_000 })

  it.live("without DATABASE_URL it stops at start, exit 1, naming the variable", () =>
    Effect.gen(function*() {
      const service = yield* startService({})
      const { code } = yield* Deferred.await(service.exited)
      assert.strictEqual(code, 1)
      assert.include(service.output(), "DATABASE_URL")
    }), { timeout: 60_000 })
})
