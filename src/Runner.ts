/**
 * The runner: fetches jobs from its queues and runs them with their workers.
 *
 * `Runner.layer` is scoped: building it starts the producers (one per queue), the batch
 * completer, one LISTEN connection for River's insert, control and leadership channels, and the
 * leader election (the leader runs the scheduler, the stuck-job rescuer and the cleaners for the
 * whole schema). Closing its scope is a graceful stop: resign leadership, stop fetching, let
 * running jobs finish for up to `softStopTimeout`, interrupt the rest — they go back to
 * `available` with the attempt given back — and write every outcome.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Layer, Redacted } from "effect"
 * import { Runner } from "effect-river"
 *
 * const RunnerLive = Runner.layer({
 *   queues: { default: { maxWorkers: 100 }, email: { maxWorkers: 10 } },
 *   workers: [SendEmailWorker, ResizeWorker]
 * }).pipe(Layer.provide([MailerLive, PgClient.layer({ url: Redacted.make(url) })]))
 * ```
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import * as Client from "./Client.ts"
import { DatabaseError, InvalidOptions } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import type { JobRow } from "./Job.ts"
import { queueProblem } from "./InsertOptions.ts"
import type { JobEvent } from "./JobEvent.ts"
import * as ClockSkew from "./internal/clockSkew.ts"
import * as Completer from "./internal/completer.ts"
import type { Completion } from "./internal/completer.ts"
import type { ExecutorConfig, InterruptReason } from "./internal/executor.ts"
import { show, validateSchema } from "./internal/identifiers.ts"
import { listen } from "./internal/notifier.ts"
import * as Producer from "./internal/producer.ts"
import * as Elector from "./internal/leader.ts"
import * as Periodic from "./internal/maintenance/periodic.ts"
import * as Maintenance from "./internal/maintenance/services.ts"
import * as Scheduler from "./internal/scheduler.ts"
import { makePgDriver } from "./internal/driver/pg/driver.ts"
import { channel, parseControl, parseInsert } from "./internal/notification.ts"
import type * as PeriodicJob from "./PeriodicJob.ts"
import type * as Worker from "./Worker.ts"

/**
 * Per-queue settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueOptions {
  /** Jobs of this queue running at once in this runner, 1 to 10,000. */
  readonly maxWorkers: number
  /** Overrides the runner's `fetchCooldown` for this queue. */
  readonly fetchCooldown?: Duration.Input | undefined
  /** Overrides the runner's `fetchPollInterval` for this queue. */
  readonly fetchPollInterval?: Duration.Input | undefined
}

/**
 * Runner configuration. Defaults are River's.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunnerOptions<W extends ReadonlyArray<Worker.Any>> {
  /** Queues to work, by name. */
  readonly queues: Readonly<Record<string, QueueOptions>>
  /** One worker per job kind. */
  readonly workers: W
  /** Schema of River's tables; omitted = the connection's search path. */
  readonly schema?: string | undefined
  /** Client ID (`attempted_by`); default River's `<hostname>_<start time>`. */
  readonly id?: string | undefined
  /**
   * Minimum time between two fetches of one queue (leading-edge debounce). 0 disables the
   * debounce (the testing setup uses it under `TestClock`).
   * @default "100 millis"
   */
  readonly fetchCooldown?: Duration.Input | undefined
  /**
   * Fetch at least this often even without notifications (fallback for lost notifications and
   * the only trigger in poll-only mode). Must be ≥ `fetchCooldown`.
   * @default "1 second"
   */
  readonly fetchPollInterval?: Duration.Input | undefined
  /**
   * Limit for one attempt; `"none"` for no limit. A worker's own `timeout` wins.
   * @default "1 minute"
   */
  readonly jobTimeout?: Duration.Input | "none" | undefined
  /** Retry policy for workers without their own; default River's `(errors + 1)^4` s ± 10 %. */
  readonly retryPolicy?: Worker.RetryPolicy | undefined
  /**
   * On stop, how long running jobs may finish before they are interrupted; `"none"` waits for
   * them without limit (River's default). Interrupted jobs return to `available`.
   * @default "30 seconds"
   */
  readonly softStopTimeout?: Duration.Input | "none" | undefined
  /**
   * On stop, how long the last outcomes may keep being retried while the database fails. A stop
   * takes at most `softStopTimeout` plus this (plus the driver's connect timeout when a fetch is in
   * flight); outcomes still unwritten are logged and their jobs stay `running` until the rescuer
   * takes them.
   * @default "5 seconds"
   */
  readonly stopFlushTimeout?: Duration.Input | undefined
  /**
   * How long the completer waits to batch outcomes before writing them (it writes at once when
   * 100 are pending). 0 writes whenever anything is pending.
   * @default "50 millis"
   */
  readonly completerFlushInterval?: Duration.Input | undefined
  /**
   * How often `retryable`/`scheduled` jobs due soon are made `available`.
   * @default "5 seconds"
   */
  readonly schedulerInterval?: Duration.Input | undefined
  /**
   * Never LISTEN (for example behind a transaction-pooling PgBouncer): fetch by polling only.
   * Forced when the `SqlClient` is not a `PgClient`.
   * @default false
   */
  readonly pollOnly?: boolean | undefined
  /**
   * How often the runner asks the database whether any of its running jobs had a cancel
   * requested (`metadata.cancel_attempted_at`), and interrupts those. This is how a cancel from
   * another process reaches a poll-only runner, and a safety net for a lost notification
   * otherwise (River has neither).
   * @default "1 second" in poll-only mode, "5 seconds" otherwise
   */
  readonly cancelCheckInterval?: Duration.Input | undefined
  /**
   * Poll-only mode: how often queue pause states are read from `river_queue` (River: 2 s).
   * @default "2 seconds"
   */
  readonly queuePollInterval?: Duration.Input | undefined
  /**
   * River's leader election timings. One runner per schema leads and runs the maintenance
   * services (scheduler, rescuer, job and queue cleaners) for everyone.
   * @default { ttl: "15 seconds", electInterval: "5 seconds", renewInterval: "5 seconds" }
   */
  readonly leadership?: {
    readonly ttl?: Duration.Input | undefined
    readonly electInterval?: Duration.Input | undefined
    readonly renewInterval?: Duration.Input | undefined
  } | undefined
  /**
   * A job still `running` this long after its attempt started is stuck (its runner died); the
   * leader's rescuer retries, discards or cancels it. Must be at least the job timeout.
   * @default "1 hour", or the job timeout + 1 hour
   */
  readonly rescueStuckJobsAfter?: Duration.Input | undefined
  /** @default "30 seconds" */
  readonly rescuerInterval?: Duration.Input | undefined
  /** How long finalized jobs are kept; `"forever"` keeps them. */
  readonly retention?: {
    /** @default "24 hours" */
    readonly cancelled?: Duration.Input | "forever" | undefined
    /** @default "24 hours" */
    readonly completed?: Duration.Input | "forever" | undefined
    /** @default "7 days" */
    readonly discarded?: Duration.Input | "forever" | undefined
  } | undefined
  /** @default "30 seconds" */
  readonly jobCleanerInterval?: Duration.Input | undefined
  /** Queue rows not refreshed for this long are deleted. @default "24 hours" */
  readonly queueRetention?: Duration.Input | undefined
  /** @default "1 hour" */
  readonly queueCleanerInterval?: Duration.Input | undefined
  /** How often each producer refreshes its queue's row. @default "10 minutes" */
  readonly queueRefreshInterval?: Duration.Input | undefined
  /**
   * Events kept per subscriber; a slower subscriber loses the oldest (the runner never waits
   * for subscribers).
   * @default 1000
   */
  readonly eventBuffer?: number | undefined
  /** Default insert options of the runner's `Client` (below each kind's defaults). */
  readonly insertDefaults?: InsertOptions.InsertOptions | undefined
  /**
   * The runner's `Client`: at most one insert notification per queue per this window (see
   * `Client.ClientOptions.insertNotifyCooldown`). 0 notifies on every insert (the testing setup
   * uses it under `TestClock`).
   * @default "100 millis"
   */
  readonly insertNotifyCooldown?: Duration.Input | undefined
  /**
   * Jobs the leader inserts on a schedule (see `PeriodicJob.make`). Every runner of a schema
   * should configure the same list: only the leader's runs.
   */
  readonly periodicJobs?: ReadonlyArray<PeriodicJob.PeriodicJob> | undefined
  /**
   * Warn when this process's clock and the database's differ by more than this, measured at
   * start and after each LISTEN reconnect: job times come from the Effect `Clock`, River's (Go)
   * from the database, so each side runs the other's jobs late or early by the difference.
   * `"off"` skips the check (the testing setup, whose `TestClock` is far from the database's).
   * @default "1 second"
   */
  readonly clockSkewWarning?: Duration.Input | "off" | undefined
  /**
   * Start fetching as soon as the runner is built. With `false`, nothing is fetched until
   * `runner.start` — for subscribing to events before the first job can finish.
   * @default true
   */
  readonly autoStart?: boolean | undefined
}

/**
 * The runner service.
 *
 * @since 0.1.0
 * @category services
 */
export class Runner extends Context.Service<Runner, {
  /** Client ID, recorded in `attempted_by` of the jobs this runner fetches. */
  readonly id: string
  readonly schema: string | undefined
  readonly queues: ReadonlyArray<string>
  /** True when the runner does not LISTEN (poll-only mode). */
  readonly pollOnly: boolean
  /**
   * Subscribes to job events; the subscription starts when this effect returns (no event
   * published after that is missed, within the buffer) and ends with the scope.
   */
  readonly subscribe: Effect.Effect<PubSub.Subscription<JobEvent>, never, Scope.Scope>
  /** Job events as a stream (subscribes when the stream starts). */
  readonly events: Stream.Stream<JobEvent>
  /** Ids of the jobs running in this runner now. */
  readonly running: Effect.Effect<ReadonlyArray<bigint>>
  /** Asks every producer to fetch now (subject to the cooldown). */
  readonly fetchNow: Effect.Effect<void>
  /** Whether this runner currently leads its schema (and runs maintenance). */
  readonly isLeader: Effect.Effect<boolean>
  /** Starts fetching (only needed with `autoStart: false`; idempotent). */
  readonly start: Effect.Effect<void>
}>()("effect-river/Runner") {}

const DEFAULTS = {
  fetchCooldown: "100 millis",
  fetchPollInterval: "1 second",
  jobTimeout: "1 minute",
  softStopTimeout: "30 seconds",
  completerFlushInterval: "50 millis",
  schedulerInterval: "5 seconds"
} as const

const duration = (
  field: string,
  input: Duration.Input | undefined,
  fallback: Duration.Input,
  min: number
): Duration.Duration | InvalidOptions => {
  const decoded = Duration.fromInput(input ?? fallback)
  if (Option.isNone(decoded) || !(Duration.toMillis(decoded.value) >= min)) {
    return new InvalidOptions({ field, rule: `must be a duration of at least ${min} ms`, value: show(input) })
  }
  return decoded.value
}

interface ValidatedQueue {
  readonly name: string
  readonly maxWorkers: number
  readonly fetchCooldown: Duration.Duration
  readonly fetchPollInterval: Duration.Duration
}

const validate = <W extends ReadonlyArray<Worker.Any>>(options: RunnerOptions<W>) =>
  Effect.gen(function*() {
    const fail = (e: InvalidOptions) => Effect.fail(e)
    const check = <A>(value: A | InvalidOptions): Effect.Effect<A, InvalidOptions> =>
      value instanceof InvalidOptions ? fail(value) : Effect.succeed(value)
    const fetchCooldown = yield* check(duration("fetchCooldown", options.fetchCooldown, DEFAULTS.fetchCooldown, 0))
    const fetchPollInterval = yield* check(
      duration("fetchPollInterval", options.fetchPollInterval, DEFAULTS.fetchPollInterval, 1)
    )
    const jobTimeout = options.jobTimeout === "none"
      ? "none" as const
      : yield* check(duration("jobTimeout", options.jobTimeout, DEFAULTS.jobTimeout, 1))
    const softStopTimeout = options.softStopTimeout === "none"
      ? "none" as const
      : yield* check(duration("softStopTimeout", options.softStopTimeout, DEFAULTS.softStopTimeout, 0))
    const completerFlushInterval = yield* check(
      duration("completerFlushInterval", options.completerFlushInterval, DEFAULTS.completerFlushInterval, 0)
    )
    const schedulerInterval = yield* check(
      duration("schedulerInterval", options.schedulerInterval, DEFAULTS.schedulerInterval, 1)
    )
    const stopFlushTimeout = yield* check(duration("stopFlushTimeout", options.stopFlushTimeout, "5 seconds", 0))
    const cancelCheckInterval = options.cancelCheckInterval === undefined
      ? undefined
      : yield* check(duration("cancelCheckInterval", options.cancelCheckInterval, "1 second", 1))
    const queuePollInterval = yield* check(duration("queuePollInterval", options.queuePollInterval, "2 seconds", 1))
    const clockSkewWarning = options.clockSkewWarning === "off"
      ? "off" as const
      : yield* check(duration("clockSkewWarning", options.clockSkewWarning, "1 second", 0))
    const leadership = options.leadership ?? {}
    const ttl = yield* check(duration("leadership.ttl", leadership.ttl, "15 seconds", 1_000))
    const electInterval = yield* check(duration("leadership.electInterval", leadership.electInterval, "5 seconds", 1))
    const renewInterval = yield* check(duration("leadership.renewInterval", leadership.renewInterval, "5 seconds", 1))
    if (Duration.toMillis(renewInterval) >= Duration.toMillis(ttl) - 1_000) {
      return yield* fail(new InvalidOptions({ field: "leadership.renewInterval", rule: "must be shorter than the TTL minus 1 second" }))
    }
    const rescueStuckJobsAfter = yield* check(duration(
      "rescueStuckJobsAfter",
      options.rescueStuckJobsAfter,
      jobTimeout === "none" ? "1 hour" : Duration.sum(jobTimeout, Duration.hours(1)),
      1
    ))
    if (jobTimeout !== "none" && Duration.toMillis(rescueStuckJobsAfter) < Duration.toMillis(jobTimeout)) {
      return yield* fail(new InvalidOptions({ field: "rescueStuckJobsAfter", rule: "must be at least the job timeout" }))
    }
    const keep = (state: "cancelled" | "completed" | "discarded", fallback: Duration.Input) => {
      const value = options.retention?.[state]
      return value === "forever" ? "forever" as const : duration(`retention.${state}`, value, fallback, 0)
    }
    const retention = {
      cancelled: yield* check(keep("cancelled", "24 hours")),
      completed: yield* check(keep("completed", "24 hours")),
      discarded: yield* check(keep("discarded", "7 days"))
    }
    const rescuerInterval = yield* check(duration("rescuerInterval", options.rescuerInterval, "30 seconds", 1))
    const jobCleanerInterval = yield* check(duration("jobCleanerInterval", options.jobCleanerInterval, "30 seconds", 1))
    const queueRetention = yield* check(duration("queueRetention", options.queueRetention, "24 hours", 1))
    const queueCleanerInterval = yield* check(duration("queueCleanerInterval", options.queueCleanerInterval, "1 hour", 1))
    const queueRefreshInterval = yield* check(duration("queueRefreshInterval", options.queueRefreshInterval, "10 minutes", 1))
    const eventBuffer = options.eventBuffer ?? 1000
    if (!Number.isInteger(eventBuffer) || eventBuffer < 1) {
      return yield* fail(new InvalidOptions({ field: "eventBuffer", rule: "must be a positive integer", value: show(eventBuffer) }))
    }
    if (typeof options.queues !== "object" || options.queues === null) {
      return yield* fail(new InvalidOptions({ field: "queues", rule: "must be an object of queue name to options" }))
    }
    const queues: Array<ValidatedQueue> = []
    for (const [name, queue] of Object.entries(options.queues)) {
      const problem = queueProblem(name)
      if (problem !== undefined) {
        return yield* fail(new InvalidOptions({ field: `queues.${name}`, rule: `queue name ${problem}`, value: show(name) }))
      }
      const maxWorkers = queue?.maxWorkers
      if (!Number.isInteger(maxWorkers) || maxWorkers < 1 || maxWorkers > 10_000) {
        return yield* fail(
          new InvalidOptions({ field: `queues.${name}.maxWorkers`, rule: "must be an integer from 1 to 10,000", value: show(maxWorkers) })
        )
      }
      const cooldown = yield* check(duration(`queues.${name}.fetchCooldown`, queue.fetchCooldown, fetchCooldown, 0))
      const poll = yield* check(duration(`queues.${name}.fetchPollInterval`, queue.fetchPollInterval, fetchPollInterval, 1))
      if (Duration.toMillis(poll) < Duration.toMillis(cooldown)) {
        return yield* fail(
          new InvalidOptions({ field: `queues.${name}.fetchPollInterval`, rule: "must be at least the fetch cooldown" })
        )
      }
      queues.push({ name, maxWorkers, fetchCooldown: cooldown, fetchPollInterval: poll })
    }
    if (!Array.isArray(options.workers)) {
      return yield* fail(new InvalidOptions({ field: "workers", rule: "must be an array of workers" }))
    }
    const workers = new Map<string, Worker.Any>()
    for (const worker of options.workers) {
      if (worker.jobKind.problem !== undefined) return yield* fail(worker.jobKind.problem)
      if (worker.problem !== undefined) return yield* fail(worker.problem)
      if (workers.has(worker.jobKind.kind)) {
        return yield* fail(
          new InvalidOptions({ field: "workers", rule: "must have one worker per kind", value: show(worker.jobKind.kind) })
        )
      }
      workers.set(worker.jobKind.kind, worker)
    }
    const periodicIds = new Set<string>()
    for (const periodic of options.periodicJobs ?? []) {
      if (periodic.problem !== undefined) return yield* fail(periodic.problem)
      if (periodicIds.has(periodic.id)) {
        return yield* fail(new InvalidOptions({ field: "periodicJobs", rule: "ids must be unique", value: show(periodic.id) }))
      }
      periodicIds.add(periodic.id)
    }
    if (queues.length > 0 && workers.size === 0) {
      return yield* fail(new InvalidOptions({ field: "workers", rule: "must not be empty when queues are configured" }))
    }
    return {
      queues,
      workers,
      jobTimeout,
      softStopTimeout,
      completerFlushInterval,
      stopFlushTimeout,
      schedulerInterval,
      cancelCheckInterval,
      queuePollInterval,
      clockSkewWarning,
      ttl,
      electInterval,
      renewInterval,
      rescueStuckJobsAfter,
      retention,
      rescuerInterval,
      jobCleanerInterval,
      queueRetention,
      queueCleanerInterval,
      queueRefreshInterval,
      eventBuffer
    }
  })

/**
 * Builds a runner in the current scope. Prefer {@link layer}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const W extends ReadonlyArray<Worker.Any>>(
  options: RunnerOptions<W>
): Effect.Effect<
  { readonly runner: Runner["Service"]; readonly client: Client.Client["Service"] },
  InvalidOptions | DatabaseError,
  SqlClient.SqlClient | Scope.Scope | Worker.Requirements<W[number]>
> =>
  Effect.gen(function*() {
    const config = yield* validate(options)
    const schema = yield* validateSchema(options.schema)
    const sql = yield* SqlClient.SqlClient
    const pg = yield* Effect.serviceOption(PgClient.PgClient)
    const pollOnly = options.pollOnly === true || Option.isNone(pg)
    const driver = makePgDriver(sql, schema)
    const events = yield* PubSub.sliding<JobEvent>(config.eventBuffer)
    let subscribers = 0
    const subscribe = Effect.acquireRelease(
      Effect.sync(() => void subscribers++),
      () => Effect.sync(() => void subscribers--)
    ).pipe(Effect.andThen(PubSub.subscribe(events)))
    const producers = new Map<string, Producer.Producer>()
    const triggerQueues = (queues: Iterable<string>) =>
      Effect.sync(() => {
        for (const queue of queues) producers.get(queue)?.triggerUnsafe()
      })
    /** Every producer fetches (reading the producers when it runs, so it can run any number of times). */
    const triggerAll = Effect.sync(() => {
      for (const producer of producers.values()) producer.triggerUnsafe()
    })

    /** Interrupts the given jobs if they run here (a cancel was requested). */
    const cancelRunning = (ids: Iterable<bigint>) =>
      Effect.suspend(() => {
        // No forks here: `interrupt` does not wait for the job, so a plain loop is the fastest path.
        const hits: Array<Effect.Effect<boolean>> = []
        for (const id of ids) {
          for (const producer of producers.values()) if (producer.hasJob(id)) hits.push(producer.interrupt(id, "remote-cancel"))
        }
        return Effect.forEach(hits, (hit) => hit, { discard: true })
      })

    /**
     * Cancel requests (notifications) for jobs not running here when they arrived: a fetch may have
     * taken the job and not started it yet (River lost those until 0.48). Kept a minute, at most
     * 1,000; a fetch that brings one checks the database for it at once.
     */
    const earlyCancels = new Map<bigint, number>()
    const onCancelRequested = (id: bigint) =>
      Effect.gen(function*() {
        if ([...producers.values()].some((p) => p.hasJob(id))) return yield* cancelRunning([id])
        const now = yield* Clock.currentTimeMillis
        earlyCancels.delete(id)
        earlyCancels.set(id, now)
        for (const [old, at] of earlyCancels) {
          if (earlyCancels.size <= 1_000 && now - at < 60_000) break
          earlyCancels.delete(old)
        }
      })
    const checkEarlyCancels = (rows: ReadonlyArray<JobRow>) =>
      Effect.suspend(() => {
        if (earlyCancels.size === 0) return Effect.void
        const matched = rows.filter((row) => earlyCancels.delete(row.id))
        if (matched.length === 0) return Effect.void
        return driver.jobGetCancelRequested({ jobs: matched }).pipe(
          Effect.flatMap(cancelRunning),
          Effect.catchCause((cause) => Effect.logWarning("effect-river: cancel check of fetched jobs failed", Cause.pretty(cause)))
        )
      })

    const client = yield* Client.make({
      schema,
      id: options.id,
      defaults: options.insertDefaults,
      insertNotifyCooldown: options.insertNotifyCooldown,
      knownKinds: new Set(config.workers.keys()),
      afterInsert: pollOnly ? triggerQueues : undefined,
      afterCancel: pollOnly ? onCancelRequested : undefined
    })

    const completer = yield* Completer.make({
      driver,
      flushInterval: config.completerFlushInterval,
      // The final write on stop is bounded in real time (the database is real, also under TestClock).
      closeTimeout: config.stopFlushTimeout,
      closeClock: Clock.Clock.defaultValue(),
      // Rows are read back and events built only while someone listens; published as one batch.
      wantsRows: () => subscribers > 0,
      onCompleted: (rows, batch, completedAt) => {
        if (subscribers === 0) return Effect.void
        const byId = new Map<bigint, Completion>()
        for (const completion of batch) byId.set(completion.id, completion)
        const out: Array<JobEvent> = []
        for (const job of rows) {
          const completion = byId.get(job.id)
          if (completion === undefined) continue
          out.push({
            kind: completion.kind,
            job,
            error: completion.error?.error,
            stats: {
              queueWait: Duration.millis(
                Math.max(0, (completion.job.attemptedAt?.getTime() ?? completion.startedAt) - completion.job.scheduledAt.getTime())
              ),
              run: Duration.millis(Math.max(0, completion.finishedAt - completion.startedAt)),
              complete: Duration.millis(Math.max(0, completedAt - completion.finishedAt))
            }
          })
        }
        return PubSub.publishAll(events, out).pipe(Effect.asVoid)
      }
    })

    const interruptReasons = new Map<bigint, InterruptReason>()
    const executor: ExecutorConfig = {
      driver,
      workers: config.workers,
      jobTimeout: config.jobTimeout,
      retryPolicy: options.retryPolicy,
      interruptReasons,
      externalTimeouts: true
    }
    // A tenth of the shortest attempt timeout, between 10 ms and 1 s.
    const timeouts = [config.jobTimeout, ...[...config.workers.values()].map((w) => w.timeout)]
      .filter((t): t is Duration.Duration => t !== undefined && t !== "none")
      .map(Duration.toMillis)
    const timeoutSweepInterval = Duration.millis(
      Math.min(1_000, Math.max(10, Math.min(...timeouts, Number.POSITIVE_INFINITY) / 10))
    )

    const clockSkewCheck = config.clockSkewWarning === "off"
      ? Effect.void
      : ClockSkew.check(driver, Duration.toMillis(config.clockSkewWarning))
    yield* clockSkewCheck

    // Each queue's row is created or refreshed, and its pause state read, before it fetches.
    const now = yield* Clock.currentTimeMillis
    const pausedAtStart = new Set<string>()
    for (const queue of config.queues) {
      const row = yield* driver.queueCreateOrSetUpdatedAt({ name: queue.name, now: new Date(now) }).pipe(
        Effect.mapError(DatabaseError.fromSqlError("Runner: queue start"))
      )
      if (row.pausedAt !== null) pausedAtStart.add(queue.name)
    }

    const started = yield* Latch.make(false)
    // Producers live in a scope of their own, closed by the graceful stop below.
    const producerScope = yield* Scope.make()
    for (const queue of config.queues) {
      const producer = yield* Producer.make({
        queue: queue.name,
        maxWorkers: queue.maxWorkers,
        fetchCooldown: queue.fetchCooldown,
        fetchPollInterval: queue.fetchPollInterval,
        clientId: client.id,
        driver,
        executor,
        completer,
        timeoutSweepInterval,
        started,
        paused: pausedAtStart.has(queue.name),
        onFetched: checkEarlyCancels
      }).pipe(Scope.provide(producerScope))
      producers.set(queue.name, producer)
    }

    let elector: Elector.Elector | undefined
    const stop = Effect.gen(function*() {
      // Hand leadership over at once rather than after the TTL.
      if (elector !== undefined) yield* elector.resign
      const all = [...producers.values()]
      yield* Effect.forEach(all, (p) => p.stop, { discard: true, concurrency: "unbounded" })
      const idle = Effect.forEach(all, (p) => p.awaitIdle, { discard: true, concurrency: "unbounded" })
      if (config.softStopTimeout === "none") {
        yield* idle
      } else {
        const finished = yield* Effect.timeoutOption(idle, config.softStopTimeout)
        if (Option.isNone(finished)) {
          yield* Effect.forEach(all, (p) => p.interruptAll("shutdown"), { discard: true, concurrency: "unbounded" })
        }
      }
      yield* Scope.close(producerScope, { _tag: "Success", value: undefined } as never)
      yield* completer.close
    }).pipe(Effect.uninterruptible)
    // Registered after the completer and the event hub, so it runs before they close.
    yield* Effect.addFinalizer(() => stop)

    /** Asks the database which of this runner's running jobs have a cancel requested. */
    const cancelCheck = Effect.gen(function*() {
      const running = (yield* Effect.forEach([...producers.values()], (p) => p.runningJobs)).flat()
      if (running.length === 0) return
      yield* cancelRunning(yield* driver.jobGetCancelRequested({ jobs: running }))
    })

    const setPaused = (queue: string, paused: boolean) =>
      Effect.forEach(
        [...producers.values()].filter((p) => queue === "*" || p.queue === queue),
        (p) => p.setPaused(paused),
        { discard: true }
      )

    const refreshPauseStates = Effect.gen(function*() {
      const rows = yield* driver.queueList({ names: [...producers.keys()] })
      const paused = new Set(rows.filter((r) => r.pausedAt !== null).map((r) => r.name))
      for (const producer of producers.values()) yield* producer.setPaused(paused.has(producer.queue))
    })

    const refreshQueueRows = Effect.gen(function*() {
      const now = new Date(yield* Clock.currentTimeMillis)
      for (const name of producers.keys()) yield* driver.queueCreateOrSetUpdatedAt({ name, now })
    })

    if (producers.size > 0) {
      const background = (name: string, interval: Duration.Duration, pass: Effect.Effect<unknown, unknown>) =>
        Effect.forkScoped(Effect.andThen(Effect.sleep(interval), Maintenance.every(name, interval, pass)))
      yield* background("cancel check", config.cancelCheckInterval ?? Duration.seconds(pollOnly ? 1 : 5), cancelCheck)
      yield* background("queue refresh", config.queueRefreshInterval, refreshQueueRows)
      if (pollOnly) yield* background("queue pause poll", config.queuePollInterval, refreshPauseStates)
    }

    if (producers.size > 0) {
      // Leader-only services, each delayed by up to 1 s like River's, so they do not all hit the
      // database at the same instant after an election.
      const leaderService = (name: string, interval: Duration.Duration, pass: Effect.Effect<unknown, unknown>) =>
        Effect.forkScoped(
          Effect.andThen(Effect.flatMap(Random.nextBetween(0, 1_000), Effect.sleep), Maintenance.every(name, interval, pass))
        )
      const services = Effect.gen(function*() {
        yield* Effect.forkScoped(Scheduler.loop({ driver, interval: config.schedulerInterval, onScheduled: triggerQueues }))
        yield* leaderService(
          "rescuer",
          config.rescuerInterval,
          Maintenance.rescue({
            driver,
            workers: config.workers,
            jobTimeout: config.jobTimeout,
            retryPolicy: options.retryPolicy,
            rescueAfter: config.rescueStuckJobsAfter,
            batchSize: 1_000
          })
        )
        yield* leaderService("job cleaner", config.jobCleanerInterval, Maintenance.cleanJobs(driver, config.retention, 10_000))
        if ((options.periodicJobs ?? []).length > 0) {
          yield* Effect.forkScoped(
            Maintenance.every(
              "periodic job enqueuer",
              Duration.seconds(1),
              Periodic.enqueuer({ driver, client, jobs: options.periodicJobs ?? [] })
            )
          )
        }
        yield* leaderService(
          "queue cleaner",
          config.queueCleanerInterval,
          Maintenance.cleanQueues(driver, config.queueRetention, 10_000)
        )
      })
      elector = yield* Elector.make({
        driver,
        leaderId: client.id,
        ttl: config.ttl,
        electInterval: config.electInterval,
        renewInterval: config.renewInterval,
        services,
        // River's lease lives on the database clock: elections, renewals and trust run in real
        // time, also when the runner's jobs and services run on TestClock.
        clock: Clock.Clock.defaultValue()
      })
    }

    if (!pollOnly && producers.size > 0) {
      const onControl = (payload: string) => {
        const control = parseControl(payload)
        if (control === undefined) return Effect.void
        switch (control.action) {
          case "cancel":
            return control.jobId === undefined ? Effect.void : onCancelRequested(control.jobId)
          case "pause":
            return setPaused(control.queue, true)
          case "resume":
            return setPaused(control.queue, false)
        }
      }
      const onInsert = (payload: string) => {
        const queue = parseInsert(payload)
        return queue === undefined ? Effect.void : triggerQueues([queue])
      }
      const leader = elector!
      const channelSchema = yield* Effect.orDie(driver.schemaCurrent)
      yield* listen({
        pg: (pg as Option.Some<PgClient.PgClient>).value,
        channels: new Map([
          [channel(channelSchema, "river_insert"), onInsert],
          [channel(channelSchema, "river_control"), onControl],
          [channel(channelSchema, "river_leadership"), leader.onNotification]
        ]),
        // The connection is real: its reconnect delays and health checks run in real time, also
        // when the runner's jobs run on TestClock.
        clock: Clock.Clock.defaultValue(),
        // Notifications sent while disconnected are lost: catch up on what they would have said.
        onReconnect: Effect.all([
          triggerAll,
          refreshPauseStates.pipe(Effect.ignore),
          cancelCheck.pipe(Effect.ignore),
          clockSkewCheck,
          leader.wake
        ], { discard: true })
      }).pipe(Effect.mapError(DatabaseError.fromSqlError("Runner: LISTEN")))
    }

    const runner = Runner.of({
      id: client.id,
      schema,
      queues: [...producers.keys()],
      pollOnly,
      subscribe,
      events: Stream.unwrap(Effect.map(subscribe, Stream.fromSubscription)),
      running: Effect.map(
        Effect.forEach([...producers.values()], (p) => p.running),
        (ids) => ids.flat()
      ),
      fetchNow: triggerAll,
      isLeader: Effect.sync(() => elector?.isLeader() ?? false),
      start: Effect.asVoid(started.open)
    })
    if (options.autoStart !== false) yield* started.open
    return { runner, client }
  })

/**
 * The runner and its `Client` as a layer. Needs a `SqlClient` (a `PgClient` to LISTEN) and the
 * services of its workers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const W extends ReadonlyArray<Worker.Any>>(
  options: RunnerOptions<W>
): Layer.Layer<
  Runner | Client.Client,
  InvalidOptions | DatabaseError,
  SqlClient.SqlClient | Worker.Requirements<W[number]>
> =>
  Layer.effectContext(
    Effect.map(make(options), ({ client, runner }) =>
      Context.make(Runner, runner).pipe(Context.add(Client.Client, client)))
  )
