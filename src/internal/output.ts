/**
 * Job output as River records it (`river.RecordOutput`): a JSON value stored under the job's
 * `metadata.output` when the attempt's outcome is written, whatever the outcome; the last value
 * recorded in an attempt wins; at most 32 MB of JSON.
 *
 * The slot is the attempt's `ResumableJob` service's `output` (one per-attempt service); the
 * executor merges what it holds into the completion's metadata.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidOutput } from "../Errors.ts"
import { parseJson, stringifyJson } from "./json.ts"
import { ResumableJob } from "./resumable.ts"

/** River's metadata key for output (`rivertype.MetadataKeyOutput`). */
export const OutputMetadataKey = "output" as const

/** River's limit: 32 MB of JSON. */
export const MAX_OUTPUT_BYTES = 32 * 1024 * 1024

/** What an attempt recorded. */
export type OutputSlot = ResumableJob["Service"]["output"]

const utf8Length = (text: string): number =>
  // A UTF-16 unit is at most 3 UTF-8 bytes: only long texts need counting.
  text.length * 3 <= MAX_OUTPUT_BYTES ? text.length : new TextEncoder().encode(text).length

/** Records `value` as the attempt's output (the public `Worker.recordOutput`). */
export const recordOutput = (value: unknown): Effect.Effect<void, InvalidOutput> =>
  Effect.flatMap(Effect.serviceOption(ResumableJob), (job) => {
    if (Option.isNone(job)) {
      return Effect.fail(
        new InvalidOutput({ reason: "NotInWorker", detail: "recordOutput must be called within a worker's attempt" })
      )
    }
    let text: string | undefined
    try {
      text = stringifyJson(value)
    } catch (error) {
      return Effect.fail(
        new InvalidOutput({ reason: "NotSerializable", detail: `the value is not JSON-serializable (${String(error)})` })
      )
    }
    if (text === undefined) {
      return Effect.fail(
        new InvalidOutput({ reason: "NotSerializable", detail: `the value is not JSON-serializable (${typeof value})` })
      )
    }
    const bytes = utf8Length(text)
    if (bytes > MAX_OUTPUT_BYTES) {
      return Effect.fail(
        new InvalidOutput({ reason: "TooLarge", detail: `output is too large: ${bytes} bytes (max 32 MB)` })
      )
    }
    const slot = job.value.output
    slot.recorded = true
    // Stored as its JSON reads back (dates as strings, toJSON applied), as River stores the bytes.
    slot.value = parseJson(text)
    return Effect.void
  })
