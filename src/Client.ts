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
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import type { DatabaseError, InvalidArgs, InvalidOptions, JobNotFound, JobRunning } from "./Errors.ts"
import type * as InsertOptions from "./InsertOptions.ts"
import * as internal from "./internal/client.ts"
import * as internalTelemetry from "./internal/telemetry.ts"
import type { JobRow, JobState } from "./Job.ts"
import type * as JobKind from "./JobKind.ts"

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
   * gets one trailing notification at its end instead (River sends none). An insert that comes
   * at least a tenth of the window after this client's previous insert into the queue (the
   * first of a quiet period: a trickle, not a burst) notifies at once, inside the window or not.
   * @default "100 millis"
   */
  readonly insertNotifyCooldown?: Duration.Input | undefined
}

/**
 * Options of `client.waitFor`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitForOptions {
  /** How often the row is read (default 1 second; a positive duration). */
  readonly pollInterval?: Duration.Input | undefined
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
  /**
   * Inserts many jobs with one statement that returns only how many it inserted (River's
   * `InsertManyFast`): the bulk path, for batches whose rows the caller does not need (about
   * 1.3–1.5× `insertMany`'s rate on large batches, docs/benchmarks.md). Validation, encoding,
   * defaults, unique keys and the insert notification are `insertMany`'s; a unique job whose
   * key is already held (by a row in a covered state, or earlier in the batch) is skipped and
   * not counted.
   *
   * @example
   * ```ts
   * const inserted = yield* client.insertManyFast(
   *   emails.map((to) => SendEmail.of({ to, subject: "Welcome" }))
   * )
   * ```
   */
  readonly insertManyFast: (
    requests: ReadonlyArray<JobKind.InsertRequest>
  ) => Effect.Effect<number, InvalidArgs | InvalidOptions | DatabaseError>
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
   * Waits until the job is in a final state (`completed`, `cancelled` or `discarded`) and
   * returns its row: the outcome, the errors, and any output (`metadata.output`). Works from any
   * process: it reads the row every `pollInterval` (on the `Clock`), and a runner's own client is
   * woken at once when that runner writes the job's outcome. A retried job is waited for through
   * its retries. Fails with `JobNotFound` if the job does not exist (or is deleted meanwhile).
   * Bound it with `Effect.timeout` if needed.
   */
  readonly waitFor: (
    id: bigint,
    options?: WaitForOptions
  ) => Effect.Effect<JobRow, JobNotFound | InvalidOptions | DatabaseError>
  /**
   * Pauses a queue (or every queue with `"*"`): every runner stops fetching from it at once
   * (running jobs continue). The pause is stored in `river_queue`, so it survives restarts;
   * pausing a queue no runner has started yet makes runners start it paused. Idempotent.
   */
  readonly pauseQueue: (queue: string) => Effect.Effect<void, InvalidOptions | DatabaseError>
  /** Resumes a paused queue (or every queue with `"*"`); a no-op for a queue that is not paused. */
  readonly resumeQueue: (queue: string) => Effect.Effect<void, InvalidOptions | DatabaseError>
  /**
   * Lists the queues recorded in `river_queue` (every queue a runner has worked recently, or
   * that was paused), by name, at most `limit` (default 100, at most 10,000), with whether
   * each is paused.
   */
  readonly listQueues: (params?: { readonly limit?: number | undefined }) => Effect.Effect<
    ReadonlyArray<QueueInfo>,
    InvalidOptions | DatabaseError
  >
}>()("effect-river/Client") {}

/**
 * A queue as `river_queue` records it ({@link Client}'s `listQueues`).
 * @since 0.1.0
 * @category models
 */
export interface QueueInfo {
  readonly name: string
  /** When the queue was paused, or `null` when it is not. */
  readonly pausedAt: Date | null
  readonly createdAt: Date
  /** Last refreshed by a runner working the queue (or by a pause or resume). */
  readonly updatedAt: Date
}

/**
 * Filters, order and page of a job listing. Every filter is optional; filters combine with AND,
 * values inside one filter with OR.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListParams {
  /** Only these states (default: all eight). */
  readonly states?: ReadonlyArray<JobState> | undefined
  readonly kinds?: ReadonlyArray<string> | undefined
  readonly queues?: ReadonlyArray<string> | undefined
  readonly priorities?: ReadonlyArray<number> | undefined
  readonly ids?: ReadonlyArray<bigint> | undefined
  /** Jobs having at least one of these tags. */
  readonly tagsAny?: ReadonlyArray<string> | undefined
  /** Jobs having all of these tags. */
  readonly tagsAll?: ReadonlyArray<string> | undefined
  /** Jobs whose metadata contains this JSON object (`@>`). */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  /**
   * Sort key; ties are broken by id. `finalizedAt` lists only finalized jobs.
   * @default "id"
   */
  readonly orderBy?: "id" | "scheduledAt" | "finalizedAt" | undefined
  /** @default "asc" */
  readonly order?: "asc" | "desc" | undefined
  /**
   * Page size, 1 to 10,000.
   * @default 100
   */
  readonly limit?: number | undefined
  /** Continue after this cursor (`next` of the previous page). Needs the same `orderBy`. */
  readonly after?: string | undefined
}

/**
 * One page of jobs.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListResult {
  readonly jobs: ReadonlyArray<JobRow>
  /** Cursor for the next page; absent on the last page. */
  readonly next: string | undefined
}

/**
 * River's default client ID: the host name with dots as underscores, at most 60 characters
 * (`unknown_host` when empty), and the UTC time to the microsecond
 * (`host_2024_05_06T07_08_09_123456`); `nowMillis` is epoch milliseconds, its fraction the
 * microseconds. A client made without an `id` gets this at the Clock's time, moved on by a
 * microsecond when an earlier client of the same process already has it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultClientId: (hostname: string, nowMillis: number) => string = internal.defaultClientId

/**
 * Builds a client from a `SqlClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: ClientOptions
) => Effect.Effect<Client["Service"], InvalidOptions, SqlClient.SqlClient | Scope.Scope> = internal.make

/**
 * The client as a layer over a `SqlClient` (for example `PgClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientOptions = {}): Layer.Layer<Client, InvalidOptions, SqlClient.SqlClient> =>
  Layer.effect(Client, make(options))

/**
 * The metadata key under which an insert made inside a traced span (a tracer other than
 * Effect's native one installed, e.g. through `@effect/opentelemetry`) records that span's W3C
 * trace context (`00-<trace id>-<span id>-<flags>`). The attempt span of the worker that runs
 * the job links to it, in whatever process it runs. A `traceparent` the caller put in the
 * metadata is kept. River ignores the key.
 *
 * @since 0.1.0
 * @category constants
 */
export const TraceparentMetadataKey: "traceparent" = internalTelemetry.TraceparentMetadataKey
