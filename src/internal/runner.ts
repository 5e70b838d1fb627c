/**
 * The runner's composition root: it validates the options, builds each part from its own
 * configuration and wires them together, and nothing else. Where each behaviour lives:
 *
 * - the statements: the driver (`driver/`), one per schema;
 * - River's notifications: the Notifier (`notifier.ts`; LISTEN, or poll-only);
 * - fetching, running and cancelling the jobs of one queue, and that queue's upkeep: a producer
 *   each (`producer.ts`), running its jobs with an executor (`executor.ts`; the outcome rules in
 *   `outcome.ts`);
 * - writing outcomes and publishing events: the completer (`completer.ts`);
 * - leadership and the leader's maintenance services: the elector (`elector.ts`) and
 *   `maintenance/` (one file per service, one loop shape: `loop.ts`);
 * - the clock-skew warning: `clockSkew.ts`.
 *
 * The graceful stop: resign leadership, stop fetching, let running jobs finish for up to
 * `softStopTimeout`, interrupt the rest (they go back to `available` with the attempt given
 * back), then write every outcome (for at most `stopFlushTimeout` while the database fails).
 *
 * @internal
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import type * as Client from "../Client.ts"
import { DatabaseError, InvalidOptions } from "../Errors.ts"
import type { Runner, RunnerOptions } from "../Runner.ts"
import type * as Worker from "../Worker.ts"
import * as ClientInternal from "./client.ts"
import * as ClockSkew from "./clockSkew.ts"
import * as Completer from "./completer.ts"
import type { Driver } from "./driver/driver.ts"
import { makePgDriver } from "./driver/pg/driver.ts"
import * as Elector from "./elector.ts"
import { validateSchema } from "./identifiers.ts"
import type { FlowLimits } from "./flowControl.ts"
import { queueProblem } from "./insertOptions.ts"
import { show } from "./show.ts"
import * as Loop from "./loop.ts"
import * as JobCleaner from "./maintenance/jobCleaner.ts"
import * as PeriodicEnqueuer from "./maintenance/periodicEnqueuer.ts"
import * as QueueCleaner from "./maintenance/queueCleaner.ts"
import * as Rescuer from "./maintenance/rescuer.ts"
import * as Scheduler from "./maintenance/scheduler.ts"
import { slotFreedPayload } from "./notification.ts"
import * as Notifier from "./notifier.ts"
import * as Options from "./options.ts"
import * as Producer from "./producer.ts"
import * as Telemetry from "./telemetry.ts"

const D = Options.defaults.runner

/** An args key of `partition.byArgs`: a top-level key of the job's args. */
const ArgsKey = Options.string(255, "must be a non-empty string of at most 255 characters")

/** A queue's settings (`queues.<name>`); its fetch timings fall back to the runner's. */
const QueueSettings = Schema.Struct({
  maxWorkers: Options.integer(1, 10_000, "must be an integer from 1 to 10,000"),
  fetchCooldown: Schema.optional(Options.duration({ min: 0 })),
  fetchPollInterval: Schema.optional(Options.duration({ min: 1 })),
  globalLimit: Schema.optional(Options.integer(1, 1_000_000, "must be an integer from 1 to 1,000,000")),
  partition: Schema.optional(Schema.Struct({
    byKind: Schema.optional(Options.boolean("must be true or false")),
    byArgs: Schema.optional(Options.array(ArgsKey, 1, 16, "must be an array of 1 to 16 args keys"))
  })),
  rateLimit: Schema.optional(Schema.Struct({
    limit: Options.integer(1, 1_000_000, "must be an integer from 1 to 1,000,000"),
    per: Options.duration({ min: 1, rule: "must be a duration of at least 1 ms" })
  }))
})

/**
 * The runner's options with their rules and defaults (`RunnerOptions` documents each). The order
 * is the order in which problems are reported.
 */
const RunnerSettings = Schema.Struct({
  fetchCooldown: Options.withDefault(Options.duration({ min: 0 }), D.fetchCooldown),
  fetchPollInterval: Options.withDefault(Options.duration({ min: 1 }), D.fetchPollInterval),
  jobTimeout: Options.withDefault(Options.durationOr(["none"], { min: 1 }), D.jobTimeout),
  softStopTimeout: Options.withDefault(Options.durationOr(["none"], { min: 0 }), D.softStopTimeout),
  completerFlushInterval: Options.withDefault(Options.duration({ min: 0 }), D.completerFlushInterval),
  schedulerInterval: Options.withDefault(Options.duration({ min: 1 }), D.schedulerInterval),
  stopFlushTimeout: Options.withDefault(Options.duration({ min: 0 }), D.stopFlushTimeout),
  /** Its default depends on LISTEN (see `defaults`): set by the runner once the notifier is known. */
  cancelCheckInterval: Schema.optional(Options.duration({ min: 1 })),
  /** Its default depends on LISTEN (see `defaults`): set by the runner once the notifier is known. */
  queuePollInterval: Schema.optional(Options.duration({ min: 1 })),
  clockSkewWarning: Options.withDefault(Options.durationOr(["off"], { min: 0 }), D.clockSkewWarning),
  leadership: Options.withDefault(
    Schema.Struct({
      ttl: Options.withDefault(Options.duration({ min: 1_000 }), D.leadership.ttl),
      electInterval: Options.withDefault(Options.duration({ min: 1 }), D.leadership.electInterval),
      renewInterval: Options.withDefault(Options.duration({ min: 1 }), D.leadership.renewInterval)
    }),
    {}
  ),
  /** Its default depends on the job timeout (see `defaults`). */
  rescueStuckJobsAfter: Schema.optional(Options.duration({ min: 1 })),
  retention: Options.withDefault(
    Schema.Struct({
      cancelled: Options.withDefault(Options.durationOr(["forever"], { min: 0 }), D.retention.cancelled),
      completed: Options.withDefault(Options.durationOr(["forever"], { min: 0 }), D.retention.completed),
      discarded: Options.withDefault(Options.durationOr(["forever"], { min: 0 }), D.retention.discarded)
    }),
    {}
  ),
  rescuerInterval: Options.withDefault(Options.duration({ min: 1 }), D.rescuerInterval),
  jobCleanerInterval: Options.withDefault(Options.duration({ min: 1 }), D.jobCleanerInterval),
  queueRetention: Options.withDefault(Options.duration({ min: 1 }), D.queueRetention),
  queueCleanerInterval: Options.withDefault(Options.duration({ min: 1 }), D.queueCleanerInterval),
  queueRefreshInterval: Options.withDefault(Options.duration({ min: 1 }), D.queueRefreshInterval),
  eventBuffer: Options.withDefault(Options.integer(1, Number.MAX_SAFE_INTEGER, "must be a positive integer"), D.eventBuffer)
})

interface ValidatedQueue {
  readonly name: string
  readonly maxWorkers: number
  readonly fetchCooldown: Duration.Duration
  readonly fetchPollInterval: Duration.Duration
  /** Flow-control limits, when the queue has any. */
  readonly limits: FlowLimits | undefined
}

const invalid = (field: string, rule: string, value?: unknown) =>
  Effect.fail(new InvalidOptions(value === undefined ? { field, rule } : { field, rule, value: show(value) }))

/**
 * After outcomes of globally limited queues are committed: their slots are free for every runner.
 * The local producers fetch at once (no cooldown: these fetches are bounded by the completer's
 * writes). When the local producer cannot start as many jobs as the batch freed slots (its
 * workers are busy, it is paused or stopping), the other runners (with LISTEN) hear River's
 * insert notification for the queue, marked `slot_freed`, so that they do the same — a River
 * client hearing it just fetches. Otherwise they are not woken: the local fetch takes whatever
 * they could, and a fetch of theirs would only wait for the queue's lock and find no slot.
 * Slots the completion handed over (jobs it started in their place) are not free and wake nobody.
 */
const slotsFreed = (
  driver: Driver,
  notifier: Notifier.Notifier["Service"],
  producers: ReadonlyMap<string, Producer.Producer>,
  limited: ReadonlySet<string>,
  batch: ReadonlyArray<Completer.Completion>,
  handedOver: ReadonlyMap<string, number>
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const freed = new Map<string, number>()
    for (const { job } of batch) if (limited.has(job.queue)) freed.set(job.queue, (freed.get(job.queue) ?? 0) + 1)
    if (freed.size === 0) return Effect.void
    const tell: Array<string> = []
    for (const [queue, completed] of freed) {
      // Slots the write already gave to jobs it started are not free.
      const slots = completed - (handedOver.get(queue) ?? 0)
      if (slots <= 0) continue
      const local = producers.get(queue)?.slotFreed() ?? 0
      if (local < slots) tell.push(queue)
    }
    if (tell.length === 0 || !notifier.listening) return Effect.void
    return driver.notifyMany({ topic: "river_insert", payloads: tell.map(slotFreedPayload) }).pipe(
      Effect.catchCause((cause) => Effect.logDebug("effect-river: slot notification failed", cause))
    )
  })

/** The runner's options, validated and with their defaults, before any SQL. */
const validate = <W extends ReadonlyArray<Worker.Any>>(options: RunnerOptions<W>) =>
  Effect.gen(function*() {
    const settings = yield* Options.decodeEffect(RunnerSettings, options)
    const { jobTimeout, leadership } = settings
    if (Duration.toMillis(leadership.renewInterval) >= Duration.toMillis(leadership.ttl) - 1_000) {
      return yield* invalid("leadership.renewInterval", "must be shorter than the TTL minus 1 second")
    }
    const rescueStuckJobsAfter = settings.rescueStuckJobsAfter ??
      (jobTimeout === "none" ? Duration.fromInputUnsafe(D.rescueStuckJobsAfter) : Duration.sum(jobTimeout, Duration.hours(1)))
    if (jobTimeout !== "none" && Duration.toMillis(rescueStuckJobsAfter) < Duration.toMillis(jobTimeout)) {
      return yield* invalid("rescueStuckJobsAfter", "must be at least the job timeout")
    }
    if (typeof options.queues !== "object" || options.queues === null) {
      return yield* invalid("queues", "must be an object of queue name to options")
    }
    const queues: Array<ValidatedQueue> = []
    for (const [name, queue] of Object.entries(options.queues)) {
      const problem = queueProblem(name)
      if (problem !== undefined) return yield* invalid(`queues.${name}`, `queue name ${problem}`, name)
      const decoded = yield* Options.decodeEffect(QueueSettings, queue, `queues.${name}.`)
      const fetchCooldown = decoded.fetchCooldown ?? settings.fetchCooldown
      const fetchPollInterval = decoded.fetchPollInterval ?? settings.fetchPollInterval
      if (Duration.toMillis(fetchPollInterval) < Duration.toMillis(fetchCooldown)) {
        return yield* invalid(`queues.${name}.fetchPollInterval`, "must be at least the fetch cooldown")
      }
      const { globalLimit, partition, rateLimit } = decoded
      if (partition !== undefined) {
        if (globalLimit === undefined && rateLimit === undefined) {
          return yield* invalid(`queues.${name}.partition`, "needs a globalLimit or a rateLimit to apply per partition")
        }
        if (partition.byKind !== true && (partition.byArgs === undefined || partition.byArgs.length === 0)) {
          return yield* invalid(`queues.${name}.partition`, "must set byKind: true or list byArgs keys", partition)
        }
        if (partition.byArgs !== undefined && new Set(partition.byArgs).size !== partition.byArgs.length) {
          return yield* invalid(`queues.${name}.partition.byArgs`, "must not list a key twice", partition.byArgs)
        }
      }
      const limits: FlowLimits | undefined = globalLimit === undefined && rateLimit === undefined ? undefined : {
        globalLimit,
        rate: rateLimit === undefined ? undefined : { limit: rateLimit.limit, perMillis: Duration.toMillis(rateLimit.per) },
        partition: partition === undefined ? undefined : { byKind: partition.byKind === true, byArgs: partition.byArgs ?? [] }
      }
      queues.push({ name, maxWorkers: decoded.maxWorkers, fetchCooldown, fetchPollInterval, limits })
    }
    if (!Array.isArray(options.workers)) return yield* invalid("workers", "must be an array of workers")
    const workers = new Map<string, Worker.Any>()
    for (const worker of options.workers) {
      if (worker.jobKind.problem !== undefined) return yield* worker.jobKind.problem
      if (worker.problem !== undefined) return yield* worker.problem
      if (workers.has(worker.jobKind.kind)) return yield* invalid("workers", "must have one worker per kind", worker.jobKind.kind)
      workers.set(worker.jobKind.kind, worker)
    }
    const periodicIds = new Set<string>()
    for (const periodic of options.periodicJobs ?? []) {
      if (periodic.problem !== undefined) return yield* periodic.problem
      if (periodicIds.has(periodic.id)) return yield* invalid("periodicJobs", "ids must be unique", periodic.id)
      periodicIds.add(periodic.id)
    }
    if (options.telemetry !== undefined && typeof options.telemetry !== "boolean") {
      return yield* invalid("telemetry", "must be a boolean", options.telemetry)
    }
    if (queues.length > 0 && workers.size === 0) {
      return yield* invalid("workers", "must not be empty when queues are configured")
    }
    return { ...settings, ...leadership, rescueStuckJobsAfter, queues, workers }
  })

/**
 * Warnings at start for configurations that validate but cannot work as meant: no queue at all
 * (the runner works nothing), and a worker whose kind inserts into a queue this runner does not
 * work (its jobs wait for another process).
 */
const warnAboutQueues = (
  queues: ReadonlyArray<string>,
  workers: ReadonlyMap<string, Worker.Any>,
  defaultQueue: string | undefined
) =>
  Effect.gen(function*() {
    if (queues.length === 0) {
      yield* Effect.logWarning(
        "effect-river runner: queues is empty, so this runner works no jobs and runs no maintenance; " +
          "add queues (e.g. { default: { maxWorkers: 10 } }) or use Client.layer for an insert-only process"
      )
      return
    }
    const worked = new Set(queues)
    for (const [kind, worker] of workers) {
      const queue = worker.jobKind.options.queue ?? defaultQueue ?? "default"
      if (!worked.has(queue)) {
        yield* Effect.logWarning(
          `effect-river runner: the worker of kind "${kind}" inserts into queue "${queue}", which this runner does not work ` +
            `(queues: ${queues.join(", ")}); its jobs wait for another runner unless you add "${queue}" to queues`
        ).pipe(Effect.annotateLogs({ kind, queue }))
      }
    }
  })

/** Builds a runner and its client in the current scope (the public `Runner.make`). */
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
    // The connection is real: the LISTEN supervisor's reconnect delays and health checks, the
    // elector's lease (on the database clock) and the completer's final write on stop run in real
    // time, also when the runner's jobs and services run on TestClock.
    const live = Clock.Clock.defaultValue()
    const working = config.queues.length > 0
    yield* warnAboutQueues(config.queues.map((q: { readonly name: string }) => q.name), config.workers, options.insertDefaults?.queue)
    const rateLimited = config.queues.filter((q: ValidatedQueue) => q.limits?.rate !== undefined)
    if (rateLimited.length > 0 && !(yield* driver.rateLimitTableExists.pipe(Effect.mapError(DatabaseError.fromSqlError("Runner: start"))))) {
      return yield* new DatabaseError({
        operation: "Runner: start",
        retryable: false,
        cause: new Error(
          `queues.${rateLimited[0]!.name}.rateLimit needs effect-river's own migration line, which is not applied to ` +
            `${schema === undefined ? "the search path's schema" : `schema ${schema}`}: run \`effect-river migrate up\` ` +
            "(Migrator.up applies River's line and then effect-river's)"
        )
      })
    }

    const notifier = pollOnly || !working
      ? yield* Notifier.makePollOnly
      : yield* Notifier.makeListen({
        pg: (pg as Option.Some<PgClient.PgClient>).value,
        schema: yield* Effect.orDie(driver.schemaCurrent),
        clock: live
      }).pipe(Effect.mapError(DatabaseError.fromSqlError("Runner: LISTEN")))
    const events = yield* Completer.makeEventHub(config.eventBuffer)
    const client = yield* ClientInternal.makeWith({
      schema,
      id: options.id,
      defaults: options.insertDefaults,
      insertNotifyCooldown: options.insertNotifyCooldown
    }, {
      knownKinds: new Set(config.workers.keys()),
      loopback: notifier.loopback,
      watchCompletion: events.watchCompletion
    })
    const producers = new Map<string, Producer.Producer>()
    // Queues with a global limit: a slot freed by a completion here is a slot for every runner.
    const globallyLimited = new Set<string>(
      config.queues.filter((q: ValidatedQueue) => q.limits?.globalLimit !== undefined).map((q: ValidatedQueue) => q.name)
    )
    const completer = yield* Completer.make({
      driver,
      flushInterval: config.completerFlushInterval,
      closeTimeout: config.stopFlushTimeout,
      closeClock: live,
      // Rows are read back and events built only while someone listens; published as one batch.
      wantsRows: events.wanted,
      onCompleted: events.publish,
      onWritten: globallyLimited.size === 0
        ? undefined
        : (batch, handedOver) => slotsFreed(driver, notifier, producers, globallyLimited, batch, handedOver),
      urgent: globallyLimited.size === 0 ? undefined : (completion) => globallyLimited.has(completion.job.queue),
      // A global limit alone: a completion starts the next job in its slot, in the same commit
      // (the producer of such a queue has a hand-over target; others have none).
      handoff: globallyLimited.size === 0 ? undefined : (queue) => producers.get(queue)?.handoff
    })
    if (config.clockSkewWarning !== "off") {
      yield* ClockSkew.watch(driver, notifier, Duration.toMillis(config.clockSkewWarning))
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
        notifier,
        executor: {
          workers: config.workers,
          jobTimeout: config.jobTimeout,
          retryPolicy: options.retryPolicy,
          onStarted: events.publishStarted
        },
        completer,
        started,
        cancelCheckInterval: config.cancelCheckInterval ??
          Duration.fromInputUnsafe(D.cancelCheckInterval[notifier.listening ? "listening" : "pollOnly"]),
        queuePollInterval: config.queuePollInterval ??
          Duration.fromInputUnsafe(D.queuePollInterval[notifier.listening ? "listening" : "pollOnly"]),
        queueRefreshInterval: config.queueRefreshInterval,
        limits: queue.limits
      }).pipe(Scope.provide(producerScope))
      producers.set(queue.name, producer)
    }
    const fetchAll = Effect.sync(() => {
      for (const producer of producers.values()) producer.fetchNow()
    })

    let elector: Elector.Elector | undefined
    const stop = Effect.gen(function*() {
      // Hand leadership over at once rather than after the TTL.
      if (elector !== undefined) yield* elector.resign
      const all = [...producers.values()]
      yield* Effect.forEach(all, (p) => p.stop, { discard: true, concurrency: "unbounded" })
      const runningAtStop = all.reduce((n, p) => n + p.running().length, 0)
      yield* Effect.logInfo(`effect-river: runner ${client.id} stopping; waiting for ${runningAtStop} running jobs`)
      const idle = Effect.forEach(all, (p) => p.awaitIdle, { discard: true, concurrency: "unbounded" })
      if (config.softStopTimeout === "none") {
        yield* idle
      } else {
        const finished = yield* Effect.timeoutOption(idle, config.softStopTimeout)
        if (Option.isNone(finished)) {
          const left = all.reduce((n, p) => n + p.running().length, 0)
          yield* Effect.logWarning(
            `effect-river: runner ${client.id}: ${left} jobs still running after softStopTimeout; ` +
              "interrupting them (they go back to available with the attempt given back)"
          )
          yield* Effect.forEach(all, (p) => p.interruptAll("shutdown"), { discard: true, concurrency: "unbounded" })
        }
      }
      yield* Scope.close(producerScope, { _tag: "Success", value: undefined } as never)
      yield* completer.close
      yield* Effect.logInfo(`effect-river: runner ${client.id} stopped`)
    }).pipe(Effect.uninterruptible)
    // Registered after the completer and the event hub, so it runs before they close.
    yield* Effect.addFinalizer(() => stop)

    if (working) {
      const periodicJobs = options.periodicJobs ?? []
      const services: ReadonlyArray<Loop.Service> = [
        Scheduler.service({
          driver,
          interval: config.schedulerInterval,
          // Local producers fetch at once (the statement notifies the others).
          onScheduled: (queues) =>
            Effect.sync(() => {
              for (const queue of queues) producers.get(queue)?.fetchNow()
            })
        }),
        Rescuer.service({
          driver,
          workers: config.workers,
          jobTimeout: config.jobTimeout,
          retryPolicy: options.retryPolicy,
          rescueAfter: config.rescueStuckJobsAfter,
          interval: config.rescuerInterval,
          batchSize: 1_000
        }),
        JobCleaner.service({ driver, retention: config.retention, interval: config.jobCleanerInterval, batchSize: 10_000 }),
        ...(periodicJobs.length === 0 ? [] : [PeriodicEnqueuer.service({ driver, client, jobs: periodicJobs })]),
        QueueCleaner.service({ driver, retention: config.queueRetention, interval: config.queueCleanerInterval, batchSize: 10_000 })
      ]
      elector = yield* Elector.make({
        driver,
        notifier,
        leaderId: client.id,
        ttl: config.ttl,
        electInterval: config.electInterval,
        renewInterval: config.renewInterval,
        services: Effect.forEach(services, (service) => Effect.forkScoped(Loop.run(service)), { discard: true }),
        clock: live
      })
    }

    const subscribe = events.subscribe
    const runner: Runner["Service"] = {
      id: client.id,
      schema,
      queues: [...producers.keys()],
      pollOnly,
      subscribe,
      events: Stream.unwrap(Effect.map(subscribe, Stream.fromSubscription)),
      subscribeAll: events.subscribeAll,
      allEvents: Stream.unwrap(Effect.map(events.subscribeAll, Stream.fromSubscription)),
      running: Effect.sync(() => [...producers.values()].flatMap((p) => p.running())),
      fetchNow: fetchAll,
      isLeader: Effect.sync(() => elector?.isLeader() ?? false),
      start: Effect.asVoid(started.open),
      interruptRunning: Effect.forEach([...producers.values()], (p) => p.interruptAll("shutdown"), {
        discard: true,
        concurrency: "unbounded"
      })
    }
    if (options.autoStart !== false) yield* started.open
    yield* Effect.logInfo(
      `effect-river: runner ${client.id} started (queues: ${[...producers.keys()].join(", ") || "none"}${
        pollOnly ? "; poll-only" : ""
      }${options.autoStart === false ? "; fetching once started" : ""})`
    )
    return { runner, client }
  }).pipe(options.telemetry === false ? Effect.provideService(Telemetry.Enabled, false) : identity) as never
