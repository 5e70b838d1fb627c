/**
 * The job row as stored in River's `river_job` table, and the job state machine's states.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
/**
 * The eight values of River's `river_job_state` enum, in the enum's order (the order defines the
 * `unique_states` bitmask: bit `1 << index`).
 *
 * @since 0.1.0
 * @category models
 */
export const JobStates = [
  "available",
  "cancelled",
  "completed",
  "discarded",
  "pending",
  "retryable",
  "running",
  "scheduled"
] as const

/**
 * A job's state. `cancelled`, `completed` and `discarded` are final.
 *
 * @since 0.1.0
 * @category models
 */
export type JobState = (typeof JobStates)[number]

/**
 * Schema for {@link JobState}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobStateSchema = Schema.Literals(JobStates)

/**
 * The states that end a job's life: it is never run again unless retried by hand.
 *
 * @since 0.1.0
 * @category models
 */
export const FinalizedStates: ReadonlyArray<JobState> = ["cancelled", "completed", "discarded"]

/**
 * True for `cancelled`, `completed` and `discarded`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isFinalized = (state: JobState): boolean =>
  state === "cancelled" || state === "completed" || state === "discarded"

/**
 * One element of a job's `errors` array, appended per failed attempt (River's format).
 *
 * @since 0.1.0
 * @category models
 */
export interface AttemptError {
  /** When the failed attempt started (RFC 3339). */
  readonly at: string
  /** The attempt number that failed. */
  readonly attempt: number
  /** The error message. */
  readonly error: string
  /** Stack trace for defects, `""` otherwise. */
  readonly trace: string
}

/**
 * A `river_job` row. `args` is the stored (encoded) JSON; decode it with the job kind's schema.
 * Ids are `bigint`: River ids are 64-bit and must not lose precision.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobRow {
  readonly id: bigint
  readonly state: JobState
  readonly attempt: number
  readonly maxAttempts: number
  readonly attemptedAt: Date | null
  readonly attemptedBy: ReadonlyArray<string>
  readonly createdAt: Date
  readonly finalizedAt: Date | null
  readonly scheduledAt: Date
  readonly priority: number
  readonly args: unknown
  readonly errors: ReadonlyArray<AttemptError>
  readonly kind: string
  readonly metadata: Readonly<Record<string, unknown>>
  readonly queue: string
  readonly tags: ReadonlyArray<string>
  readonly uniqueKey: Uint8Array | null
  /** States covered by the job's uniqueness, decoded from the `unique_states` bitmask. */
  readonly uniqueStates: ReadonlyArray<JobState> | null
}

/**
 * Decodes a `bit(8)` text value (`"11110101"`) into states. Bit `7 − i` (from the left) is the
 * state with enum index `i`, as River's `river_job_state_in_bitmask` reads it.
 *
 * @since 0.1.0
 * @category operations
 */
export const statesFromBitmask = (bits: string): ReadonlyArray<JobState> =>
  JobStates.filter((_, i) => bits.charAt(7 - i) === "1")

/**
 * Encodes states into River's `bit(8)` text form.
 *
 * @since 0.1.0
 * @category operations
 */
export const bitmaskFromStates = (states: ReadonlyArray<JobState>): string => {
  const bits = ["0", "0", "0", "0", "0", "0", "0", "0"]
  for (const state of states) bits[7 - JobStates.indexOf(state)] = "1"
  return bits.join("")
}
