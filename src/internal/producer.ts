/**
 * A producer: fetches and runs the jobs of one queue.
 *
 * Fetch triggers (all debounced, River §3.3/§3.6): start, a poll every `fetchPollInterval`
 * (+ up to 10 % jitter, at least 10 ms), an insert notification for the queue, a job finishing
 * while the last fetch filled every slot, a resume, a reconnect. The debounce is leading-edge:
 * a trigger after a quiet period fetches at once; triggers within `fetchCooldown` of the last
 * fetch give one more fetch at the end of the cooldown.
 *
 * Each fetch asks for exactly the free slots (`maxWorkers` − running), never more. Every job
 * runs in its own fiber in a `FiberMap` keyed by job id, so one job can be interrupted by id.
 * A fetch, once sent, is never interrupted: rows it marked `running` always get a fiber.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import type * as Latch from "effect/Latch"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import type { JobRow } from "../Job.ts"
import type { Completer } from "./completer.ts"
import type { Driver } from "./driver/driver.ts"
import { execute, type ExecutorConfig, type InterruptReason, timeoutOf } from "./executor.ts"

/**
 * Test hook: runs after a fetch statement returned its rows and before their jobs are
 * registered and started (the window in which River lost cancels, PR #1397). Default: nothing.
 */
export const BeforeJobsStart = Context.Reference<(rows: ReadonlyArray<JobRow>) => Effect.Effect<void>>(
  "effect-river/internal/BeforeJobsStart",
  { defaultValue: () => () => Effect.void }
)

export interface ProducerConfig {
  readonly queue: string
  readonly maxWorkers: number
  readonly fetchCooldown: Duration.Duration
  readonly fetchPollInterval: Duration.Duration
  readonly clientId: string
  readonly driver: Driver
  readonly executor: ExecutorConfig
  readonly completer: Completer
  /** How often overdue jobs are looked for (the executor must have `externalTimeouts`). */
  readonly timeoutSweepInterval: Duration.Duration
  /** Opened when the runner starts; nothing is fetched before. */
  readonly started: Latch.Latch
  /** Start paused (the queue's `paused_at` in the database). */
  readonly paused?: boolean | undefined
  /** Called once a fetch's jobs have started (the runner checks cancel requests that arrived before). */
  readonly onFetched?: ((rows: ReadonlyArray<JobRow>) => Effect.Effect<void>) | undefined
}

export interface Producer {
  readonly queue: string
  /** Asks for a fetch (debounced). */
  readonly trigger: Effect.Effect<void>
  readonly triggerUnsafe: () => void
  /** Stops or restarts fetching (running jobs are unaffected). */
  readonly setPaused: (paused: boolean) => Effect.Effect<void>
  readonly isPaused: () => boolean
  /** Ids of the jobs running now. */
  readonly running: Effect.Effect<ReadonlyArray<bigint>>
  /** The jobs running now, as they were fetched (with the cancel request each carried then). */
  readonly runningJobs: Effect.Effect<ReadonlyArray<JobRow>>
  readonly hasJob: (id: bigint) => boolean
  /** Interrupts one running job, recording why; true if it was running here. */
  readonly interrupt: (id: bigint, reason: InterruptReason) => Effect.Effect<boolean>
  /** Stops fetching for good (waits for an in-flight fetch). */
  readonly stop: Effect.Effect<void>
  /** Waits until no job runs. */
  readonly awaitIdle: Effect.Effect<void>
  /** Interrupts every running job (runner stop). */
  readonly interruptAll: (reason: InterruptReason) => Effect.Effect<void>
}

export const make = Effect.fnUntraced(function*(config: ProducerConfig) {
  const { completer, driver, executor, queue } = config
  const cooldownMillis = Duration.toMillis(config.fetchCooldown)
  const pollMillis = Duration.toMillis(config.fetchPollInterval)
  const jitterMillis = Math.max(pollMillis * 0.1, 10)
  const scope = yield* Scope.Scope
  const beforeJobsStart = yield* BeforeJobsStart
  const jobs = yield* FiberMap.make<bigint, void, never>()
  const wake = yield* Queue.sliding<void>(1)
  /**
   * Running jobs (their fibers are in `jobs`), as they were fetched: the cancel check ignores the
   * cancel request a row carried then.
   */
  const runningIds = new Map<bigint, JobRow>()
  /** Attempt deadlines (Clock millis) of running jobs that have a timeout. */
  const deadlines = new Map<bigint, number>()
  let fetchWhenSlotFrees = false
  let paused = config.paused === true
  let stopped = false
  let lastFetchAt = Number.NEGATIVE_INFINITY

  const triggerUnsafe = () => {
    Queue.offerUnsafe(wake, undefined)
  }
  const trigger = Effect.sync(triggerUnsafe)

  const jobDone = (id: bigint) => Effect.sync(() => {
    runningIds.delete(id)
    deadlines.delete(id)
    if (fetchWhenSlotFrees && !stopped) {
      fetchWhenSlotFrees = false
      triggerUnsafe()
    }
  })

  const runJob = (row: JobRow) =>
    execute(executor, row, completer.enqueue).pipe(Effect.ensuring(jobDone(row.id)))

  const fetchOnce = Effect.gen(function*() {
    const limit = config.maxWorkers - runningIds.size
    if (limit <= 0) {
      fetchWhenSlotFrees = true
      return
    }
    const now = yield* Clock.currentTimeMillis
    lastFetchAt = now
    const rows = yield* driver.jobGetAvailable({ queue, max: limit, now: new Date(now), clientId: config.clientId })
    if (rows.length === 0) return
    yield* beforeJobsStart(rows)
    for (const row of rows) {
      runningIds.set(row.id, row)
      const timeout = timeoutOf(executor, row)
      if (timeout !== "none") deadlines.set(row.id, now + Duration.toMillis(timeout))
    }
    // Set before the jobs start: a job may finish before this fiber runs again.
    if (rows.length === limit) fetchWhenSlotFrees = true
    for (const row of rows) yield* FiberMap.run(jobs, row.id, runJob(row))
    if (config.onFetched !== undefined) yield* config.onFetched(rows)
  }).pipe(
    Effect.uninterruptible,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.logWarning(`effect-river: fetch for queue ${queue} failed`, Cause.pretty(cause))
    )
  )

  const pollDelay = Effect.map(Random.next, (r) => pollMillis + r * jitterMillis)

  const loop = Effect.gen(function*() {
    // Start (when the runner opens the gate): one fetch at once.
    yield* config.started.await
    triggerUnsafe()
    while (!stopped) {
      const delay = yield* pollDelay
      yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(delay))
      if (stopped) break
      const since = (yield* Clock.currentTimeMillis) - lastFetchAt
      if (since < cooldownMillis) yield* Effect.sleep(cooldownMillis - since)
      // Triggers that arrived during the cooldown are served by this fetch.
      yield* Queue.poll(wake)
      if (paused || stopped) continue
      yield* fetchOnce
    }
  })

  const loopFiber = yield* Effect.forkScoped(loop)



  const producer: Producer = {
    queue,
    trigger,
    triggerUnsafe,
    setPaused: (value) =>
      Effect.sync(() => {
        const wasPaused = paused
        paused = value
        if (wasPaused && !value) triggerUnsafe()
      }),
    isPaused: () => paused,
    running: Effect.sync(() => [...runningIds.keys()]),
    runningJobs: Effect.sync(() => [...runningIds.values()]),
    hasJob: (id) => runningIds.has(id),
    interrupt: (id, reason) =>
      Effect.suspend(() => {
        if (!runningIds.has(id)) return Effect.succeed(false)
        executor.interruptReasons.set(id, reason)
        // Interrupt without waiting (a job may delay its interruption in uninterruptible code);
        // if it finished first, its outcome never read the reason: drop it afterwards.
        return FiberMap.remove(jobs, id).pipe(
          Effect.ensuring(Effect.sync(() => executor.interruptReasons.delete(id))),
          Effect.forkIn(scope),
          Effect.as(true)
        )
      }),
    stop: Effect.suspend(() => {
      stopped = true
      return Fiber.interrupt(loopFiber)
    }),
    awaitIdle: FiberMap.awaitEmpty(jobs),
    interruptAll: (reason) =>
      Effect.suspend(() => {
        for (const id of runningIds.keys()) executor.interruptReasons.set(id, reason)
        return FiberMap.clear(jobs)
      })
  }

  // Job timeouts: one sweep per producer interrupts overdue jobs (reason "timeout"), instead of
  // a timer racing every job. Its period is a tenth of the shortest timeout, 10 ms to 1 s.
  const sweep = Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(config.timeoutSweepInterval)
      if (deadlines.size === 0) continue
      const now = yield* Clock.currentTimeMillis
      for (const [id, at] of deadlines) {
        if (at > now) continue
        deadlines.delete(id)
        yield* producer.interrupt(id, "timeout")
      }
    }
  })
  yield* Effect.forkScoped(sweep)
  return producer
}) as (config: ProducerConfig) => Effect.Effect<Producer, never, Scope.Scope>
