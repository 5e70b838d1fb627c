/**
 * Options for inserting a job, River's rules for each, and how defaults combine.
 *
 * Precedence per field: the insert call's options, then the job kind's defaults, then the
 * client's defaults, then River's defaults (queue `default`, priority 1, max attempts 25).
 *
 * @since 0.1.0
 */
import { DateTime, Effect } from "effect"
import { InvalidOptions } from "./Errors.ts"
import { show } from "./internal/identifiers.ts"
import type { JobState } from "./Job.ts"

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
   * scheduler makes it `available` when due.
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
   * reserved keys (resumable checkpoints and the like); set them only deliberately.
   * @default {}
   */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  /**
   * Insert the job `pending`: never fetched until something moves it to `available`.
   * @default false
   */
  readonly pending?: boolean | undefined
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

const KNOWN_FIELDS = ["queue", "priority", "scheduledAt", "maxAttempts", "tags", "metadata", "pending"] as const

const closest = (name: string): string | undefined => {
  const lower = name.toLowerCase()
  return KNOWN_FIELDS.find((f) => f.toLowerCase() === lower || f.toLowerCase().startsWith(lower.slice(0, 4)))
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
  const { maxAttempts, metadata, pending, priority, queue, scheduledAt, tags } = options
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
    const ok = scheduledAt instanceof Date ? !Number.isNaN(scheduledAt.getTime()) : DateTime.isDateTime(scheduledAt)
    if (!ok) return invalid(`${prefix}scheduledAt`, "must be a valid Date or DateTime", scheduledAt)
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
    try {
      JSON.stringify(metadata)
    } catch (cause) {
      return invalid(`${prefix}metadata`, `must be serializable as JSON (${String(cause)})`)
    }
  }
  if (pending !== undefined && typeof pending !== "boolean") {
    return invalid(`${prefix}pending`, "must be a boolean", pending)
  }
  return undefined
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
    metadataJson: options.metadata === undefined ? "{}" : JSON.stringify(options.metadata),
    state: options.pending === true ? "pending" : scheduledAt !== undefined ? "scheduled" : "available"
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
