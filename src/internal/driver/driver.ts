/**
 * The driver seam: every statement the runtime sends, as one typed method each, grouped by table
 * and named table-then-verb as River's `riverdriver.Executor` names them (`JobGetAvailable`,
 * `JobSetStateIfRunningMany`, …). Each method takes one params object and returns decoded values;
 * how a method says it in SQL — its text, how its parameters are packed, how its rows are decoded
 * — belongs to the implementation (`./pg/`, PostgreSQL through `@effect/sql`), and nothing else in
 * the runtime sends SQL of its own for River's tables.
 *
 * A driver is built once per schema (`makePgDriver(sql, schema)`) and joins the caller's
 * `sql.withTransaction` like any `SqlClient` call. Every time comes from the caller (the Effect
 * `Clock`), never from the database's `now()`, except for River's leader election, whose lease
 * lives on the database clock by River's protocol.
 *
 * The contract of every method is written down here and checked by the conformance suite
 * (test/driver/conformance.ts), which runs against PostgreSQL in `npm test` and needs nothing but
 * this interface, so a second implementation (River also ships SQLite) can run it unchanged.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { SqlError } from "effect/sql/SqlError"
import type { QueueInfo } from "../../Client.ts"
import type { AttemptError, JobRow, JobState } from "../../Job.ts"
import type { FlowLimits } from "../flowControl.ts"
import type { Topic } from "../notification.ts"

/** One job to insert ({@link Driver.jobInsertMany}). */
export interface JobInsertParams {
  /** The encoded args as JSON text (an object). */
  readonly args: string
  readonly kind: string
  readonly maxAttempts: number
  /** Metadata as JSON text (an object). */
  readonly metadata: string
  readonly priority: number
  readonly queue: string
  readonly scheduledAt: Date
  readonly state: "available" | "pending" | "scheduled"
  readonly tags: ReadonlyArray<string>
  /** River's unique key (the SHA-256 of its key string) as lowercase hex, for a unique job. */
  readonly uniqueKey?: string | undefined
  /** The states the key covers, as River's `bit(8)` text (`"11110101"`); set with `uniqueKey`. */
  readonly uniqueStates?: string | undefined
}

/** One inserted job: the row, and whether it is an existing duplicate instead ({@link Driver.jobInsertMany}). */
export interface JobInsertResult {
  readonly job: JobRow
  /** The job is unique and a row holding its key in a covered state existed: `job` is that row. */
  readonly skipped: boolean
}

/** A row as a test or a tool writes it ({@link Driver.jobInsertFull}); omitted fields get the table's defaults. */
export interface JobInsertFullParams {
  readonly args?: string | undefined
  readonly attempt?: number | undefined
  readonly attemptedAt?: Date | null | undefined
  readonly attemptedBy?: ReadonlyArray<string> | undefined
  readonly createdAt?: Date | undefined
  readonly errors?: ReadonlyArray<AttemptError> | undefined
  readonly finalizedAt?: Date | null | undefined
  readonly kind: string
  readonly maxAttempts?: number | undefined
  /** JSON text, stored as it is (any JSON value: other writers store `null`, scalars, arrays). */
  readonly metadata?: string | undefined
  readonly priority?: number | undefined
  readonly queue?: string | undefined
  readonly scheduledAt?: Date | undefined
  readonly state?: JobState | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  readonly uniqueKey?: string | undefined
  readonly uniqueStates?: string | undefined
}

/**
 * One job as {@link Driver.jobSetStateIfRunningMany} left it. `applied`: the outcome's state was
 * written (the row was still running at the attempt that ran); false when the job had left
 * `running` meanwhile (at most its metadata was merged), so no outcome of this attempt happened.
 */
export interface SetStateResult {
  readonly job: JobRow
  readonly applied: boolean
}

/**
 * One outcome to write ({@link Driver.jobSetStateIfRunningMany}). Optional fields are left as
 * they are when absent.
 */
export interface JobSetStateParams {
  readonly id: bigint
  readonly state: JobState
  /** The new `attempt` (an outcome that gives the attempt back). */
  readonly attempt?: number | undefined
  /** Appended to `errors`. */
  readonly error?: AttemptError | undefined
  readonly finalizedAt?: Date | undefined
  readonly scheduledAt?: Date | undefined
  /** Merged into `metadata` (which is treated as `{}` when it is not an object). */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  /**
   * The row as its attempt was fetched: the outcome applies only while the row is still at
   * `job.attempt`, and a `cancel_attempted_at` that differs from the one in `job.metadata` is a
   * cancel requested during this attempt.
   */
  readonly job: Pick<JobRow, "attempt" | "metadata">
}

/** One plain success to write ({@link Driver.jobCompleteManyIfRunning}). */
export interface JobCompleteParams {
  readonly id: bigint
  readonly finalizedAt: Date
  /** The row as its attempt was fetched: the success applies only while the row is still at `job.attempt`. */
  readonly job: JobRow
}

/** One stuck job's rescue ({@link Driver.jobRescueMany}). */
export interface JobRescueParams {
  readonly id: bigint
  /** The attempt read as stuck: the rescue applies only while the row is still at it. */
  readonly attempt: number
  readonly state: "cancelled" | "discarded" | "retryable"
  readonly finalizedAt?: Date | undefined
  readonly scheduledAt?: Date | undefined
  /** Appended to `errors`. */
  readonly error: AttemptError
}

/** A page request of {@link Driver.jobList}; every filter is optional and they combine with AND. */
export interface JobListParams {
  readonly states?: ReadonlyArray<JobState> | undefined
  readonly kinds?: ReadonlyArray<string> | undefined
  readonly queues?: ReadonlyArray<string> | undefined
  readonly priorities?: ReadonlyArray<number> | undefined
  readonly ids?: ReadonlyArray<bigint> | undefined
  /** Jobs having at least one of these tags. */
  readonly tagsAny?: ReadonlyArray<string> | undefined
  /** Jobs having all of these tags. */
  readonly tagsAll?: ReadonlyArray<string> | undefined
  /** Jobs whose metadata contains this JSON object (JSON text). */
  readonly metadataContains?: string | undefined
  /** The sort key; ties are broken by id. `finalizedAt` lists finalized jobs only. */
  readonly orderBy: "id" | "scheduledAt" | "finalizedAt"
  readonly order: "asc" | "desc"
  /** Rows to return at most. */
  readonly limit: number
  /** Continue after this row: its id and its sort value in integer microseconds (`null`: none). */
  readonly after?: { readonly id: bigint; readonly orderValueMicros: string | null } | undefined
}

/** One row of {@link Driver.jobList}, with its sort value in integer microseconds (`null` for `orderBy: "id"` or an unset column). */
export interface JobListRow {
  readonly job: JobRow
  readonly orderValueMicros: bigint | null
}

/** What {@link Driver.jobGetAvailableLimited} started, and when to fetch again. */
export interface LimitedFetch {
  /** The jobs now running, in fetch order. */
  readonly jobs: ReadonlyArray<JobRow>
  /**
   * The scan of a partitioned queue stopped at its bound before it found `max` jobs: partitions
   * further on may have startable jobs; fetch again at once.
   */
  readonly truncated: boolean
  /** When a partition held back by its rate limit may start again (fetch then), if any is. */
  readonly nextRateAt: Date | undefined
}

/** A queue's row as the producer reads it. */
export interface QueueRow {
  readonly name: string
  readonly pausedAt: Date | null
}

/**
 * The statements of River's tables for one schema. Every method fails with the driver's
 * `SqlError`; callers map it to their own errors.
 */
export interface Driver {
  /** The schema the statements name, or `undefined` for the connection's search path. */
  readonly schema: string | undefined

  // river_job

  /**
   * River's cancel. A job that is not finalized gets `metadata.cancel_attempted_at` (`now` as
   * RFC 3339 text, `metadata` treated as `{}` when not an object) and River's `cancel` control
   * notification; one that is not running is also `cancelled` at once (`finalized_at` = `now`).
   * `changed` is false for a finalized job, returned as it is. `undefined`: no such job.
   */
  readonly jobCancel: (params: {
    readonly id: bigint
    readonly now: Date
  }) => Effect.Effect<{ readonly job: JobRow; readonly changed: boolean } | undefined, SqlError>

  /**
   * Deletes a job unless it is running. Returns the row as it was and whether it was deleted;
   * `undefined`: no such job.
   */
  readonly jobDelete: (params: {
    readonly id: bigint
  }) => Effect.Effect<{ readonly job: JobRow; readonly deleted: boolean } | undefined, SqlError>

  /**
   * Deletes at most `max` finalized jobs (in id order) past their state's retention: finalized
   * before `cancelledBefore`, `completedBefore`, `discardedBefore` (`undefined` keeps that state's
   * jobs). Returns how many it deleted.
   */
  readonly jobDeleteFinalized: (params: {
    readonly cancelledBefore: Date | undefined
    readonly completedBefore: Date | undefined
    readonly discardedBefore: Date | undefined
    readonly max: number
  }) => Effect.Effect<number, SqlError>

  /**
   * River's fetch: locks at most `max` `available` jobs of `queue` due by `now` (by priority,
   * `scheduled_at`, id; rows locked by a concurrent fetch are skipped, never shared) and marks
   * them `running`: `attempt` + 1, `attempted_at` = `now`, `clientId` appended to `attempted_by`
   * (keeping River's last 100). A row already at attempt 32767 (the column's limit) is discarded
   * at `now` with an error saying so, and not returned. Returns the running rows.
   */
  readonly jobGetAvailable: (params: {
    readonly queue: string
    readonly max: number
    readonly now: Date
    readonly clientId: string
  }) => Effect.Effect<ReadonlyArray<JobRow>, SqlError>

  /**
   * The fetch of a queue with flow-control limits (`queues.<name>.globalLimit`, `partition`,
   * `rateLimit`), as {@link jobGetAvailable} does it (same bookkeeping, same order) but never
   * starting a job beyond a limit, even when several runners fetch at once: fetches of one
   * limited queue are serialized by an advisory lock, each counting the running jobs (and the rate
   * state, effect-river's own `effect_river_rate_limit`) after the previous one committed.
   * Partitions that are full are skipped, never blocking the others.
   */
  readonly jobGetAvailableLimited: (params: {
    readonly queue: string
    readonly max: number
    readonly now: Date
    readonly clientId: string
    readonly limits: FlowLimits
  }) => Effect.Effect<LimitedFetch, SqlError>

  /** Whether effect-river's own `effect_river_rate_limit` exists (line `effect-river` applied). */
  readonly rateLimitTableExists: Effect.Effect<boolean, SqlError>

  /** One job; `undefined` if there is none with this id. */
  readonly jobGetById: (params: { readonly id: bigint }) => Effect.Effect<JobRow | undefined, SqlError>

  /**
   * The ids, among `jobs` (rows as their attempt was fetched), of those still `running` whose
   * `metadata.cancel_attempted_at` is set and differs from the one the row carried at fetch: a
   * cancel requested during the attempt running (the runner's cancel check).
   */
  readonly jobGetCancelRequested: (params: {
    readonly jobs: ReadonlyArray<Pick<JobRow, "id" | "metadata">>
  }) => Effect.Effect<ReadonlyArray<bigint>, SqlError>

  /** The latest `scheduled_at` of the jobs whose metadata contains `metadataContains` (a JSON object); `undefined` if none. */
  readonly jobGetLatestScheduledAt: (params: {
    readonly metadataContains: Readonly<Record<string, unknown>>
  }) => Effect.Effect<Date | undefined, SqlError>

  /** At most `max` `running` jobs attempted before `stuckHorizon`, with ids above `afterId`, in id order. */
  readonly jobGetStuck: (params: {
    readonly stuckHorizon: Date
    readonly afterId: bigint
    readonly max: number
  }) => Effect.Effect<ReadonlyArray<JobRow>, SqlError>

  /** Inserts rows with every column given (River's `JobInsertFull`, for tests and tools); returns them in input order. */
  readonly jobInsertFull: (params: {
    readonly jobs: ReadonlyArray<JobInsertFullParams>
  }) => Effect.Effect<ReadonlyArray<JobRow>, SqlError>

  /**
   * Inserts jobs in one statement, `created_at` = `now`, and sends River's insert notification
   * for each of `notifyQueues` in the same statement (so, in a transaction, on commit). A unique
   * job whose key a row in one of its covered states already holds is not inserted: its result
   * is that row, `skipped`. `jobs` must not hold one unique key twice. Results are in input order.
   */
  readonly jobInsertMany: (params: {
    readonly jobs: ReadonlyArray<JobInsertParams>
    readonly now: Date
    readonly notifyQueues: ReadonlyArray<string>
  }) => Effect.Effect<ReadonlyArray<JobInsertResult>, SqlError>

  /**
   * {@link jobInsertMany} without the rows (River's `InsertManyFast`): returns how many jobs it
   * inserted. A unique job whose key a row in one of its covered states already holds is not
   * inserted and not counted. `jobs` must not hold one unique key twice.
   */
  readonly jobInsertManyFast: (params: {
    readonly jobs: ReadonlyArray<JobInsertParams>
    readonly now: Date
    readonly notifyQueues: ReadonlyArray<string>
  }) => Effect.Effect<number, SqlError>

  /** One page of jobs, filtered and ordered as asked. */
  readonly jobList: (params: JobListParams) => Effect.Effect<ReadonlyArray<JobListRow>, SqlError>

  /**
   * Marks a job `running` as a fetch would, whatever its state (the testing kit): `attempt` + 1,
   * `attempted_at` = `now`, `clientId` appended to `attempted_by` (River's last 100 kept),
   * `finalized_at` cleared. `undefined`: no such job.
   */
  readonly jobMarkRunning: (params: {
    readonly id: bigint
    readonly now: Date
    readonly clientId: string
  }) => Effect.Effect<JobRow | undefined, SqlError>

  /**
   * Merges `metadata` into a job's metadata while it is `running` attempt `attempt` (a
   * transactional resumable checkpoint). Returns whether it did.
   */
  readonly jobMergeMetadataIfRunning: (params: {
    readonly id: bigint
    readonly attempt: number
    readonly metadata: Readonly<Record<string, unknown>>
  }) => Effect.Effect<boolean, SqlError>

  /**
   * Applies the rescuer's decisions to jobs still `running` the attempt read as stuck and still
   * attempted before `stuckHorizon`: state, `finalized_at`, `scheduled_at`, the error appended,
   * `metadata["river:rescue_count"]` + 1 (a count that is not a whole number counts as 0);
   * `attempt` unchanged. Returns how many it changed.
   */
  readonly jobRescueMany: (params: {
    readonly jobs: ReadonlyArray<JobRescueParams>
    readonly stuckHorizon: Date
  }) => Effect.Effect<number, SqlError>

  /**
   * River's retry: a job in any state but `running` becomes `available` at `now`, `finalized_at`
   * cleared, `max_attempts` raised by one when no attempt is left, `cancel_attempted_at` removed,
   * and its queue notified; a job already available and due is left as it is (`changed` false),
   * as is a running one. `undefined`: no such job.
   */
  readonly jobRetry: (params: {
    readonly id: bigint
    readonly now: Date
  }) => Effect.Effect<{ readonly job: JobRow; readonly changed: boolean } | undefined, SqlError>

  /**
   * River's scheduler (`JobSchedule`): makes at most `max` `retryable`/`scheduled` jobs due by
   * `scheduleBefore` `available`, and notifies the queues of those due by `notifyBefore`. A due
   * unique job whose key another row holds in a state it covers, or that is not the first
   * (priority, `scheduled_at`, id) of its key among the due, is `discarded` at `now` with
   * `metadata.unique_key_conflict = "scheduler_discarded"`. Returns the counts and the queues that
   * got available jobs.
   */
  readonly jobSchedule: (params: {
    readonly now: Date
    readonly scheduleBefore: Date
    readonly notifyBefore: Date
    readonly max: number
  }) => Effect.Effect<{
    readonly scheduled: number
    readonly discarded: number
    readonly queues: ReadonlyArray<string>
  }, SqlError>

  /**
   * The lean completion of plain successes (the common case of
   * {@link jobSetStateIfRunningMany}, for which it gives the same result): each job still
   * `running` at the attempt that ran (`job.attempt`) becomes `completed` at its `finalizedAt`.
   * Returns the ids it completed and, with `wantRows`, those rows as written (the fetched row
   * with the new state, time and the row's current metadata); jobs that had left `running` are
   * in neither.
   */
  readonly jobCompleteManyIfRunning: (params: {
    readonly jobs: ReadonlyArray<JobCompleteParams>
    readonly wantRows: boolean
  }) => Effect.Effect<{ readonly ids: ReadonlyArray<bigint>; readonly rows: ReadonlyArray<JobRow> }, SqlError>

  /**
   * Flow control's slot hand-over: {@link jobCompleteManyIfRunning} for plain successes of one
   * queue with a global limit (and no partitions or rate limit), and in the same statement the
   * start of at most `max` available jobs of `queue` for `clientId` at `now` (as
   * {@link jobGetAvailable} starts them), never more than the completions that applied, and none
   * while the queue runs more than `limit` jobs. A started job takes the slot of a completed one
   * in the same commit: the queue's running count never grows, so no lock is needed. Returns the
   * completed ids (and rows when `wantRows`), and the jobs it started.
   */
  readonly jobCompleteManyAndStart: (params: {
    readonly jobs: ReadonlyArray<JobCompleteParams>
    readonly wantRows: boolean
    readonly queue: string
    readonly max: number
    readonly limit: number
    readonly now: Date
    readonly clientId: string
  }) => Effect.Effect<
    { readonly ids: ReadonlyArray<bigint>; readonly rows: ReadonlyArray<JobRow>; readonly started: ReadonlyArray<JobRow> },
    SqlError
  >

  /**
   * River's batched "set state if still running": each outcome applies while its row is still at
   * the attempt that ran (`job.attempt`); a row that left `running` meanwhile only gets its
   * metadata merged. A row whose cancel was requested during the attempt (see
   * {@link JobSetStateParams.job}) and whose outcome is not final (`available`, `retryable`,
   * `scheduled`) ends `cancelled` at `now` instead, keeping the outcome's error. Returns every job
   * of `jobs` that still exists, as it is afterwards, with whether its outcome applied.
   */
  readonly jobSetStateIfRunningMany: (params: {
    readonly jobs: ReadonlyArray<JobSetStateParams>
    readonly now: Date
  }) => Effect.Effect<ReadonlyArray<SetStateResult>, SqlError>

  /** {@link jobSetStateIfRunningMany} returning only the ids of the rows it changed (nobody needs the rows). */
  readonly jobSetStateIfRunningManyIds: (params: {
    readonly jobs: ReadonlyArray<JobSetStateParams>
    readonly now: Date
  }) => Effect.Effect<ReadonlyArray<bigint>, SqlError>

  // river_leader (on the database clock, River's protocol)

  /**
   * Claims leadership for `leaderId` for `ttl` if nobody holds it (an expired row is removed
   * first). Returns the new term (`elected_at` in integer microseconds), or `undefined`.
   */
  readonly leaderAttemptElect: (params: {
    readonly leaderId: string
    readonly ttl: Duration.Duration
  }) => Effect.Effect<bigint | undefined, SqlError>

  /** Extends the term `term` of `leaderId` by `ttl` while it has not expired. Returns whether it did. */
  readonly leaderAttemptReelect: (params: {
    readonly leaderId: string
    readonly term: bigint
    readonly ttl: Duration.Duration
  }) => Effect.Effect<boolean, SqlError>

  /** Deletes exactly the term `term` of `leaderId` and announces the resignation. Returns whether it did. */
  readonly leaderResign: (params: {
    readonly leaderId: string
    readonly term: bigint
  }) => Effect.Effect<boolean, SqlError>

  // river_queue

  /** Creates a queue's row or refreshes its `updated_at` (both `now`); returns the row. */
  readonly queueCreateOrSetUpdatedAt: (params: {
    readonly name: string
    readonly now: Date
  }) => Effect.Effect<QueueRow, SqlError>

  /** Deletes at most `max` queue rows not updated since `updatedBefore`; returns how many. */
  readonly queueDeleteExpired: (params: {
    readonly updatedBefore: Date
    readonly max: number
  }) => Effect.Effect<number, SqlError>

  /**
   * Every queue row (as River's `QueueList`), by name, at most `max`, with its times: what an
   * operator lists.
   */
  readonly queueListAll: (params: { readonly max: number }) => Effect.Effect<ReadonlyArray<QueueInfo>, SqlError>

  /** The rows of the named queues that exist. */
  readonly queueList: (params: { readonly names: ReadonlyArray<string> }) => Effect.Effect<ReadonlyArray<QueueRow>, SqlError>

  /**
   * Pauses a queue (`"*"`: every queue that has a row) at `now` and sends River's `pause`
   * control notification. A queue without a row gets one, paused (runners start it paused).
   * Idempotent.
   */
  readonly queuePause: (params: { readonly name: string; readonly now: Date }) => Effect.Effect<void, SqlError>

  /** Resumes a queue (`"*"`: every queue) at `now` and sends River's `resume` control notification. */
  readonly queueResume: (params: { readonly name: string; readonly now: Date }) => Effect.Effect<void, SqlError>

  // no table

  /** Sends River notifications on `topic` of this schema, one per payload. */
  readonly notifyMany: (params: {
    readonly topic: Topic
    readonly payloads: ReadonlyArray<string>
  }) => Effect.Effect<void, SqlError>

  /** The database's clock (`clock_timestamp()`), in epoch milliseconds. */
  readonly databaseTime: Effect.Effect<number, SqlError>

  /** The schema the statements use: the configured one, or the connection's `current_schema()`. */
  readonly schemaCurrent: Effect.Effect<string, SqlError>
}
