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
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestClock from "effect/testing/TestClock"
import * as Client from "./Client.ts"
import { DatabaseError, type InvalidArgs, type InvalidOptions } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import type { Completion } from "./internal/outcome.ts"
import type { Driver } from "./internal/driver/driver.ts"
import { makePgDriver } from "./internal/driver/pg/driver.ts"
import * as Executor from "./internal/executor.ts"
import { validateSchema } from "./internal/identifiers.ts"
import { parseJson, stringifyJson } from "./internal/json.ts"
import * as Options from "./internal/options.ts"
import type { JobRow, JobState } from "./Job.ts"
import type { JobEvent, JobEventKind } from "./JobEvent.ts"
import type * as JobKind from "./JobKind.ts"
import * as Migrator from "./Migrator.ts"
import * as Runner from "./Runner.ts"
import type * as Worker from "./Worker.ts"

export { resumeAfter, resumeAt } from "./Resumable.ts"

/**
 * A test expectation did not hold.
 *
 * @since 0.1.0
 * @category errors
 */
export class TestingAssertionError extends Schema.TaggedError<TestingAssertionError>()("TestingAssertionError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

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

const ROLLBACK = Symbol.for("effect-river/Testing/rollback")

/**
 * Runs `effect` in a transaction that always rolls back, and returns its result. Inside an
 * enclosing transaction it uses a savepoint.
 *
 * @since 0.1.0
 * @category isolation
 */
export const rollback = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | DatabaseError, R | SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const result = yield* Ref.make<Result.Result<A, E> | undefined>(undefined)
    yield* sql.withTransaction(
      Effect.result(effect).pipe(
        Effect.flatMap((r) => Ref.set(result, r)),
        Effect.andThen(Effect.fail(ROLLBACK))
      )
    ).pipe(
      Effect.catchIf((e): e is typeof ROLLBACK => e === ROLLBACK, () => Effect.void),
      Effect.catchTag("SqlError", (e) => Effect.die(e))
    )
    const r = (yield* Ref.get(result))!
    return yield* (Result.isSuccess(r) ? Effect.succeed(r.success) : Effect.fail(r.failure))
  }) as never

/** The options of one run, with the runner's rules and defaults. */
const WorkSettings = Schema.Struct({
  jobTimeout: Options.withDefault(Options.durationOr(["none"], { min: 1 }), Options.defaults.runner.jobTimeout)
})

const runOne = (
  worker: Worker.Any,
  settings: typeof WorkSettings.Type,
  options: WorkOptions,
  row: (driver: Driver, clientId: string, now: Date) => Effect.Effect<JobRow, unknown, SqlClient.SqlClient>
) =>
  Effect.gen(function*() {
    const schema = yield* validateSchema(options.schema)
    const sql = yield* SqlClient.SqlClient
    const driver = makePgDriver(sql, schema)
    const now = new Date(yield* Clock.currentTimeMillis)
    const job = yield* row(driver, "effect-river-testing", now)
    let completion: Completion | undefined
    // The runner's executor, so the job takes the production path (timeouts included).
    const executor = yield* Executor.make({
      driver,
      workers: new Map([[worker.jobKind.kind, worker]]),
      jobTimeout: settings.jobTimeout,
      retryPolicy: options.retryPolicy,
      complete: (c) => Effect.sync(() => void (completion = c))
    })
    yield* executor.start([job], now.getTime())
    yield* executor.awaitIdle
    const written = yield* driver.jobSetStateIfRunningMany({ jobs: [completion!], now: new Date(yield* Clock.currentTimeMillis) })
    const updated = written[0] ?? completion!.job
    return {
      kind: completion!.kind as WorkResult["kind"],
      job: updated,
      failure: completion!.failure,
      error: completion!.error?.error
    } satisfies WorkResult
  }).pipe(Effect.scoped)

/**
 * Inserts a job and works it once with the real executor (decoding, timeout, resumable steps,
 * outcome rules), inline, in a transaction that rolls back afterwards — so the test leaves
 * nothing behind. The worker's failure comes back as a value in the result.
 *
 * @since 0.1.0
 * @category working
 */
export const work = <A, I, E, R>(
  worker: Worker.Worker<A, I, E, R>,
  args: NoInfer<A>,
  options: WorkOptions & { readonly insert?: InsertOptions.InsertOptions | undefined } = {}
): Effect.Effect<WorkResult, InvalidArgs | InvalidOptions | DatabaseError, R | SqlClient.SqlClient> => {
  const body = (settings: typeof WorkSettings.Type) =>
    Effect.scoped(Effect.gen(function*() {
      const client = yield* Client.make({ schema: options.schema })
      const { job } = yield* client.insert(worker.jobKind, args, options.insert)
      return yield* runOne(worker, settings, options, (driver, clientId, now) => markRunning(driver, job.id, clientId, now))
    }))
  return Effect.flatMap(
    Options.decodeEffect(WorkSettings, { jobTimeout: options.jobTimeout }),
    (settings) => options.commit === true ? body(settings) : rollback(body(settings))
  ) as never
}

/**
 * Works an existing job row once (it need not be `available`), like {@link work}.
 *
 * @since 0.1.0
 * @category working
 */
export const workJob = <A, I, E, R>(
  worker: Worker.Worker<A, I, E, R>,
  id: bigint,
  options: WorkOptions = {}
): Effect.Effect<WorkResult, InvalidOptions | DatabaseError | TestingAssertionError, R | SqlClient.SqlClient> => {
  const body = (settings: typeof WorkSettings.Type) =>
    runOne(worker, settings, options, (driver, clientId, now) => markRunning(driver, id, clientId, now))
  return Effect.flatMap(
    Options.decodeEffect(WorkSettings, { jobTimeout: options.jobTimeout }),
    (settings) => options.commit === true ? body(settings) : rollback(body(settings))
  ) as never
}

const markRunning = (driver: Driver, id: bigint, clientId: string, now: Date) =>
  Effect.gen(function*() {
    const job = yield* driver.jobMarkRunning({ id, now, clientId }).pipe(
      Effect.mapError(DatabaseError.fromSqlError("Testing: mark the job running"))
    )
    if (job === undefined) return yield* new TestingAssertionError({ detail: `job ${id} does not exist` })
    return job
  })

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

const jobsOfKinds = (kinds: ReadonlyArray<string>, schema: string | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Client.make({ schema })
    const jobs: Array<JobRow> = []
    let after: string | undefined
    do {
      const page = yield* client.list({ kinds, limit: 10_000, ...(after === undefined ? {} : { after }) })
      jobs.push(...page.jobs)
      after = page.next
    } while (after !== undefined)
    return jobs
  }))

/** A JSON value with every object's keys in one order, for comparing values by their text. */
const sortKeys = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(sortKeys)
    : typeof value === "object" && value !== null
    ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]))
    : value

const mismatches = (kind: JobKind.JobKind<any, any>, job: JobRow, expected: InsertedExpectation): Array<string> => {
  const out: Array<string> = []
  // Compared as values: jsonb keeps object keys in its own order (shortest first), not the
  // schema's, so the text of equal args can differ.
  const check = (field: string, want: unknown, got: unknown) => {
    if (want !== undefined && stringifyJson(sortKeys(want)) !== stringifyJson(sortKeys(got))) {
      out.push(`${field}: expected ${stringifyJson(want)}, got ${stringifyJson(got)}`)
    }
  }
  check("queue", expected.queue, job.queue)
  check("priority", expected.priority, job.priority)
  check("state", expected.state, job.state)
  check("maxAttempts", expected.maxAttempts, job.maxAttempts)
  check("scheduledAt", expected.scheduledAt?.toISOString(), job.scheduledAt.toISOString())
  check("tags", expected.tags, job.tags)
  if (expected.args !== undefined) {
    const encoded = kind.encode(expected.args)
    check("args", Result.isSuccess(encoded) ? parseJson(encoded.success) : expected.args, job.args)
  }
  return out
}

/**
 * Asserts that exactly one job of `kind` exists (matching the expectation, if given) and
 * returns it with decoded args. More than one fails (use {@link assertManyInserted}). Works
 * inside a transaction too.
 *
 * @since 0.1.0
 * @category assertions
 */
export const assertInserted = <A, I>(
  kind: JobKind.JobKind<A, I>,
  expected: InsertedExpectation = {}
): Effect.Effect<Omit<JobRow, "args"> & { readonly args: A }, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const jobs = yield* jobsOfKinds([kind.kind], expected.schema)
    if (jobs.length === 0) return yield* new TestingAssertionError({ detail: `expected a job of kind "${kind.kind}", found none` })
    if (jobs.length > 1) {
      return yield* new TestingAssertionError({
        detail: `expected exactly one job of kind "${kind.kind}", found ${jobs.length} (use assertManyInserted)`
      })
    }
    const job = jobs[0]!
    const problems = mismatches(kind, job, expected)
    if (problems.length > 0) {
      return yield* new TestingAssertionError({
        detail: `job ${job.id} of kind "${kind.kind}" does not match: ${problems.join("; ")}`
      })
    }
    const decoded = kind.decode(job.args)
    if (Result.isFailure(decoded)) return yield* new TestingAssertionError({ detail: decoded.failure.message })
    return { ...job, args: decoded.success }
  })

/**
 * Asserts that no job of `kind` exists; with an expectation, that none matches all its set
 * fields.
 *
 * @since 0.1.0
 * @category assertions
 */
export const assertNotInserted = <A, I>(
  kind: JobKind.JobKind<A, I>,
  expected?: InsertedExpectation
): Effect.Effect<void, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const jobs = yield* jobsOfKinds([kind.kind], expected?.schema)
    const matching = expected === undefined ? jobs : jobs.filter((job) => mismatches(kind, job, expected).length === 0)
    if (matching.length > 0) {
      return yield* new TestingAssertionError({
        detail: `expected no job of kind "${kind.kind}"${expected === undefined ? "" : " matching"}, found ${matching.length} (ids ${
          matching.map((j) => j.id).join(", ")
        })`
      })
    }
  })

/**
 * Asserts the exact sequence of inserted jobs of the given kinds, in id order (count and order),
 * each optionally with an expectation. Returns the jobs.
 *
 * @since 0.1.0
 * @category assertions
 */
export const assertManyInserted = (
  expected: ReadonlyArray<JobKind.JobKind<any, any> | { readonly kind: JobKind.JobKind<any, any>; readonly expect: InsertedExpectation }>,
  options: { readonly schema?: string | undefined } = {}
): Effect.Effect<ReadonlyArray<JobRow>, TestingAssertionError | InvalidOptions | DatabaseError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const items = expected.map((e) => ("expect" in e ? e : { kind: e, expect: {} as InsertedExpectation }))
    const kinds = [...new Set(items.map((i) => i.kind.kind))]
    const jobs = yield* jobsOfKinds(kinds, options.schema)
    const want = items.map((i) => i.kind.kind)
    const got = jobs.map((j) => j.kind)
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      return yield* new TestingAssertionError({
        detail: `expected jobs of kinds [${want.join(", ")}], found [${got.join(", ")}]`
      })
    }
    for (let i = 0; i < items.length; i++) {
      const problems = mismatches(items[i]!.kind, jobs[i]!, items[i]!.expect)
      if (problems.length > 0) {
        return yield* new TestingAssertionError({ detail: `job #${i} (${jobs[i]!.kind}) does not match: ${problems.join("; ")}` })
      }
    }
    return jobs
  })

/**
 * Runner settings for tests under `TestClock`: no fetch debounce, outcomes written at once,
 * every insert notified, no soft-stop wait, no clock-skew warning (a `TestClock` is far from the
 * database's clock on purpose). Only job times (retries, snoozes, schedules) then depend on the
 * clock.
 *
 * @since 0.1.0
 * @category runners
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
 * @category runners
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
 * @category runners
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
 * overshoot the delay being waited for. Returns the event and how far the clock moved.
 *
 * @since 0.1.0
 * @category runners
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
 * A `PgClient` layer for tests: its pool runs on the live clock even under `TestClock` (a pool
 * built under `TestClock` would wait forever for its own timers). Combine with
 * {@link freshSchema} for per-test isolation.
 *
 * @example
 * ```ts
 * it.layer(Testing.database(process.env.DATABASE_URL!))((it) => { ... })
 * ```
 *
 * @since 0.1.0
 * @category isolation
 */
export const database = (url: string, options: { readonly maxConnections?: number } = {}) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: options.maxConnections ?? 10 }).pipe(
    Layer.provide(Layer.sync(Clock.Clock, () => Clock.Clock.defaultValue()))
  )

let schemaCounter = 0

/**
 * Creates a schema with River's tables for this test and drops it when the scope closes:
 * per-test isolation on a real PostgreSQL. Returns its name.
 *
 * @since 0.1.0
 * @category isolation
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
