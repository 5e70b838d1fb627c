/**
 * Options for inserting a job, River's rules for each, and how defaults combine.
 *
 * Precedence per field: the insert call's options, then the job kind's defaults, then the
 * client's defaults, then River's defaults (queue `default`, priority 1, max attempts 25).
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidOptions } from "./Errors.ts"
import { show } from "./internal/show.ts"
import { fieldPath, findUnstorableString, stringifyJson } from "./internal/json.ts"
import { normalizePaths, type ResolvedUnique, splitPath } from "./internal/uniqueKey.ts"
import { bitmaskFromStates, type JobState, JobStates } from "./Job.ts"

export type { ResolvedUnique } from "./internal/uniqueKey.ts"

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
 * River's default unique states (bitmask 245, `11110101`): a duplicate is accepted only once
 * the existing job is `cancelled` or `discarded` (or deleted).
 *
 * @since 0.1.0
 * @category models
 */
export const UniqueStatesDefault: ReadonlyArray<JobState> = [
  "available",
  "completed",
  "pending",
  "retryable",
  "running",
  "scheduled"
]

/**
 * The first instant PostgreSQL's `timestamptz` holds (4713-11-24 00:00 UTC BC, Julian day 0).
 * Its last (294276 AD) lies beyond every valid `Date`.
 */
const MIN_TIMESTAMPTZ_MILLIS = Date.UTC(-4713, 10, 24)

const UNIQUE_REQUIRED_STATES: ReadonlyArray<JobState> = ["available", "pending", "running", "scheduled"]
const UNIQUE_FIELDS = ["byArgs", "byPeriod", "byQueue", "byState", "excludeKind"] as const
/** Go's `time.Duration` is an int64 of nanoseconds. */
const MAX_PERIOD_NANOS = 2n ** 63n - 1n

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
 * Insert options after defaults and validation, ready for SQL.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedInsert {
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  /** `undefined` = now (the Clock's time at insert). */
  readonly scheduledAt: Date | undefined
  readonly tags: ReadonlyArray<string>
  /** `metadata` serialized as JSON text. */
  readonly metadataJson: string
  readonly state: Extract<JobState, "available" | "scheduled" | "pending">
  /** Unique options ready for key building, or `undefined` when the job is not unique. */
  readonly unique: ResolvedUnique | undefined
}

/**
 * River's queue name rule (the `|` is a literal character of the class).
 *
 * @since 0.1.0
 * @category validation
 */
export const QUEUE_PATTERN = /^(?:[a-z0-9])+(?:[_|-]?[a-z0-9]+)*$/

/**
 * River's tag rule: at least three characters.
 *
 * @since 0.1.0
 * @category validation
 */
export const TAG_PATTERN = /^\w[\w-]+\w$/

const KNOWN_FIELDS = ["queue", "priority", "scheduledAt", "maxAttempts", "tags", "metadata", "pending", "unique"] as const

const closest = (name: string, fields: ReadonlyArray<string> = KNOWN_FIELDS): string | undefined => {
  const lower = name.toLowerCase()
  return fields.find((f) => f.toLowerCase() === lower || f.toLowerCase().startsWith(lower.slice(0, 4)))
}

const invalid = (field: string, rule: string, value?: unknown): InvalidOptions =>
  new InvalidOptions(
    value === undefined ? { field, rule } : { field, rule, value: show(value) }
  )

/**
 * Checks a queue name; returns the problem or `undefined`.
 *
 * @since 0.1.0
 * @category validation
 */
export const queueProblem = (queue: unknown): string | undefined => {
  if (typeof queue !== "string") return "must be a string"
  if (queue.length === 0 || queue.length > 64) return "must be 1 to 64 characters"
  if (!QUEUE_PATTERN.test(queue)) {
    return "must be lowercase letters and digits, optionally separated by single '_', '-' or '|'"
  }
  return undefined
}

/**
 * Validates one options object on its own (no defaults applied). Unknown keys are rejected too,
 * with a suggestion, since a misspelt option would otherwise be ignored silently.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (options: InsertOptions, prefix = ""): InvalidOptions | undefined => {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return invalid(prefix === "" ? "options" : prefix.slice(0, -1), "must be an object", options)
  }
  for (const key of Object.keys(options)) {
    if (!(KNOWN_FIELDS as ReadonlyArray<string>).includes(key)) {
      const hint = closest(key)
      return invalid(`${prefix}${key}`, `unknown option${hint === undefined ? "" : `; did you mean "${hint}"?`}`)
    }
  }
  const { maxAttempts, metadata, pending, priority, queue, scheduledAt, tags, unique } = options
  if (queue !== undefined) {
    const problem = queueProblem(queue)
    if (problem !== undefined) return invalid(`${prefix}queue`, problem, queue)
  }
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 1 && priority <= 4)) {
    return invalid(`${prefix}priority`, "must be an integer from 1 (highest) to 4 (lowest)", priority)
  }
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= 32767)) {
    return invalid(`${prefix}maxAttempts`, "must be an integer from 1 to 32767", maxAttempts)
  }
  if (scheduledAt !== undefined) {
    const millis = scheduledAt instanceof Date
      ? scheduledAt.getTime()
      : DateTime.isDateTime(scheduledAt)
      ? DateTime.toEpochMillis(scheduledAt)
      : Number.NaN
    if (Number.isNaN(millis)) return invalid(`${prefix}scheduledAt`, "must be a valid Date or DateTime", scheduledAt)
    if (millis < MIN_TIMESTAMPTZ_MILLIS) {
      return invalid(
        `${prefix}scheduledAt`,
        "must be no earlier than 4713 BC (-4713-11-24T00:00:00Z), the start of PostgreSQL's timestamptz range",
        scheduledAt
      )
    }
  }
  if (tags !== undefined) {
    if (!Array.isArray(tags)) return invalid(`${prefix}tags`, "must be an array of strings", tags)
    for (let i = 0; i < tags.length; i++) {
      const tag: unknown = tags[i]
      if (typeof tag !== "string" || tag.length > 255 || !TAG_PATTERN.test(tag)) {
        return invalid(
          `${prefix}tags[${i}]`,
          "must be 3 to 255 characters of letters, digits, '_' or '-', starting and ending with a letter, digit or '_'",
          tag
        )
      }
    }
  }
  if (metadata !== undefined) {
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      return invalid(`${prefix}metadata`, "must be a JSON object", metadata)
    }
    let text: string | undefined
    try {
      text = stringifyJson(metadata)
    } catch (cause) {
      return invalid(`${prefix}metadata`, `must be serializable as JSON (${String(cause)})`)
    }
    const unstorable = text === undefined ? undefined : findUnstorableString(metadata, text)
    if (unstorable !== undefined) return invalid(`${prefix}metadata${fieldPath(unstorable.path)}`, unstorable.problem)
  }
  if (pending !== undefined && typeof pending !== "boolean") {
    return invalid(`${prefix}pending`, "must be a boolean", pending)
  }
  if (unique !== undefined) return uniqueProblem(unique, `${prefix}unique.`)
  return undefined
}

/** The period in nanoseconds, if the input is a duration at all. */
const periodNanos = (input: unknown): bigint | undefined => {
  try {
    const duration = Duration.fromInput(input as Duration.Input)
    if (Option.isNone(duration) || !Duration.isFinite(duration.value)) return undefined
    return Duration.toNanosUnsafe(duration.value)
  } catch {
    return undefined
  }
}

const uniqueProblem = (unique: UniqueOptions, prefix: string): InvalidOptions | undefined => {
  if (typeof unique !== "object" || unique === null || Array.isArray(unique)) {
    return invalid(prefix.slice(0, -1), "must be an object", unique)
  }
  for (const key of Object.keys(unique)) {
    if (!(UNIQUE_FIELDS as ReadonlyArray<string>).includes(key)) {
      const hint = closest(key, UNIQUE_FIELDS)
      return invalid(`${prefix}${key}`, `unknown option${hint === undefined ? "" : `; did you mean "${hint}"?`}`)
    }
  }
  const { byArgs, byPeriod, byQueue, byState, excludeKind } = unique
  if (byArgs !== undefined && typeof byArgs !== "boolean") {
    if (!Array.isArray(byArgs) || byArgs.length === 0) {
      return invalid(`${prefix}byArgs`, "must be a boolean or a non-empty array of arg keys", byArgs)
    }
    const paths: Array<ReadonlyArray<string>> = []
    for (let i = 0; i < byArgs.length; i++) {
      const key: unknown = byArgs[i]
      if (typeof key !== "string" || key.length === 0) {
        return invalid(`${prefix}byArgs[${i}]`, "must be a non-empty string", key)
      }
      const path = splitPath(key)
      if (path.some((component) => component.length === 0)) {
        return invalid(`${prefix}byArgs[${i}]`, "must not have an empty path component ('a..b', a leading or trailing '.')", key)
      }
      paths.push(path)
    }
    for (let i = 0; i < paths.length; i++) {
      for (let j = 0; j < paths.length; j++) {
        const [a, b] = [paths[i]!, paths[j]!]
        if (i !== j && a.length < b.length && a.every((component, k) => component === b[k])) {
          return invalid(
            `${prefix}byArgs[${j}]`,
            `is inside ${show(byArgs[i])}, which is already selected as a whole; select one or the other`,
            byArgs[j]
          )
        }
      }
    }
  }
  if (byPeriod !== undefined) {
    const nanos = periodNanos(byPeriod)
    if (nanos === undefined || nanos < 1_000_000_000n || nanos > MAX_PERIOD_NANOS) {
      return invalid(`${prefix}byPeriod`, "must be a duration of at least 1 second (and at most ~292 years)", byPeriod)
    }
  }
  if (byQueue !== undefined && typeof byQueue !== "boolean") {
    return invalid(`${prefix}byQueue`, "must be a boolean", byQueue)
  }
  if (byState !== undefined) {
    if (!Array.isArray(byState)) return invalid(`${prefix}byState`, "must be an array of job states", byState)
    for (let i = 0; i < byState.length; i++) {
      const state: unknown = byState[i]
      if (!(JobStates as ReadonlyArray<unknown>).includes(state)) {
        return invalid(`${prefix}byState[${i}]`, `must be one of ${JobStates.join(", ")}`, state)
      }
    }
    const missing = UNIQUE_REQUIRED_STATES.filter((s) => !byState.includes(s))
    if (missing.length > 0) {
      return invalid(
        `${prefix}byState`,
        `must include available, pending, running and scheduled (only retryable may be left out); missing ${
          missing.join(", ")
        }`,
        byState
      )
    }
  }
  if (excludeKind !== undefined && typeof excludeKind !== "boolean") {
    return invalid(`${prefix}excludeKind`, "must be a boolean", excludeKind)
  }
  // River (since v0.48, insert_opts.go UniqueOpts.validate) rejects a key of nothing but states.
  if (excludeKind === true && (byArgs === undefined || byArgs === false) && byPeriod === undefined && byQueue !== true) {
    return invalid(`${prefix}excludeKind`, "requires byArgs, byPeriod or byQueue (River rejects it without them)", excludeKind)
  }
  return undefined
}

/**
 * Resolves validated unique options for key building; `undefined` when they make the job not
 * unique (none of `byArgs`, `byPeriod`, `byQueue`, `byState`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveUnique = (unique: UniqueOptions | undefined): ResolvedUnique | undefined => {
  if (unique === undefined) return undefined
  const byArgs = unique.byArgs === undefined || unique.byArgs === false
    ? false
    : unique.byArgs === true
    ? true
    : normalizePaths(unique.byArgs)
  const byPeriodNanos = unique.byPeriod === undefined ? undefined : periodNanos(unique.byPeriod)
  const byQueue = unique.byQueue === true
  if (byArgs === false && byPeriodNanos === undefined && !byQueue && unique.byState === undefined) return undefined
  return {
    byArgs,
    byPeriodNanos,
    byQueue,
    excludeKind: unique.excludeKind === true,
    statesBitmask: bitmaskFromStates(unique.byState ?? UniqueStatesDefault)
  }
}

/**
 * Merges option layers field by field, first defined value wins. Inputs are assumed validated.
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (...layers: ReadonlyArray<InsertOptions | undefined>): InsertOptions => {
  const out: { -readonly [K in keyof InsertOptions]: InsertOptions[K] } = {}
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]
    if (layer === undefined) continue
    for (const key of KNOWN_FIELDS) {
      const value = layer[key]
      if (value !== undefined) (out as Record<string, unknown>)[key] = value
    }
  }
  return out
}

/**
 * Applies River's defaults to merged options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (options: InsertOptions): ResolvedInsert => {
  const scheduledAt = options.scheduledAt === undefined
    ? undefined
    : options.scheduledAt instanceof Date
    ? options.scheduledAt
    : DateTime.toDate(options.scheduledAt)
  return {
    queue: options.queue ?? "default",
    priority: options.priority ?? 1,
    maxAttempts: options.maxAttempts ?? 25,
    scheduledAt,
    tags: options.tags ?? [],
    metadataJson: options.metadata === undefined ? "{}" : stringifyJson(options.metadata)!,
    state: options.pending === true ? "pending" : scheduledAt !== undefined ? "scheduled" : "available",
    unique: resolveUnique(options.unique)
  }
}

/**
 * Validates options as an Effect, failing with `InvalidOptions`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateEffect = (options: InsertOptions, prefix = ""): Effect.Effect<InsertOptions, InvalidOptions> => {
  const problem = validate(options, prefix)
  return problem === undefined ? Effect.succeed(options) : Effect.fail(problem)
}
