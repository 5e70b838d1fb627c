/**
 * The implementation of the public `Client` module: inserts (options resolved per kind, args
 * encoded, unique keys built, River's insert notification planned and rate-limited), and the
 * job and queue operations, each one driver method. The runner builds its own client here with
 * the hooks only it needs ({@link RunnerHooks}).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { Client, ClientOptions, InsertResult, ListParams, ListResult, QueueInfo, WaitForOptions } from "../Client.ts"
import { DatabaseError, InvalidArgs, InvalidOptions, JobNotFound, JobRunning } from "../Errors.ts"
import type * as InsertOptions from "../InsertOptions.ts"
import type { JobRow } from "../Job.ts"
import type * as JobKind from "../JobKind.ts"
import { availableAtOf } from "./availableAt.ts"
import type { JobInsertParams, JobInsertResult } from "./driver/driver.ts"
import { makePgDriver } from "./driver/pg/driver.ts"
import { validateSchema } from "./identifiers.ts"
import { show } from "./show.ts"
import { makeInsertNotifyLimiter } from "./insertNotifyLimiter.ts"
import * as InsertOptionsInternal from "./insertOptions.ts"
import { queueProblem } from "./insertOptions.ts"
import { listRequest } from "./jobList.ts"
import * as Options from "./options.ts"
import { cancelPayload, insertPayload, type Topic } from "./notification.ts"
import * as Telemetry from "./telemetry.ts"
import { type ResolvedUnique, uniqueKeyHex, uniqueKeyString } from "./uniqueKey.ts"

/**
 * What only the runner's own client does.
 */
export interface RunnerHooks {
  /**
   * River's unknown-kind check: inserting a kind outside the set (the runner's workers' kinds)
   * fails with `InvalidOptions` (field `kind`). Insert-only clients have none.
   */
  readonly knownKinds?: ReadonlySet<string> | undefined
  /**
   * Hands this client's committed notifications (inserts of available jobs, cancels of running
   * jobs) to the runner's own subscribers: a poll-only runner hears of them no other way.
   */
  readonly loopback?: ((topic: Topic, payload: string) => Effect.Effect<void>) | undefined
  /** Watches for this runner writing an outcome of the job: wakes `waitFor` before its next poll. */
  readonly watchCompletion?: ((id: bigint) => { readonly completed: Effect.Effect<void>; readonly release: () => void }) | undefined
}

/**
 * River's default client ID (`defaultClientIDWithHost`): the host name with dots as underscores,
 * at most 60 characters (`unknown_host` when empty), then the UTC time to the microsecond,
 * `host_2024_05_06T07_08_09_123456`. `nowMillis` is epoch milliseconds; its fraction gives the
 * microseconds.
 */
export const defaultClientId = (hostname: string, nowMillis: number): string =>
  clientIdAt(hostname, Math.round(nowMillis * 1000))

const clientIdAt = (hostname: string, epochMicros: number): string => {
  const host = (hostname === "" ? "unknown_host" : hostname).replaceAll(".", "_").slice(0, 60)
  const millis = Math.floor(epochMicros / 1000)
  const iso = new Date(millis).toISOString() // 2024-05-06T07:08:09.123Z
  const stamp = `${iso.slice(0, 4)}_${iso.slice(5, 7)}_${iso.slice(8, 10)}T${iso.slice(11, 13)}_${iso.slice(14, 16)}_${
    iso.slice(17, 19)
  }_${iso.slice(20, 23)}${String(epochMicros - millis * 1000).padStart(3, "0")}`
  return `${host}_${stamp}`
}

/** The microsecond of the last default ID this process gave out (see {@link nextDefaultClientId}). */
let lastDefaultIdMicros = Number.NEGATIVE_INFINITY

/**
 * A default ID for a client made now: River's format at the Clock's microsecond, one microsecond
 * past the previous default ID of this process when the Clock has not moved past it (two clients
 * made in one microsecond, or any number under `TestClock`), so no two clients of one process
 * share a default ID.
 */
const nextDefaultClientId = (hostname: string, epochMicros: number): string => {
  lastDefaultIdMicros = epochMicros > lastDefaultIdMicros ? epochMicros : lastDefaultIdMicros + 1
  return clientIdAt(hostname, lastDefaultIdMicros)
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

/** The client's own options with their rules and defaults (`ClientOptions` documents each). */
const ClientSettings = Schema.Struct({
  id: Schema.optional(Options.string(100, "must be 1 to 100 characters")),
  insertNotifyCooldown: Options.withDefault(Options.duration(), Options.defaults.client.insertNotifyCooldown)
})

/** The states a job does not leave by itself. */
const FINAL_STATES: ReadonlySet<string> = new Set(["completed", "cancelled", "discarded"])

/** Builds a client from a `SqlClient`, with the runner's hooks when the runner builds it. */
export const makeWith = Effect.fnUntraced(function*(options: ClientOptions, hooks: RunnerHooks) {
  const schema = yield* validateSchema(options.schema)
  if (options.defaults !== undefined) {
    const problem = InsertOptionsInternal.validate(options.defaults, "defaults.")
    if (problem !== undefined) return yield* problem
  }
  const settings = yield* Options.decodeEffect(ClientSettings, { id: options.id, insertNotifyCooldown: options.insertNotifyCooldown })
  const cooldownMillis = Duration.toMillis(settings.insertNotifyCooldown)
  const sql = yield* SqlClient.SqlClient
  const scope = yield* Scope.Scope
  const { hostname } = yield* Effect.promise(() => import("node:os"))
  const id = settings.id ?? nextDefaultClientId(hostname(), Number((yield* Clock.currentTimeNanos) / 1000n))
  const driver = makePgDriver(sql, schema)
  const clientDefaults = options.defaults
  const knownKinds = hooks.knownKinds
  const loopback = hooks.loopback
  const notifier = makeInsertNotifyLimiter({
    driver,
    scope,
    cooldownMillis
  })

  const dbError = (operation: string) => (error: SqlError) => DatabaseError.fromSqlError(operation)(error)

  // Per kind, the merge of kind and client defaults (validated once).
  const kindDefaults = new WeakMap<JobKind.JobKind<any, any>, InsertOptionsInternal.ResolvedInsert>()
  const resolvedFor = (
    kind: JobKind.JobKind<any, any>,
    insertOptions: InsertOptions.InsertOptions | undefined
  ): InsertOptionsInternal.ResolvedInsert => {
    if (insertOptions === undefined) {
      let cached = kindDefaults.get(kind)
      if (cached === undefined) {
        cached = InsertOptionsInternal.resolve(InsertOptionsInternal.merge(kind.options, clientDefaults))
        kindDefaults.set(kind, cached)
      }
      return cached
    }
    return InsertOptionsInternal.resolve(InsertOptionsInternal.merge(insertOptions, kind.options, clientDefaults))
  }

  /**
   * Validates, encodes and inserts a batch: with `fast`, River's `InsertManyFast` (the count of
   * inserted jobs), otherwise the rows in input order. With a `span` (a tracer is installed), each
   * job's metadata carries its context (`traceparent`) so that the attempt span links to it.
   */
  const insertJobs = (
    requests: ReadonlyArray<JobKind.InsertRequest>,
    fast: boolean,
    span: Tracer.AnySpan | undefined
  ): Effect.Effect<ReadonlyArray<InsertResult> | number, InvalidArgs | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<InsertResult> | number, InvalidArgs | InvalidOptions | DatabaseError> => {
      const n = requests.length
      if (n === 0) return Effect.succeed(fast ? 0 : [] as ReadonlyArray<InsertResult>)
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
          const problem = InsertOptionsInternal.validate(request.options, prefix(i))
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
          metadata: span === undefined ? resolved.metadataJson : Telemetry.withTraceparent(resolved.metadataJson, span),
          priority: resolved.priority,
          queue: resolved.queue,
          scheduledAt: available ? availableAt! : resolved.scheduledAt,
          state: available ? "available" : resolved.state,
          tags: resolved.tags
        }
        if (resolved.unique !== undefined) (uniques ??= new Array<ResolvedUnique | undefined>(n))[i] = resolved.unique
      }
      return Effect.flatMap(Clock.currentTimeMillis, (nowMillis): Effect.Effect<ReadonlyArray<InsertResult> | number, DatabaseError> => {
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
              loopback === undefined || availableQueues.size === 0
                ? Effect.void
                : sql.afterCommit(Effect.forEach(availableQueues, (queue) => loopback("river_insert", insertPayload(queue)), {
                  discard: true
                }))
            )
          )
        if (uniques === undefined) {
          for (let i = 0; i < n; i++) jobs[i]!.scheduledAt ??= now
          if (fast) {
            return driver.jobInsertManyFast({ jobs: jobs as ReadonlyArray<JobInsertParams>, now, notifyQueues: plan.queues }).pipe(
              Effect.mapError(dbError("insertManyFast")),
              withAfterCommitHooks
            )
          }
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
        if (fast) {
          return driver.jobInsertManyFast({ jobs: sent, now, notifyQueues: plan.queues }).pipe(
            Effect.mapError(dbError("insertManyFast")),
            withAfterCommitHooks
          )
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

  /** The span attributes of an insert operation. */
  const insertAttributes = (operation: "insert" | "insert_many" | "insert_many_fast", requests: ReadonlyArray<JobKind.InsertRequest>) => () =>
    operation === "insert"
      ? { "messaging.operation.name": operation, "messaging.operation.type": "create", kind: requests[0]?.jobKind.kind }
      : { "messaging.operation.name": operation, "messaging.operation.type": "create", "messaging.batch.message_count": requests.length }

  const insertMany = (
    requests: ReadonlyArray<JobKind.InsertRequest>,
    operation: "insert" | "insert_many" = "insert_many"
  ): Effect.Effect<ReadonlyArray<InsertResult>, InvalidArgs | InvalidOptions | DatabaseError> =>
    Telemetry.traced(`effect-river.${operation}`, { kind: "producer", attributes: insertAttributes(operation, requests) }, (span) =>
      Effect.tap(
        insertJobs(requests, false, span) as Effect.Effect<ReadonlyArray<InsertResult>, InvalidArgs | InvalidOptions | DatabaseError>,
        Telemetry.recordInserted
      ))

  const insertManyFast = (
    requests: ReadonlyArray<JobKind.InsertRequest>
  ): Effect.Effect<number, InvalidArgs | InvalidOptions | DatabaseError> =>
    Telemetry.traced("effect-river.insert_many_fast", { kind: "producer", attributes: insertAttributes("insert_many_fast", requests) }, (span) =>
      Effect.tap(
        insertJobs(requests, true, span) as Effect.Effect<number, InvalidArgs | InvalidOptions | DatabaseError>,
        () => Telemetry.recordInsertedJobs(() => requests.map((r) => [r.jobKind.kind, resolvedFor(r.jobKind, r.options).queue] as const))
      ))

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
    Telemetry.traced("effect-river.retry", { kind: "client", attributes: Telemetry.jobOperationAttributes("retry", jobId) }, () => retryIn(jobId))

  const retryIn = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | JobRunning | InvalidOptions | DatabaseError> =>
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
    Telemetry.traced("effect-river.cancel", { kind: "client", attributes: Telemetry.jobOperationAttributes("cancel", jobId) }, () => cancelIn(jobId))

  const cancelIn = (jobId: bigint): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        driver.jobCancel({ id, now: new Date(now) }).pipe(
          Effect.mapError(dbError("cancel")),
          Effect.tap((result) =>
            loopback !== undefined && result?.job.state === "running"
              ? sql.afterCommit(loopback("river_control", cancelPayload(id, result.job.queue)))
              : Effect.void
          ),
          Effect.flatMap((result) => result === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(result.job))
        ))
    })

  const waitForSettings = Schema.Struct({
    pollInterval: Options.withDefault(Options.duration({ positive: true, rule: "must be a positive duration" }), "1 second")
  })
  const watchCompletion = hooks.watchCompletion

  const waitFor = (
    jobId: bigint,
    waitOptions: WaitForOptions = {}
  ): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError> => {
      const id = toBigIntId(jobId)
      if (id === undefined) return Effect.fail(idError(jobId))
      const settings = Options.decode(waitForSettings, { pollInterval: waitOptions.pollInterval }, "waitFor.")
      if (Result.isFailure(settings)) return Effect.fail(settings.failure)
      const pollMillis = Duration.toMillis(settings.success.pollInterval)
      // One poll: the row; if not final, wait the poll interval (Clock) or, in a runner's own
      // client, until the runner writes the job's outcome — watched from before the read, so an
      // outcome written between the read and the wait is not missed.
      const poll = Effect.suspend(() => {
        const watch = watchCompletion?.(id)
        return get(id).pipe(
          Effect.flatMap((row) =>
            FINAL_STATES.has(row.state)
              ? Effect.succeed(row)
              : Effect.as(
                watch === undefined ? Effect.sleep(pollMillis) : Effect.raceFirst(Effect.sleep(pollMillis), watch.completed),
                undefined
              )
          ),
          Effect.ensuring(Effect.sync(() => watch?.release()))
        )
      })
      return Effect.gen(function*() {
        while (true) {
          const row = yield* poll
          if (row !== undefined) return row
        }
      })
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

  const listQueues = (
    params: { readonly limit?: number | undefined } = {}
  ): Effect.Effect<ReadonlyArray<QueueInfo>, InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<QueueInfo>, InvalidOptions | DatabaseError> => {
      const limit = params.limit ?? 100
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
        return Effect.fail(new InvalidOptions({ field: "limit", rule: "must be an integer from 1 to 10,000", value: show(params.limit) }))
      }
      return driver.queueListAll({ max: limit }).pipe(Effect.mapError(dbError("listQueues")))
    })

  const list = (params: ListParams = {}): Effect.Effect<ListResult, InvalidOptions | DatabaseError> =>
    Effect.suspend((): Effect.Effect<ListResult, InvalidOptions | DatabaseError> => {
      const built = listRequest(params)
      if (Result.isFailure(built)) return Effect.fail(built.failure)
      const { request, toResult } = built.success
      return driver.jobList(request).pipe(Effect.mapError(dbError("list")), Effect.map(toResult))
    })

  return {
    schema,
    id,
    insert: (kind, args, insertOptions) =>
      Effect.map(
        insertMany([{ jobKind: kind, args, options: insertOptions }], "insert"),
        (results) => results[0]!
      ),
    insertMany: (requests) => insertMany(requests),
    insertManyFast,
    get,
    list,
    retry,
    delete: del,
    cancel,
    waitFor,
    pauseQueue: queueControl("pause"),
    resumeQueue: queueControl("resume"),
    listQueues
  } satisfies Client["Service"]
})

/** Builds a client from a `SqlClient` (the public `Client.make`). */
export const make = (options: ClientOptions = {}) => makeWith(options, {})
