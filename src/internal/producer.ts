/**
 * A producer: fetches and runs the jobs of one queue, and keeps up with everything that concerns
 * its queue, as River's producer does.
 *
 * Fetch triggers (River §3.3/§3.6): start, a poll every `fetchPollInterval` (+ up to 10 %
 * jitter, at least 10 ms), an insert notification for the queue, a job finishing while the last
 * fetch filled every slot, a resume, a reconnect. Each fetch asks for exactly the free slots
 * (`maxWorkers` − running), never more. A fetch, once sent, is never interrupted: rows it marked
 * `running` always get a fiber (the executor's).
 *
 * The debounce (issue 16) protects the database from a storm of triggers without throttling a
 * backlog or a trickle:
 * - Draining: a job finishing after a fetch that filled every slot fetches at once, without a
 *   cooldown, for as long as fetches keep coming back full (a backlog drains at the speed of
 *   its jobs, not at `maxWorkers` per cooldown).
 * - Quiet period: an insert notification arriving at least {@link quietMillis} after the
 *   previous one (a trickle, not a storm) fetches at once.
 * - Otherwise leading-edge: a trigger fetches at once if the last fetch was at least
 *   `fetchCooldown` ago; triggers within `fetchCooldown` of it give one more fetch at the end of
 *   the cooldown (River's rule, which is what a storm of notifications gets).
 *
 * What it hears through the Notifier, for its queue: inserts (fetch now), pause and resume (its
 * queue or `"*"`), cancels (interrupts the job if it runs here; a cancel for a job of its queue
 * that is not running here yet — a fetch may have taken it and not started it, which River lost
 * until 0.48 — is kept a minute, at most 1,000, and the fetch that brings the job checks the
 * database for it at once), reconnects (fetch, re-read the pause state, check cancels).
 *
 * Its own upkeep, in the runtime's one loop shape (`loop.ts`): the cancel check (asks the
 * database which of its running jobs had a cancel requested during their attempt — how a cancel
 * reaches a poll-only runner, and a safety net for a lost notification otherwise), the queue row
 * refresh, and the pause-state poll (without LISTEN the only way to hear a pause or resume; with
 * it, once a minute, a fallback for a notification lost while the listener reconnected).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Latch from "effect/Latch"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { DatabaseError } from "../Errors.ts"
import type { JobRow } from "../Job.ts"
import type { Completer, HandoffTarget } from "./completer.ts"
import type { Driver } from "./driver/driver.ts"
import * as Executor from "./executor.ts"
import * as Loop from "./loop.ts"
import type { FlowLimits } from "./flowControl.ts"
import { parseControl, parseInsert } from "./notification.ts"
import type { Notifier } from "./notifier.ts"
import type { InterruptReason } from "./outcome.ts"
import * as Telemetry from "./telemetry.ts"

/**
 * Test hook: runs after a fetch statement returned its rows and before their jobs are
 * registered and started (the window in which River lost cancels, PR #1397). Default: nothing.
 */
export const BeforeJobsStart = Context.Reference<(rows: ReadonlyArray<JobRow>) => Effect.Effect<void>>(
  "effect-river/internal/BeforeJobsStart",
  { defaultValue: () => () => Effect.void }
)

/** Cancel requests kept for jobs not running here yet: at most this many, this long. */
const EARLY_CANCELS_MAX = 1_000
const EARLY_CANCELS_MILLIS = 60_000

/**
 * The quiet period that lets an insert notification fetch at once: a tenth of the fetch
 * cooldown (10 ms at the default 100 ms). Notifications closer together than this are a storm
 * and get the cooldown.
 */
export const quietMillis = (cooldownMillis: number): number => cooldownMillis / 10

/** What a producer needs. */
export interface ProducerConfig {
  readonly queue: string
  readonly maxWorkers: number
  readonly fetchCooldown: Duration.Duration
  readonly fetchPollInterval: Duration.Duration
  readonly clientId: string
  readonly driver: Driver
  readonly notifier: Notifier["Service"]
  /** How its jobs are run (the executor's settings; the completer receives the outcomes). */
  readonly executor: Pick<Executor.ExecutorConfig, "workers" | "jobTimeout" | "retryPolicy" | "onStarted">
  readonly completer: Completer
  /** Opened when the runner starts; nothing is fetched before. */
  readonly started: Latch.Latch
  readonly cancelCheckInterval: Duration.Duration
  /** How often the queue's pause state is read (without LISTEN the only way; with it a fallback). */
  readonly queuePollInterval: Duration.Duration
  readonly queueRefreshInterval: Duration.Duration
  /**
   * Flow-control limits across every runner (global limit, partitions, rate): fetches go through
   * `Driver.jobGetAvailableLimited`. A slot freed elsewhere arrives as a fetch request (the
   * runner's completer says so after its write commits); a rate that holds jobs back wakes the
   * producer when it allows the next start.
   */
  readonly limits?: FlowLimits | undefined
}

/** A running producer. */
export interface Producer {
  readonly queue: string
  /** Asks for a fetch (debounced). */
  readonly fetchNow: () => void
  /**
   * Asks for a fetch without the cooldown: jobs of a globally limited queue finished somewhere.
   * Returns how many jobs that fetch may start at most (free workers, less what a fetch in flight
   * asked for; 0 while paused or stopped).
   */
  readonly slotFreed: () => number
  /**
   * The slot hand-over target of a queue with a global limit alone (no `partition`, no `rateLimit`:
   * the completer's `handoff`); undefined for every other queue.
   */
  readonly handoff: HandoffTarget | undefined
  /** Ids of the jobs running now. */
  readonly running: () => ReadonlyArray<bigint>
  /** Stops fetching for good (waits for an in-flight fetch); cancels keep reaching running jobs. */
  readonly stop: Effect.Effect<void>
  /** Waits until no job runs. */
  readonly awaitIdle: Effect.Effect<void>
  /** Interrupts every running job and waits for their outcomes (runner stop). */
  readonly interruptAll: (reason: InterruptReason) => Effect.Effect<void>
}

/**
 * Starts a producer in the current scope: creates or refreshes its queue's row (reading whether
 * it is paused), subscribes to its notifications and starts its loops. Fails if the queue's row
 * cannot be written.
 */
export const make = Effect.fnUntraced(function*(config: ProducerConfig) {
  const { completer, driver, notifier, queue } = config
  const cooldownMillis = Duration.toMillis(config.fetchCooldown)
  const pollMillis = Duration.toMillis(config.fetchPollInterval)
  const jitterMillis = Math.max(pollMillis * 0.1, 10)
  const beforeJobsStart = yield* BeforeJobsStart

  const row = yield* driver.queueCreateOrSetUpdatedAt({ name: queue, now: new Date(yield* Clock.currentTimeMillis) }).pipe(
    Effect.mapError(DatabaseError.fromSqlError("Runner: queue start"))
  )
  let paused = row.pausedAt !== null

  const wake = yield* Queue.sliding<void>(1)
  const fetchNow = () => {
    Queue.offerUnsafe(wake, undefined)
  }
  let fetchWhenSlotFrees = false
  let stopped = false
  let lastFetchAt = Number.NEGATIVE_INFINITY
  /** How many jobs the fetch in flight may bring (0 when none is in flight). */
  let fetching = 0
  /** Workers promised to jobs a completion's slot hand-over is starting (see `handoff`). */
  let reserved = 0
  // Set by a trigger that skips the cooldown (a slot freed while draining, a notification after
  // a quiet period); read and cleared by the fetch loop.
  let fetchAtOnce = false
  const quiet = quietMillis(cooldownMillis)
  let lastInsertNotificationAt = Number.NEGATIVE_INFINITY
  const scope = yield* Effect.scope
  /** When a rate-limit wake-up is set for, if one is. */
  let rateWakeAt: number | undefined
  /** Fetches when the queue's rate allows the next start (the earliest wake-up asked for wins). */
  const wakeForRate = (at: number) =>
    Effect.suspend(() => {
      if (rateWakeAt !== undefined && rateWakeAt <= at) return Effect.void
      rateWakeAt = at
      return Effect.asVoid(Effect.forkIn(
        Effect.gen(function*() {
          yield* Effect.sleep(Math.max(0, at - (yield* Clock.currentTimeMillis)))
          if (rateWakeAt !== at) return
          rateWakeAt = undefined
          fetchNow()
        }),
        scope
      ))
    })

  const executor = yield* Executor.make({
    ...config.executor,
    driver,
    complete: completer.enqueue,
    onJobDone: () => {
      if (fetchWhenSlotFrees && !stopped) {
        fetchWhenSlotFrees = false
        fetchAtOnce = true
        fetchNow()
      }
    }
  })

  const setPaused = (value: boolean) => {
    const wasPaused = paused
    paused = value
    if (wasPaused && !value) fetchNow()
  }

  /** Interrupts the given jobs if they run here (a cancel was requested). */
  const cancelRunning = (ids: Iterable<bigint>) => {
    for (const id of ids) executor.interrupt(id, "remote-cancel")
  }

  /** Cancel requests for jobs of this queue not running here when they arrived (job id → Clock millis). */
  const earlyCancels = new Map<bigint, number>()
  const onCancelRequested = (id: bigint, forQueue: string) =>
    Effect.gen(function*() {
      if (executor.interrupt(id, "remote-cancel") || forQueue !== queue) return
      const now = yield* Clock.currentTimeMillis
      earlyCancels.delete(id)
      earlyCancels.set(id, now)
      for (const [old, at] of earlyCancels) {
        if (earlyCancels.size <= EARLY_CANCELS_MAX && now - at < EARLY_CANCELS_MILLIS) break
        earlyCancels.delete(old)
      }
    })
  /** After a fetch: were any of its jobs cancelled before they started here? */
  const checkEarlyCancels = (rows: ReadonlyArray<JobRow>) =>
    Effect.suspend(() => {
      if (earlyCancels.size === 0) return Effect.void
      const matched = rows.filter((r) => earlyCancels.delete(r.id))
      if (matched.length === 0) return Effect.void
      return driver.jobGetCancelRequested({ jobs: matched }).pipe(
        Effect.map(cancelRunning),
        Effect.catchCause((cause) => Effect.logWarning("effect-river: cancel check of fetched jobs failed", Cause.pretty(cause)))
      )
    })

  /** Starts jobs marked running for this runner (by a fetch or a slot hand-over) at `now`. */
  const startFetched = (rows: ReadonlyArray<JobRow>, now: number) =>
    Effect.andThen(beforeJobsStart(rows), Effect.andThen(executor.start(rows, now), checkEarlyCancels(rows)))

  const fetchOnce = Effect.gen(function*() {
    const limit = config.maxWorkers - executor.size() - reserved
    if (limit <= 0) {
      fetchWhenSlotFrees = true
      return
    }
    const now = yield* Clock.currentTimeMillis
    lastFetchAt = now
    // A fetch under a global limit never brings more than the limit.
    fetching = Math.min(limit, config.limits?.globalLimit ?? limit)
    let rows: ReadonlyArray<JobRow>
    if (config.limits === undefined) {
      rows = yield* driver.jobGetAvailable({ queue, max: limit, now: new Date(now), clientId: config.clientId })
    } else {
      const fetched = yield* driver.jobGetAvailableLimited({
        queue,
        max: limit,
        now: new Date(now),
        clientId: config.clientId,
        limits: config.limits
      })
      rows = fetched.jobs
      if (fetched.nextRateAt !== undefined) yield* wakeForRate(fetched.nextRateAt.getTime())
      if (fetched.truncated) {
        fetchAtOnce = true
        fetchNow()
      }
    }
    yield* Telemetry.recordFetch(queue, rows.length)
    if (rows.length === 0) return
    // Set before the jobs start: a job may finish before this fiber runs again.
    if (rows.length === limit) fetchWhenSlotFrees = true
    yield* startFetched(rows, now)
  }).pipe(
    Effect.ensuring(Effect.sync(() => {
      fetching = 0
    })),
    Effect.uninterruptible,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.logWarning(`effect-river: fetch for queue ${queue} failed`, Cause.pretty(cause))
    )
  )

  const pollDelay = Effect.map(Random.next, (r) => pollMillis + r * jitterMillis)

  const fetchLoop = Effect.gen(function*() {
    // Start (when the runner opens the gate): one fetch at once.
    yield* config.started.await
    fetchNow()
    while (!stopped) {
      const delay = yield* pollDelay
      yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(delay))
      if (stopped) break
      if (fetchAtOnce) {
        fetchAtOnce = false
      } else {
        const since = (yield* Clock.currentTimeMillis) - lastFetchAt
        if (since < cooldownMillis) yield* Effect.sleep(cooldownMillis - since)
      }
      // Triggers that arrived meanwhile are served by this fetch.
      fetchAtOnce = false
      yield* Queue.poll(wake)
      if (paused || stopped) continue
      yield* fetchOnce
    }
  })

  /** Asks the database which of the running jobs had a cancel requested during their attempt. */
  const cancelCheck = Effect.suspend(() => {
    if (executor.size() === 0) return Effect.void
    return Effect.map(driver.jobGetCancelRequested({ jobs: executor.rows() }), cancelRunning)
  })

  const refreshPauseState = Effect.map(driver.queueList({ names: [queue] }), (rows) => setPaused(rows[0]?.pausedAt != null))

  // Notifications, each topic in order.
  const inserts = yield* notifier.subscribe("river_insert")
  const controls = yield* notifier.subscribe("river_control")
  const reconnects = yield* notifier.reconnects
  /** Free workers that neither a fetch in flight nor a hand-over has promised (0 while paused or stopping). */
  const freeRoom = () => paused || stopped ? 0 : Math.max(0, config.maxWorkers - executor.size() - fetching - reserved)
  /** Jobs of a globally limited queue finished somewhere: a slot is free, fetch without the cooldown. */
  const slotFreed = () => {
    if (config.limits?.globalLimit !== undefined) fetchAtOnce = true
    fetchNow()
    return freeRoom()
  }
  /**
   * The slot hand-over of a queue with a global limit alone: the completer writes this queue's
   * plain successes with a statement that also starts the next jobs in their slots, for this
   * runner, so a freed slot never waits for a fetch. Room is reserved first (free workers that no
   * fetch in flight may fill; none while paused or stopping) and the jobs started are run at once,
   * even if the runner began stopping meanwhile: they are running in the database already.
   */
  const limits = config.limits
  const handoffLimit = limits?.partition === undefined && limits?.rate === undefined ? limits?.globalLimit : undefined
  const handoff: HandoffTarget | undefined = handoffLimit === undefined ? undefined : {
    clientId: config.clientId,
    limit: handoffLimit,
    reserve: (n) => {
      const room = Math.min(n, freeRoom())
      reserved += room
      return room
    },
    deliver: (rows, n, now) =>
      Effect.suspend(() => {
        reserved -= n
        return rows.length === 0 ? Effect.void : startFetched(rows, now)
      })
  }
  yield* Effect.forkScoped(Stream.runForEach(inserts, (payload) => {
    const insert = parseInsert(payload)
    if (insert?.queue !== queue) return Effect.void
    if (insert.slotFreed) return Effect.sync(() => void slotFreed())
    return Effect.map(Clock.currentTimeMillis, (now) => {
      // The first notification after a quiet period fetches at once; a storm gets the cooldown.
      if (now - lastInsertNotificationAt >= quiet || now < lastInsertNotificationAt) fetchAtOnce = true
      lastInsertNotificationAt = now
      fetchNow()
    })
  }))
  yield* Effect.forkScoped(Stream.runForEach(controls, (payload) => {
    const control = parseControl(payload)
    if (control === undefined) return Effect.void
    if (control.action === "cancel") {
      return control.jobId === undefined ? Effect.void : onCancelRequested(control.jobId, control.queue)
    }
    if (control.queue === "*" || control.queue === queue) setPaused(control.action === "pause")
    return Effect.void
  }))
  // Notifications sent while disconnected are lost: catch up on what they would have said.
  yield* Effect.forkScoped(Stream.runForEach(reconnects, () =>
    Effect.all([Effect.sync(fetchNow), refreshPauseState.pipe(Effect.ignore), cancelCheck.pipe(Effect.ignore)], {
      discard: true
    })))

  const fetchFiber = yield* Effect.forkScoped(fetchLoop)
  yield* Effect.forkScoped(
    Loop.run({ name: "cancel check", interval: config.cancelCheckInterval, start: "interval", runOnce: cancelCheck })
  )
  const upkeep = yield* Effect.forkScoped(Effect.all([
    Loop.run({
      name: "queue refresh",
      interval: config.queueRefreshInterval,
      start: "interval",
      runOnce: Effect.flatMap(Clock.currentTimeMillis, (now) => driver.queueCreateOrSetUpdatedAt({ name: queue, now: new Date(now) }))
    }),
    Loop.run({ name: "queue pause poll", interval: config.queuePollInterval, start: "interval", runOnce: refreshPauseState })
  ], { concurrency: "unbounded", discard: true }))

  return {
    queue,
    fetchNow,
    slotFreed,
    handoff,
    running: () => executor.rows().map((r) => r.id),
    stop: Effect.suspend(() => {
      stopped = true
      return Effect.andThen(Fiber.interrupt(fetchFiber), Fiber.interrupt(upkeep))
    }),
    awaitIdle: executor.awaitIdle,
    interruptAll: executor.interruptAll
  } satisfies Producer
}) as (config: ProducerConfig) => Effect.Effect<Producer, DatabaseError, Scope.Scope>
