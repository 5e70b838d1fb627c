/**
 * Options for inserting a job, River's rules for each, and how defaults combine.
 *
 * Precedence per field: the insert call's options, then the job kind's defaults, then the
 * client's defaults, then River's defaults (queue `default`, priority 1, max attempts 25).
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type { InvalidOptions } from "./Errors.ts"
import * as internal from "./internal/insertOptions.ts"
import type { JobState } from "./Job.ts"

/**
 * River's unique-job options: a job is not inserted when a job with the same unique key already
 * exists in one of the covered states; the insert returns that job instead, with
 * `skippedAsDuplicate: true`. The key is River's own (same string, same SHA-256), so a River Go
 * client sharing the database deduplicates against these jobs and they against its.
 *
 * The kind is always part of the key unless `excludeKind`; each other option adds a dimension.
 * With none of `byArgs`, `byPeriod`, `byQueue`, `byState` set the job is not unique;
 * `excludeKind` without `byArgs`, `byPeriod` or `byQueue` is an error, as in River.
 *
 * @since 0.1.0
 * @category models
 */
export interface UniqueOptions {
  /**
   * `true`: the encoded args are part of the key (all top-level keys). An array: only these
   * keys (River's `river:"unique"` fields); `a.b` selects key `b` inside object `a`, and `\.`
   * is a literal dot. Missing keys are left out of the key. Nested values are written as Go's
   * `json.Marshal` writes them: objects the args schema declares as struct fields in field order
   * (declare them in the Go struct's order), any other object with its keys sorted (a Go map).
   * @default false
   */
  readonly byArgs?: boolean | ReadonlyArray<string> | undefined
  /**
   * At most one job per period (at least 1 second): the job's `scheduledAt`, or now, rounded
   * down to a multiple of the period (counted from 0001-01-01T00:00:00Z, as Go does).
   */
  readonly byPeriod?: Duration.Input | undefined
  /**
   * The queue is part of the key: one such job per queue.
   * @default false
   */
  readonly byQueue?: boolean | undefined
  /**
   * The states in which an existing job blocks a new one. Must include `available`, `pending`,
   * `running` and `scheduled`; only `retryable` may be left out; `cancelled` and `discarded`
   * may be added.
   * @default ["available", "completed", "pending", "retryable", "running", "scheduled"]
   */
  readonly byState?: ReadonlyArray<JobState> | undefined
  /**
   * Leave the kind out of the key, so jobs of different kinds deduplicate against each other.
   * Needs `byArgs`, `byPeriod` or `byQueue` (as in River, which rejects it otherwise).
   * @default false
   */
  readonly excludeKind?: boolean | undefined
}

/**
 * Options for one insert.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertOptions {
  /**
   * Queue name: lowercase letters and digits, optionally separated by single `_`, `-` or `|`;
   * at most 64 characters.
   * @default "default"
   */
  readonly queue?: string | undefined
  /**
   * 1 (highest) to 4 (lowest).
   * @default 1
   */
  readonly priority?: number | undefined
  /**
   * When the job may run. Setting it (even to a past time) inserts the job `scheduled`; the
   * scheduler makes it `available` when due. No earlier than 4713 BC (-4713-11-24T00:00:00Z), the
   * start of PostgreSQL's `timestamptz` range.
   */
  readonly scheduledAt?: Date | DateTime.DateTime | undefined
  /**
   * Attempts before the job is discarded; an integer from 1 to 32767.
   * @default 25
   */
  readonly maxAttempts?: number | undefined
  /**
   * Tags, each 3–255 characters of `[A-Za-z0-9_-]` that start and end with a word character.
   * Insert-time tags replace the kind's default tags.
   * @default []
   */
  readonly tags?: ReadonlyArray<string> | undefined
  /**
   * A JSON object stored in the job's `metadata`. Keys starting with `river:` are River's
   * reserved keys (resumable checkpoints and the like); set them only deliberately. A `bigint` is
   * stored as a bare JSON number; a string or key holding `\u0000` or a lone UTF-16 surrogate is
   * rejected (`jsonb` cannot store it), naming its path (`metadata.a[0]`).
   * @default {}
   */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  /**
   * Insert the job `pending`: never fetched until something moves it to `available`.
   * @default false
   */
  readonly pending?: boolean | undefined
  /**
   * Unique job options (River's `UniqueOpts`). Like the other options, the first layer that
   * sets it (insert, kind, client) wins as a whole; `unique: {}` on an insert turns off a kind's
   * uniqueness for that insert.
   */
  readonly unique?: UniqueOptions | undefined
}

/**
 * River's default unique states (bitmask 245, `11110101`): a duplicate is accepted only once
 * the existing job is `cancelled` or `discarded` (or deleted).
 *
 * @since 0.1.0
 * @category constants
 */
export const UniqueStatesDefault: ReadonlyArray<JobState> = internal.UniqueStatesDefault

/**
 * River's queue name rule (the `|` is a literal character of the class).
 *
 * @since 0.1.0
 * @category constants
 */
export const QUEUE_PATTERN: RegExp = internal.QUEUE_PATTERN

/**
 * River's tag rule: at least three characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const TAG_PATTERN: RegExp = internal.TAG_PATTERN

/**
 * Checks a queue name; returns the problem or `undefined`.
 *
 * @since 0.1.0
 * @category guards
 */
export const queueProblem: (queue: unknown) => string | undefined = internal.queueProblem

/**
 * Validates one options object on its own (no defaults applied). Unknown keys are rejected too,
 * with a suggestion, since a misspelt option would otherwise be ignored silently.
 *
 * @since 0.1.0
 * @category guards
 */
export const validate: (options: InsertOptions, prefix?: string) => InvalidOptions | undefined = internal.validate
