/**
 * The implementation of the public `InsertOptions` module: River's rules for each insert option
 * (checked before any SQL, unknown keys rejected with a suggestion), and how option layers merge
 * and resolve into what the driver inserts.
 *
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import { InvalidOptions } from "../Errors.ts"
import type { InsertOptions, UniqueOptions } from "../InsertOptions.ts"
import { bitmaskFromStates, type JobState, JobStates } from "../Job.ts"
import { fieldPath, findUnstorableString, stringifyJson } from "./json.ts"
import { show } from "./show.ts"
import { normalizePaths, type ResolvedUnique, splitPath } from "./uniqueKey.ts"

/**
 * River's default unique states (bitmask 245, `11110101`): a duplicate is accepted only once
 * the existing job is `cancelled` or `discarded` (or deleted).
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
 * Insert options after defaults and validation, ready for SQL.
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
 */
export const QUEUE_PATTERN = /^(?:[a-z0-9])+(?:[_|-]?[a-z0-9]+)*$/

/**
 * River's tag rule: at least three characters.
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

