/**
 * The client: insert jobs and manage them (get, list, retry, delete). A layer over any
 * `SqlClient`, so every operation joins the caller's `sql.withTransaction` when there is one:
 * a job inserted in a transaction that rolls back never existed, and its notification is never
 * sent.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client } from "effect-river"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.Client
 *   const { job } = yield* client.insert(SendEmail, { to: "a@example.com", subject: "hi" })
 *   const again = yield* client.get(job.id)
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { DatabaseError, InvalidArgs, InvalidOptions, JobNotFound, JobRunning } from "./Errors.ts"
import * as InsertOptions from "./InsertOptions.ts"
import { queueProblem } from "./InsertOptions.ts"
import { availableAtOf } from "./internal/availableAt.ts"
import type { JobInsertParams, JobInsertResult } from "./internal/driver/driver.ts"
import { makePgDriver } from "./internal/driver/pg/driver.ts"
import { show, validateSchema } from "./internal/identifiers.ts"
import { makeInsertNotifier } from "./internal/insertNotifier.ts"
import { type ListParams, listRequest, type ListResult } from "./internal/jobList.ts"
import { type ResolvedUnique, uniqueKeyHex, uniqueKeyString } from "./internal/uniqueKey.ts"
import type { JobRow } from "./Job.ts"
import type * as JobKind from "./JobKind.ts"

export type { ListParams, ListResult } from "./internal/jobList.ts"

/**
 * Result of an insert.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertResult {
  readonly job: JobRow
  /**
   * True when the job is unique and a duplicate already existed (in the database, or earlier in
   * the same `insertMany` batch): `job` is that existing job and nothing was inserted.
   */
  readonly skippedAsDuplicate: boolean
}

/**
 * Client configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /**
   * Schema holding River's tables (`^[a-zA-Z_][a-zA-Z0-9_]*$`, at most 46 characters). Omit it
   * to use the connection's `search_path`.
   */
  readonly schema?: string | undefined
  /**
   * Client ID recorded in `attempted_by`. Defaults to River's format:
   * `<hostname>_<UTC start time>`.
   */
  readonly id?: string | undefined
  /** Default insert options, below each job kind's defaults. */
  readonly defaults?: InsertOptions.InsertOptions | undefined
  /**
   * At most one insert notification per queue per this window; an insert inside the window
   * gets one trailing notification at its end instead (River sends none).
   * @default "100 millis"
   */
  readonly insertNotifyCooldown?: Duration.Input | undefined
  /**
   * River's unknown-kind check: when set (the runner sets it to its workers' kinds), inserting a
   * kind outside the set fails with `InvalidOptions` (field `kind`). Insert-only clients leave it
   * unset.
   */
  readonly knownKinds?: ReadonlySet<string> | undefined
  /**
   * Called after an insert commits with the queues that got available jobs. The runner uses it
   * in poll-only mode to wake its own producers.
   */
  readonly afterInsert?: ((queues: ReadonlyArray<string>) => Effect.Effect<void>) | undefined
  /**
   * Called after a cancel of a running job commits. The runner uses it in poll-only mode to
   * interrupt its own job at once (no notification reaches it).
   */
  readonly afterCancel?: ((id: bigint) => Effect.Effect<void>) | undefined
}

/**
 * The client service.
 *
 * @since 0.1.0
 * @category services
 */
export class Client extends Context.Service<Client, {
  /** Schema of River's tables, or `undefined` for the search path. */
  readonly schema: string | undefined
  /** This client's ID (River's `attempted_by` entries). */
  readonly id: string
  /**
   * Inserts one job. Args are encoded with the kind's schema and options validated before any
   * SQL; an available job's queue gets River's insert notification in the same transaction.
   */
  readonly insert: <A, I>(
    kind: JobKind.JobKind<A, I>,
    args: NoInfer<A>,
    options?: InsertOptions.InsertOptions
  ) => Effect.Effect<InsertResult, InvalidArgs | InvalidOptions | DatabaseError>
  /**
   * Inserts many jobs, of any kinds, with one statement. Results are in input order. Any
   * invalid request fails the whole call before SQL (the error names its index).
   */
  readonly insertMany: (
    requests: ReadonlyArray<JobKind.InsertRequest>
  ) => Effect.Effect<ReadonlyArray<InsertResult>, InvalidArgs | InvalidOptions | DatabaseError>
  /** Loads one job. */
  readonly get: (id: bigint) => Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError>
  /** Lists jobs with filters, ordering and cursor pagination (default 100, at most 10,000 per page). */
  readonly list: (params?: ListParams) => Effect.Effect<ListResult, InvalidOptions | DatabaseError>
  /**
   * Makes a job available again now, as River does: any state but `running`; clears
   * `finalized_at`; keeps `attempt` and `errors`; raises `max_attempts` by one if none is left.
   */
  readonly retry: (id: bigint) => Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError>
  /** Deletes a job that is not running; returns the deleted row. */
  readonly delete: (id: bigint) => Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError>
  /**
   * Cancels a job, as River does, and returns the updated row:
   * - `available`, `scheduled`, `retryable`, `pending`: `cancelled` at once (no runner can
   *   fetch it any more);
   * - `running`: stays `running` with `metadata.cancel_attempted_at` set, and River's control
   *   notification tells the runner that runs it to interrupt it (it then ends `cancelled`);
   * - `cancelled`, `completed`, `discarded`: unchanged.
   *
   * Inside the caller's `sql.withTransaction`, the notification goes out on commit (and never
   * on rollback).
   */
  readonly cancel: (id: bigint) => Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError>
  /**
   * Pauses a queue (or every queue with `"*"`): every runner stops fetching from it at once
   * (running jobs continue). The pause is stored in `river_queue`, so it survives restarts;
   * pausing a queue no runner has started yet makes runners start it paused. Idempotent.
   */
  readonly pauseQueue: (queue: string) => Effect.Effect<void, InvalidOptions | DatabaseError>
  /** Resumes a paused queue (or every queue with `"*"`); a no-op for a queue that is not paused. */
  readonly resumeQueue: (queue: string) => Effect.Effect<void, InvalidOptions | DatabaseError>
}>()("effect-river/Client") {}

/**
 * River's default client ID: hostname (dots replaced, at most 60 characters) and UTC time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultClientId = (hostname: string, nowMillis: number): string => {
  const host = hostname.replaceAll(".", "_").slice(0, 60)
  const iso = new Date(nowMillis).toISOString() // 2024-05-06T07:08:09.123Z
  const stamp = `${iso.slice(0, 4)}_${iso.slice(5, 7)}_${iso.slice(8, 10)}T${iso.slice(11, 13)}_${iso.slice(14, 16)}_${
    iso.slice(17, 19)
  }_${iso.slice(20, 23)}000`
  return `${host}_${stamp}`
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const toBigIntId = (id: unknown): bigint | undefined => {
  if (typeof id === "bigint") return id >= INT64_MIN && id <= INT64_MAX ? id : undefined
  if (typeof id === "number" && Number.isSafeInteger(id)) return BigInt(id)
  return undefined
}

const idError = (id: unknown) =>
  new InvalidOptions({
    field: "id",
    rule: "must be a 64-bit signed integer: a bigint from -2^63 to 2^63 - 1 (or a safe integer number)",
    value: show(id)
  })

/** A job on its way to the driver: its time is now unless set, its unique key added once known. */
type PendingInsert = Omit<{ -readonly [K in keyof JobInsertParams]: JobInsertParams[K] }, "scheduledAt"> & {
  scheduledAt: Date | undefined
}

/**
 * Builds a client from a `SqlClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: ClientOptions = {}) {
  const schema = yield* validateSchema(options.schema)
  if (options.defaults !== undefined) {
    const problem = InsertOptions.validate(options.defaults, "defaults.")
    if (problem !== undefined) return yield* problem
  }
  if (options.id !== undefined && (typeof options.id !== "string" || options.id.length === 0 || options.id.length > 100)) {
    return yield* new InvalidOptions({ field: "id", rule: "must be 1 to 100 characters", value: show(options.id) })
  }
  const cooldown = Duration.fromInput(options.insertNotifyCooldown ?? "100 millis")
  if (cooldown._tag === "None") {
    return yield* new InvalidOptions({
      field: "insertNotifyCooldown",
      rule: "must be a duration",
      value: show(options.insertNotifyCooldown)
    })
  }
  const cooldownMillis = Duration.toMillis(cooldown.value)
  const sql = yield* SqlClient.SqlClient
  const scope = yield* Scope.Scope
  const { hostname } = yield* Effect.promise(() => import("node:os"))
  const id = options.id ?? defaultClientId(hostname(), yield* Clock.currentTimeMillis)
  const driver = makePgDriver(sql, schema)
  const clientDefaults = options.defaults
  const knownKinds = options.knownKinds
  const afterInsert = options.afterInsert
  const afterCancel = options.afterCancel
  const notifier = makeInsertNotifier({
    driver,
    scope,
    cooldownMillis
  })

  const dbError = (operation: string) => (error: SqlError) => DatabaseError.fromSqlError(operation)(error)

  // Per kind, the merge of kind and client defaults (validated once).
  const kindDefaults = new WeakMap<JobKind.JobKind<any, any>, InsertOptions.ResolvedInsert>()
  const resolvedFor = (
    kind: JobKind.JobKind<any, any>,
    insertOptions: InsertOptions.InsertOptions | undefined
  ): InsertOptions.ResolvedInsert => {
    if (insertOptions === undefined) {
      let cached = kindDefaults.get(kind)
      if (cached === undefined) {
        cached = InsertOptions.resolve(InsertOptions.merge(kind.options, clientDefaults))
        kindDefaults.set(kind, cached)
      }
      return cached
    }
    return InsertOptions.resolve(InsertOptions.merge(insertOptions, kind.options, clientDefaults))
  }

  const insertMany = (
    requests: ReadonlyArray<JobKind.InsertRequest>
  ): Effect.Effect<ReadonlyArray<InsertResult>, InvalidArgs | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<InsertResult>, InvalidArgs | InvalidOptions | DatabaseError> => {
      const n = requests.length
      if (n === 0) return Effect.succeed([] as ReadonlyArray<InsertResult>)
      const jobs = new Array<PendingInsert>(n)
      // Allocated only when the batch has a unique job, so plain batches pay nothing.
      let uniques: Array<ResolvedUnique | undefined> | undefined
      const prefix = (i: number) => (n === 1 ? "" : `[${i}].`)
      for (let i = 0; i < n; i++) {
        const request = requests[i]!
        const kind = request.jobKind
        if (kind.problem !== undefined) return Effect.fail(kind.problem)
        if (knownKinds !== undefined && !knownKinds.has(kind.kind)) {
          return Effect.fail(
            new InvalidOptions({
              field: "kind",
              rule: "has no worker in this runner (River's unknown-kind check); register a worker or insert through an insert-only client",
              value: show(kind.kind)
            })
          )
        }
        if (request.options !== undefined) {
          const problem = InsertOptions.validate(request.options, prefix(i))
          if (problem !== undefined) return Effect.fail(problem)
        }
        const encoded = kind.encode(request.args)
        if (Result.isFailure(encoded)) {
          return Effect.fail(
            n === 1 ? encoded.failure : new InvalidArgs({ kind: kind.kind, issues: `request [${i}]: ${encoded.failure.issues}` })
          )
        }
        const resolved = resolvedFor(kind, request.options)
        const availableAt = availableAtOf(request)
        const available = availableAt !== undefined && resolved.state !== "pending"
        jobs[i] = {
          args: encoded.success,
          kind: kind.kind,
          maxAttempts: resolved.maxAttempts,
          metadata: resolved.metadataJson,
          priority: resolved.priority,
          queue: resolved.queue,
          scheduledAt: available ? availableAt! : resolved.scheduledAt,
          state: available ? "available" : resolved.state,
          tags: resolved.tags
        }
        if (resolved.unique !== undefined) (uniques ??= new Array<ResolvedUnique | undefined>(n))[i] = resolved.unique
      }
      return Effect.flatMap(Clock.currentTimeMillis, (nowMillis) => {
        const now = new Date(nowMillis)
        const availableQueues = new Set<string>()
        for (let i = 0; i < n; i++) {
          const job = jobs[i]!
          if (job.state === "available") availableQueues.add(job.queue)
        }
        const plan = notifier.plan(availableQueues, nowMillis)
        const withAfterCommitHooks = <A>(self: Effect.Effect<A, DatabaseError>) =>
          self.pipe(
            Effect.tap(() => plan.suppressed.length === 0 ? Effect.void : sql.afterCommit(notifier.trailing(plan.suppressed))),
            Effect.tap(() =>
              afterInsert === undefined || availableQueues.size === 0
                ? Effect.void
                : sql.afterCommit(afterInsert([...availableQueues]))
            )
          )
        if (uniques === undefined) {
          for (let i = 0; i < n; i++) jobs[i]!.scheduledAt ??= now
          return driver.jobInsertMany({ jobs: jobs as ReadonlyArray<JobInsertParams>, now, notifyQueues: plan.queues }).pipe(
            Effect.mapError(dbError("insert")),
            withAfterCommitHooks,
            Effect.map((rows) => rows.map((row): InsertResult => ({ job: row.job, skippedAsDuplicate: false })))
          )
        }

        // Unique jobs: River's key per job; a key seen earlier in the batch is not sent again
        // (Postgres cannot update one row twice in a statement) and gets the earlier job's row.
        const rowOf = new Array<number>(n)
        const duplicateInBatch = new Array<boolean>(n).fill(false)
        const firstWithKey = new Map<string, number>()
        const sent: Array<JobInsertParams> = []
        for (let i = 0; i < n; i++) {
          const job = jobs[i]!
          const unique = uniques[i]
          if (unique !== undefined) {
            const key = uniqueKeyHex(uniqueKeyString(unique, {
              kind: job.kind,
              argsJson: job.args,
              argsAst: requests[i]!.jobKind.argsJsonAst,
              queue: job.queue,
              scheduledAtMillis: job.scheduledAt?.getTime(),
              nowMillis
            }))
            const first = firstWithKey.get(key)
            if (first !== undefined) {
              rowOf[i] = rowOf[first]!
              duplicateInBatch[i] = true
              continue
            }
            firstWithKey.set(key, i)
            job.uniqueKey = key
            job.uniqueStates = unique.statesBitmask
          }
          job.scheduledAt ??= now
          rowOf[i] = sent.push(job as JobInsertParams) - 1
        }
        return driver.jobInsertMany({ jobs: sent, now, notifyQueues: plan.queues }).pipe(
          Effect.mapError(dbError("insert")),
          withAfterCommitHooks,
          Effect.flatMap((rows: ReadonlyArray<JobInsertResult>) => {
            if (rows.length !== sent.length) {
              return Effect.die(new Error(`insert returned ${rows.length} rows for ${sent.length} jobs`))
            }
            return Effect.succeed(
              rowOf.map((r, i): InsertResult => ({
                job: rows[r]!.job,
                skippedAsDuplicate: duplicateInBatch[i]! || rows[r]!.skipped
              }))
            )
          })
        )
      })
    })

  const get = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      return driver.jobGetById({ id }).pipe(
        Effect.mapError(dbError("get")),
        Effect.flatMap((job) => job === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(job))
      )
    })

  const retry = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        driver.jobRetry({ id, now: new Date(now) }).pipe(
          Effect.mapError(dbError("retry")),
          Effect.flatMap((result): Effect.Effect<JobRow, JobNotFound | JobRunning> => {
            if (result === undefined) return Effect.fail(new JobNotFound({ id }))
            if (!result.changed && result.job.state === "running") return Effect.fail(new JobRunning({ id, operation: "retry" }))
            return Effect.succeed(result.job)
          })
        ))
    })

  const del = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      return driver.jobDelete({ id }).pipe(
        Effect.mapError(dbError("delete")),
        Effect.flatMap((result): Effect.Effect<JobRow, JobNotFound | JobRunning> => {
          if (result === undefined) return Effect.fail(new JobNotFound({ id }))
          if (!result.deleted) return Effect.fail(new JobRunning({ id, operation: "delete" }))
          return Effect.succeed(result.job)
        })
      )
    })

  const cancel = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        driver.jobCancel({ id, now: new Date(now) }).pipe(
          Effect.mapError(dbError("cancel")),
          Effect.tap((result) =>
            afterCancel !== undefined && result?.job.state === "running" ? sql.afterCommit(afterCancel(id)) : Effect.void
          ),
          Effect.flatMap((result) => result === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(result.job))
        ))
    })

  const queueControl = (operation: "pause" | "resume") => (queue: string): Effect.Effect<void, InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<void, InvalidOptions | DatabaseError> => {
      const all = queue === "*"
      if (!all) {
        const problem = queueProblem(queue)
        if (problem !== undefined) {
          return Effect.fail(new InvalidOptions({ field: "queue", rule: `${problem}, or "*" for every queue`, value: show(queue) }))
        }
      }
      const statement = operation === "pause" ? driver.queuePause : driver.queueResume
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        statement({ name: queue, now: new Date(now) }).pipe(Effect.mapError(dbError(`${operation}Queue`))))
    })

  const list = (params: ListParams = {}): Effect.Effect<ListResult, InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<ListResult, InvalidOptions | DatabaseError> => {
      const built = listRequest(params)
      if (Result.isFailure(built)) return Effect.fail(built.failure)
      const { request, toResult } = built.success
      return driver.jobList(request).pipe(Effect.mapError(dbError("list")), Effect.map(toResult))
    })

  return Client.of({
    schema,
    id,
    insert: (kind, args, insertOptions) =>
      Effect.map(
        insertMany([{ jobKind: kind, args, options: insertOptions }]),
        (results) => results[0]!
      ),
    insertMany,
    get,
    list,
    retry,
    delete: del,
    cancel,
    pauseQueue: queueControl("pause"),
    resumeQueue: queueControl("resume")
  })
})

/**
 * The client as a layer over a `SqlClient` (for example `PgClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientOptions = {}): Layer.Layer<Client, InvalidOptions, SqlClient.SqlClient> =>
  Layer.effect(Client, make(options))
