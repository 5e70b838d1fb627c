/**
 * Which cancel request belongs to which attempt.
 *
 * River marks a cancel request with `metadata.cancel_attempted_at` (the canceller's time). A
 * request for a queued job cancels it at once; a request for a running job is for the attempt
 * running. River before 0.51 kept the key when a job was retried, so a job can be fetched with a
 * request that belongs to an earlier attempt; such a request must not cancel the new attempt.
 *
 * - The runner knows each attempt's row as fetched: a request already there then is stale, and
 *   only a different value (a request made since) counts. No clocks are compared.
 * - The rescuer sees only the stuck row: it compares the request's time with the attempt's
 *   start, to the millisecond (both come from application clocks, so clocks that disagree by
 *   more than the time between a fetch and a cancel can misplace a request; see
 *   docs/river-compatibility.md).
 *
 * @internal
 */

import { toJsonb } from "./json.ts"

const KEY = "cancel_attempted_at"

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null

/**
 * The cancel request a job carried when its attempt was fetched, as JSON text for the
 * statements to compare with (`''` for none).
 */
export const cancelRequestAtFetch = (metadata: unknown): string => {
  if (!isRecord(metadata) || !Object.hasOwn(metadata, KEY)) return ""
  try {
    return toJsonb(metadata[KEY])
  } catch {
    return "null" // a value JSON cannot hold (a cycle) cannot be in the row either
  }
}

/**
 * Whether a running row's cancel request was made during its current attempt, judged by time
 * (the rescuer's view). A request whose time cannot be read counts, as in River.
 */
export const cancelRequestedDuringAttempt = (metadata: unknown, attemptedAt: Date | null): boolean => {
  if (!isRecord(metadata) || !Object.hasOwn(metadata, KEY)) return false
  const value = metadata[KEY]
  const requestedAt = typeof value === "string" ? Date.parse(value) : Number.NaN
  if (Number.isNaN(requestedAt) || attemptedAt === null) return true
  return requestedAt >= Math.floor(attemptedAt.getTime())
}
