/**
 * Typed errors of effect-river. Every failure a caller can act on is a tagged error with a
 * readable `message`; none of them is thrown.
 *
 * Input errors (`InvalidArgs`, `InvalidOptions`) are raised before any SQL is sent, so a rejected
 * call never writes anything.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import type { SqlError } from "effect/sql/SqlError"

/**
 * Job arguments did not pass the job kind's `Schema`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgs extends Schema.TaggedError<InvalidArgs>()("InvalidArgs", {
  /** The job kind whose args were rejected. */
  kind: Schema.String,
  /** The schema's description of every issue, with the path of each offending field. */
  issues: Schema.String
}) {
  override get message(): string {
    return `invalid args for job kind "${this.kind}": ${this.issues}`
  }
}

/**
 * An option, name or identifier broke a rule. `field` names the option (for example
 * `priority`, `queue`, `tags[2]`, `schema`), `rule` states what it must satisfy.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  field: Schema.String,
  rule: Schema.String,
  /** A short rendering of the rejected value. */
  value: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `invalid ${this.field}: ${this.rule}${this.value === undefined ? "" : ` (got ${this.value})`}`
  }
}

/**
 * No job with this id exists (it may have been deleted by the cleaner).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.BigInt
}) {
  override get message(): string {
    return `job ${this.id} not found`
  }
}

/**
 * The operation is not allowed on a job in state `running` (delete, retry). Cancel it first.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobRunning extends Schema.TaggedError<JobRunning>()("JobRunning", {
  id: Schema.BigInt,
  operation: Schema.String
}) {
  override get message(): string {
    return `job ${this.id} is running: cannot ${this.operation} a running job`
  }
}

/**
 * A migration could not be planned or applied. Nothing was changed by the failing step: each
 * version runs in its own transaction, and planning errors are raised before any SQL.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationError extends Schema.TaggedError<MigrationError>()("MigrationError", {
  reason: Schema.Literals(["UnknownVersion", "DatabaseAhead", "Failed", "InvalidTarget"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `migration error (${this.reason}): ${this.detail}`
  }
}

/**
 * Cancels the job for good: state `cancelled`, no further attempts, the reason recorded in the
 * job's `errors` as `JobCancelError: <reason>`.
 *
 * @example
 * ```ts
 * return yield* JobCancel.of("customer deleted")
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class JobCancel extends Schema.TaggedError<JobCancel>()("JobCancel", {
  reason: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  /** A cancel with a reason and an optional underlying cause. */
  static of(reason: string, cause?: unknown): JobCancel {
    return new JobCancel(cause === undefined ? { reason } : { reason, cause })
  }
  override get message(): string {
    return `JobCancelError: ${this.reason}`
  }
}

/**
 * Runs the job again after `delay` without using an attempt: `attempt` goes back down by one,
 * `metadata.snoozes` goes up by one, no error is recorded. A delay up to 5 seconds makes the job
 * `available` with a future `scheduled_at`; a longer one makes it `scheduled`. A negative delay
 * is a job error (River silently runs it at once).
 *
 * @example
 * ```ts
 * return yield* JobSnooze.of("5 minutes")
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class JobSnooze extends Schema.TaggedError<JobSnooze>()("JobSnooze", {
  millis: Schema.Number
}) {
  /** A snooze for a duration (`"5 minutes"`, `Duration.seconds(30)`, or milliseconds). */
  static of(delay: Duration.Input): JobSnooze {
    return new JobSnooze({ millis: typeof delay === "number" ? delay : Duration.toMillis(Duration.fromInputUnsafe(delay)) })
  }
  override get message(): string {
    return `job snoozed for ${this.millis} ms`
  }
}

/**
 * An attempt ran past its time limit (the worker's `timeout`, else the runner's `jobTimeout`).
 * A retry policy receives it as the failure, so it can treat timeouts apart.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobTimeout extends Schema.TaggedError<JobTimeout>()("JobTimeout", {
  /** The time limit the attempt ran past. */
  after: Schema.Duration
}) {
  override get message(): string {
    return `job timed out after ${Duration.format(this.after)}`
  }
}

/**
 * A fetched job's kind has no worker in the runner that fetched it (River's message). A retry
 * policy receives it as the failure; the rescuer discards such jobs.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownJobKind extends Schema.TaggedError<UnknownJobKind>()("UnknownJobKind", {
  kind: Schema.String
}) {
  override get message(): string {
    return `job kind is not registered in the client's Workers bundle: ${this.kind}`
  }
}

/**
 * A job was interrupted by something other than the runner (its own code, say). A retry policy
 * receives it as the failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedInterrupt extends Schema.TaggedError<UnexpectedInterrupt>()("UnexpectedInterrupt", {}) {
  override get message(): string {
    return "job interrupted"
  }
}

/**
 * A step was used wrongly, or a checkpoint cannot be used. The message names the step.
 *
 * - `NotInJob`: called outside a worker.
 * - `NotInStep`: `setCursor`/`commitStep`/`commitCursor` outside a step (or `setCursor` in a
 *   step without a cursor).
 * - `NestedStep`: a step started inside another step.
 * - `DuplicateStep`: two steps with one name in one run.
 * - `StepNotFound`: the recorded step (or a step with a saved cursor) no longer exists in the
 *   worker.
 * - `CursorStepPending`: a cursor saved before any step completed belongs to a step not reached
 *   yet; it must be reached through `stepCursor` (not a plain step) before the attempt can
 *   succeed or write a transactional checkpoint (River 0.50).
 * - `InvalidCursor`: a stored cursor no longer decodes, or a cursor does not encode.
 * - `InvalidCheckpoint`: the stored checkpoint is not in River's format.
 * - `JobNotRunning`: a transactional checkpoint found the job no longer running (or running a
 *   later attempt, after a rescue).
 *
 * @since 0.1.0
 * @category errors
 */
export class ResumableError extends Schema.TaggedError<ResumableError>()("ResumableError", {
  reason: Schema.Literals([
    "NotInJob",
    "NotInStep",
    "NestedStep",
    "DuplicateStep",
    "StepNotFound",
    "InvalidCursor",
    "InvalidCheckpoint",
    "CursorStepPending",
    "JobNotRunning"
  ]),
  step: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return `resumable ${this.step === undefined ? "" : `step "${this.step}": `}${this.detail}`
  }
}

/**
 * `Worker.recordOutput` refused a value, before anything was stored:
 * - `NotInWorker`: called outside a worker's attempt;
 * - `NotSerializable`: the value has no JSON form (a function, `undefined`, a symbol, a cycle);
 * - `TooLarge`: its JSON is over River's limit of 32 MB.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOutput extends Schema.TaggedError<InvalidOutput>()("InvalidOutput", {
  reason: Schema.Literals(["NotInWorker", "NotSerializable", "TooLarge"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `job output: ${this.detail}`
  }
}

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
 * The database failed a statement. `retryable` is true for failures that may succeed when the
 * same statement is sent again (lost connection, deadlock, serialization failure, lock timeout).
 * When River's tables do not exist (`42P01`, migrations not applied) the message says to run
 * `effect-river migrate up` (see {@link isUndefinedRiverTable}).
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  operation: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Unknown
}) {
  override get message(): string {
    const hint = isUndefinedRiverTable(this.cause)
      ? "; River's tables are not in this database/schema yet: run `effect-river migrate up` " +
        "(with the same --database-url and --schema) or `Migrator.up` / `Migrator.layer` before starting clients and runners"
      : ""
    return `database error in ${this.operation}: ${describeCause(this.cause)}${hint}`
  }

  /** Wraps a driver `SqlError`, keeping its retryability. */
  static fromSqlError(operation: string) {
    return (error: SqlError): DatabaseError =>
      new DatabaseError({ operation, retryable: error.isRetryable, cause: error })
  }
}

/**
 * The most specific message in a cause chain: drivers wrap the server's message (and its SQLSTATE)
 * in generic "query failed" errors.
 *
 * @since 0.1.0
 * @category operations
 */
export const describeCause = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const c = current as { message?: unknown; code?: unknown; detail?: unknown; cause?: unknown }
    if (typeof c.message === "string" && c.message !== "") {
      const code = typeof c.code === "string" ? ` [${c.code}]` : ""
      const detail = typeof c.detail === "string" ? ` (${c.detail})` : ""
      messages.push(`${c.message}${code}${detail}`)
    }
    current = c.cause
  }
  if (messages.length === 0) return String(cause)
  const last = messages[messages.length - 1]!
  return messages.length === 1 || last === messages[0] ? last : `${last} (${messages[0]})`
}

/**
 * Whether a failure is PostgreSQL's `42P01 relation "…river_…" does not exist`: River's tables
 * have not been created (the migrations have not run on this database or schema).
 *
 * @since 0.1.0
 * @category operations
 */
export const isUndefinedRiverTable = (cause: unknown): boolean => {
  let current: unknown = cause
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const c = current as { message?: unknown; code?: unknown; cause?: unknown }
    if (c.code === "42P01" && typeof c.message === "string" && /river_/.test(c.message)) return true
    current = c.cause
  }
  return false
}
