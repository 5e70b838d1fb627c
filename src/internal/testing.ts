/**
 * The implementation of the public `Testing` module's work and assertion functions: one job
 * worked by the runner's own executor (`executor.ts`, so the production path — decoding, the
 * resumable service, timeouts, the outcome rules) in a transaction that rolls back, and inserted
 * jobs compared with what a test expects.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import * as TestClock from "effect/testing/TestClock"
import { DatabaseError, type InvalidArgs, type InvalidOptions, TestingAssertionError } from "../Errors.ts"
import type * as InsertOptions from "../InsertOptions.ts"
import type { JobRow } from "../Job.ts"
import type * as JobKind from "../JobKind.ts"
import type { InsertedExpectation, WorkOptions, WorkResult } from "../Testing.ts"
import type * as Worker from "../Worker.ts"
import * as ClientInternal from "./client.ts"
import type { Driver } from "./driver/driver.ts"
import { makePgDriver } from "./driver/pg/driver.ts"
import { type EmbeddedPostgresOptions, startEmbeddedPostgres } from "./embeddedPostgres.ts"
import * as Executor from "./executor.ts"
import { validateSchema } from "./identifiers.ts"
import { parseJson, stringifyJson } from "./json.ts"
import * as Options from "./options.ts"
import type { Completion } from "./outcome.ts"

const ROLLBACK = Symbol.for("effect-river/Testing/rollback")

/** Runs `effect` in a transaction that always rolls back (the public `Testing.rollback`). */
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
    const updated = written[0]?.job ?? completion!.job
    return {
      kind: completion!.kind as WorkResult["kind"],
      job: updated,
      failure: completion!.failure,
      error: completion!.error?.error
    } satisfies WorkResult
  }).pipe(Effect.scoped)

/** Inserts a job and works it once (the public `Testing.work`). */
export const work = <A, I, E, R>(
  worker: Worker.Worker<A, I, E, R>,
  args: NoInfer<A>,
  options: WorkOptions & { readonly insert?: InsertOptions.InsertOptions | undefined } = {}
): Effect.Effect<WorkResult, InvalidArgs | InvalidOptions | DatabaseError, R | SqlClient.SqlClient> => {
  const body = (settings: typeof WorkSettings.Type) =>
    Effect.scoped(Effect.gen(function*() {
      const client = yield* ClientInternal.make({ schema: options.schema })
      const { job } = yield* client.insert(worker.jobKind, args, options.insert)
      return yield* runOne(worker, settings, options, (driver, clientId, now) => markRunning(driver, job.id, clientId, now))
    }))
  return Effect.flatMap(
    Options.decodeEffect(WorkSettings, { jobTimeout: options.jobTimeout }),
    (settings) => options.commit === true ? body(settings) : rollback(body(settings))
  ) as never
}

/** Works an existing row once (the public `Testing.workJob`). */
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

const jobsOfKinds = (kinds: ReadonlyArray<string>, schema: string | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* ClientInternal.make({ schema })
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

/** The public `Testing.assertInserted`. */
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

/** The public `Testing.assertNotInserted`. */
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

/** The public `Testing.assertManyInserted`. */
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


/** Moves `TestClock` to exactly `target` (the public `Testing.advanceTo`). */
export const advanceTo = (target: Date | number): Effect.Effect<{ readonly moved: number }> =>
  Effect.gen(function*() {
    const targetMillis = typeof target === "number" ? target : target.getTime()
    const now = yield* Clock.currentTimeMillis
    const moved = Math.max(0, targetMillis - now)
    if (moved > 0) yield* TestClock.adjust(moved)
    return { moved }
  })

/** Moves `TestClock` to exactly a job's `scheduledAt` (the public `Testing.advanceToScheduled`). */
export const advanceToScheduled = (jobId: bigint, options: { readonly schema?: string | undefined } = {}) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* ClientInternal.make({ schema: options.schema })
    const job = yield* client.get(jobId)
    const { moved } = yield* advanceTo(job.scheduledAt)
    return { scheduledAt: job.scheduledAt, moved }
  }))

/** Starts an embedded PostgreSQL in the current scope (the public `Testing.embeddedPostgres`). */
export const embeddedPostgres = (options: EmbeddedPostgresOptions = {}) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startEmbeddedPostgres(options),
      catch: (cause) => new DatabaseError({ operation: "Testing.embeddedPostgres", retryable: false, cause })
    }),
    (server) => Effect.ignore(Effect.tryPromise(() => server.stop()))
  ).pipe(Effect.map((server) => ({ url: server.url, port: server.port, dataDir: server.dataDir })))
