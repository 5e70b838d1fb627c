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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as Stream from "effect/Stream"
import type * as Client from "../Client.ts"
import { DatabaseError, InvalidOptions } from "../Errors.ts"
import { queueProblem } from "../InsertOptions.ts"
import type { Runner, RunnerOptions } from "../Runner.ts"
import type * as Worker from "../Worker.ts"
import * as ClientInternal from "./client.ts"
import * as ClockSkew from "./clockSkew.ts"
import * as Completer from "./completer.ts"
import { makePgDriver } from "./driver/pg/driver.ts"
import * as Elector from "./elector.ts"
import { validateSchema } from "./identifiers.ts"
import { show } from "./show.ts"
import * as Loop from "./loop.ts"
import * as JobCleaner from "./maintenance/jobCleaner.ts"
import * as PeriodicEnqueuer from "./maintenance/periodicEnqueuer.ts"
import * as QueueCleaner from "./maintenance/queueCleaner.ts"
import * as Rescuer from "./maintenance/rescuer.ts"
import * as Scheduler from "./maintenance/scheduler.ts"
import * as Notifier from "./notifier.ts"
import * as Producer from "./producer.ts"

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

    const notifier = Context.get(
      yield* Layer.build(
        pollOnly || !working
          ? Notifier.layerPollOnly
          : Notifier.layerListen({
            pg: (pg as Option.Some<PgClient.PgClient>).value,
            schema: yield* Effect.orDie(driver.schemaCurrent),
            clock: live
          })
      ).pipe(Effect.mapError(DatabaseError.fromSqlError("Runner: LISTEN"))),
      Notifier.Notifier
    )
    const events = yield* Completer.makeEventHub(config.eventBuffer)
    const client = yield* ClientInternal.makeWith({
      schema,
      id: options.id,
      defaults: options.insertDefaults,
      insertNotifyCooldown: options.insertNotifyCooldown
    }, {
      knownKinds: new Set(config.workers.keys()),
      loopback: notifier.loopback
    })
    const completer = yield* Completer.make({
      driver,
      flushInterval: config.completerFlushInterval,
      closeTimeout: config.stopFlushTimeout,
      closeClock: live,
      // Rows are read back and events built only while someone listens; published as one batch.
      wantsRows: events.wanted,
      onCompleted: events.publish
    })
    if (config.clockSkewWarning !== "off") {
      yield* ClockSkew.watch(driver, notifier, Duration.toMillis(config.clockSkewWarning))
    }

    const started = yield* Latch.make(false)
    // Producers live in a scope of their own, closed by the graceful stop below.
    const producerScope = yield* Scope.make()
    const producers = new Map<string, Producer.Producer>()
    for (const queue of config.queues) {
      const producer = yield* Producer.make({
        queue: queue.name,
        maxWorkers: queue.maxWorkers,
        fetchCooldown: queue.fetchCooldown,
        fetchPollInterval: queue.fetchPollInterval,
        clientId: client.id,
        driver,
        notifier,
        executor: { workers: config.workers, jobTimeout: config.jobTimeout, retryPolicy: options.retryPolicy },
        completer,
        started,
        cancelCheckInterval: config.cancelCheckInterval ?? Duration.seconds(notifier.listening ? 5 : 1),
        queuePollInterval: config.queuePollInterval,
        queueRefreshInterval: config.queueRefreshInterval
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
      running: Effect.sync(() => [...producers.values()].flatMap((p) => p.running())),
      fetchNow: fetchAll,
      isLeader: Effect.sync(() => elector?.isLeader() ?? false),
      start: Effect.asVoid(started.open)
    }
    if (options.autoStart !== false) yield* started.open
    return { runner, client }
  }) as never
