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
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import type * as Stream from "effect/Stream"
import * as Client from "./Client.ts"
import type { DatabaseError, InvalidOptions } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import * as internal from "./internal/runner.ts"
import type { AnyJobEvent, JobEvent } from "./JobEvent.ts"
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
  /**
   * Jobs of this queue running at once across every runner of the schema (of each partition,
   * with `partition`), 1 to 1,000,000; `maxWorkers` still bounds this runner. Every runner of the
   * queue must set the same limits. River clients on the queue do not know the limit (their jobs
   * count, but they do not wait for it).
   */
  readonly globalLimit?: number | undefined
  /**
   * Apply `globalLimit` and `rateLimit` per partition rather than to the whole queue: by kind,
   * by the values of top-level args keys (`byArgs: ["customerId"]`), or both. A full partition
   * never holds back the others. Jobs missing a key share one partition.
   */
  readonly partition?: {
    readonly byKind?: boolean | undefined
    readonly byArgs?: ReadonlyArray<string> | undefined
  } | undefined
  /**
   * At most `limit` jobs of this queue (of each partition, with `partition`) start in any window
   * of length `per`, across every runner, spread evenly (GCRA: after a burst of `limit`, one start
   * every `per / limit`). Needs effect-river's own migration line (`Migrator.up` applies it).
   */
  readonly rateLimit?: {
    readonly limit: number
    readonly per: Duration.Input
  } | undefined
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
   * Minimum time between two fetches of one queue triggered by notifications or polls
   * (leading-edge debounce, River's storm protection). It does not throttle a backlog: while
   * fetches come back full, a freed slot fetches at once. Nor a trickle: an insert notification
   * arriving at least a tenth of this after the previous one fetches at once. 0 disables the
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
   * How often queue pause states are read from `river_queue`: the only way a poll-only runner
   * learns of a pause or resume, and with LISTEN a fallback for a notification lost while the
   * listener reconnected (River 0.51.1 checks once a minute too).
   * @default "2 seconds" in poll-only mode, "1 minute" otherwise
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
   * The runner's `Client`: at most one insert notification per queue per this window, except
   * for the first insert after a quiet period of a tenth of it (see
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
  /**
   * Metrics, spans and worker log annotations from this runner's own fibers (its workers, its
   * completer, producers and elector). `false` turns them off (for example where nothing reads
   * Effect's metric registry); the runner's start/stop logs stay.
   * @default true
   */
  readonly telemetry?: boolean | undefined
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
  /**
   * Subscribes to every event: each attempt's start (`JobStarted`, kind `started`) and each
   * outcome, in order; the subscription starts when this effect returns and ends with the scope.
   */
  readonly subscribeAll: Effect.Effect<PubSub.Subscription<AnyJobEvent>, never, Scope.Scope>
  /** Every event (starts and outcomes) as a stream. */
  readonly allEvents: Stream.Stream<AnyJobEvent>
  /** Ids of the jobs running in this runner now. */
  readonly running: Effect.Effect<ReadonlyArray<bigint>>
  /** Asks every producer to fetch now (subject to the cooldown). */
  readonly fetchNow: Effect.Effect<void>
  /** Whether this runner currently leads its schema (and runs maintenance). */
  readonly isLeader: Effect.Effect<boolean>
  /** Starts fetching (only needed with `autoStart: false`; idempotent). */
  readonly start: Effect.Effect<void>
  /**
   * Interrupts every job running in this runner now, as a stop does once `softStopTimeout` has
   * passed: each goes back to `available` with its attempt given back (a snoozed-like retry, no
   * error recorded). During a graceful stop it ends the wait at once — what a service does on a
   * second SIGINT/SIGTERM (see examples/service.ts). Outside a stop the jobs are fetched again.
   */
  readonly interruptRunning: Effect.Effect<void>
}>()("effect-river/Runner") {}

/**
 * Builds a runner in the current scope. Prefer {@link layer}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <const W extends ReadonlyArray<Worker.Any>>(
  options: RunnerOptions<W>
) => Effect.Effect<
  { readonly runner: Runner["Service"]; readonly client: Client.Client["Service"] },
  InvalidOptions | DatabaseError,
  SqlClient.SqlClient | Scope.Scope | Worker.Requirements<W[number]>
> = internal.make

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

/**
 * {@link RunnerOptions} where any setting but `workers` and `periodicJobs` may be an Effect
 * `Config` read when the layer is built (from the environment by default, or whatever
 * `ConfigProvider` the application installs).
 *
 * @since 0.1.0
 * @category models
 */
export type ConfigurableRunnerOptions<W extends ReadonlyArray<Worker.Any>> = {
  readonly [K in keyof RunnerOptions<W>]: K extends "workers" | "periodicJobs" ? RunnerOptions<W>[K]
    : RunnerOptions<W>[K] | Config.Config<RunnerOptions<W>[K]>
}

/**
 * {@link layer} with settings read through Effect `Config` — a deployment's environment
 * variables, typically. Each option is a plain value or a `Config` of it; configs are read when
 * the layer is built and the result validated as `Runner.make` validates options (a bad value is
 * `InvalidOptions` naming the option, a missing or malformed variable `Config.ConfigError`
 * naming the variable).
 *
 * @example
 * ```ts
 * import { Config, Option } from "effect"
 * import { Runner } from "effect-river"
 *
 * const RunnerLive = Runner.layerConfig({
 *   workers: [SendEmailWorker],
 *   queues: Runner.queuesConfig("RIVER_QUEUES", "default:10"),   // RIVER_QUEUES=default:10,email:5
 *   schema: Config.String("RIVER_SCHEMA").pipe(Config.option, Config.map(Option.getOrUndefined)),
 *   softStopTimeout: Config.Duration("RIVER_SOFT_STOP_TIMEOUT").pipe(Config.withDefault("10 seconds"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <const W extends ReadonlyArray<Worker.Any>>(
  options: ConfigurableRunnerOptions<W>
): Layer.Layer<
  Runner | Client.Client,
  InvalidOptions | DatabaseError | Config.ConfigError,
  SqlClient.SqlClient | Worker.Requirements<W[number]>
> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const resolved: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(options)) {
        resolved[key] = Config.isConfig(value) ? yield* (value as Config.Config<unknown>) : value
      }
      return layer(resolved as unknown as RunnerOptions<W>)
    })
  )

/**
 * Queues and their worker counts from one configuration value in the form
 * `name:maxWorkers[,name:maxWorkers…]` (e.g. `RIVER_QUEUES=default:10,email:5`), for
 * {@link layerConfig}'s `queues`. `fallback`, in the same form, applies when the variable is not
 * set. An entry without a count or with a count that is not an integer fails the runner's
 * validation (`InvalidOptions`, field `queues.<name>.maxWorkers`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const queuesConfig = (
  name: string,
  fallback?: string
): Config.Config<Readonly<Record<string, QueueOptions>>> => {
  const text = fallback === undefined ? Config.String(name) : Config.String(name).pipe(Config.withDefault(fallback))
  return Config.map(text, (value) =>
    Object.fromEntries(
      value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "").map((entry) => {
        const at = entry.lastIndexOf(":")
        const queue = at < 0 ? entry : entry.slice(0, at).trim()
        const count = at < 0 ? "" : entry.slice(at + 1).trim()
        return [queue, { maxWorkers: /^\d+$/.test(count) ? Number(count) : (count as unknown as number) }]
      })
    ))
}
