/**
 * Job listing: filter validation, keyset pagination and the cursor format.
 *
 * Cursors carry the last row's id and its sort value in integer microseconds, so timestamps keep
 * PostgreSQL's full precision (a JS `Date` would cut them to milliseconds and skip rows).
 *
 * @internal
 */
import * as Result from "effect/Result"
import { InvalidOptions } from "../Errors.ts"
import type { ListParams, ListResult } from "../Client.ts"
import { JobStates } from "../Job.ts"
import { show } from "./show.ts"
import { fieldPath, findUnstorableString, stringifyJson } from "./json.ts"
import type { JobListParams, JobListRow } from "./driver/driver.ts"

const ORDER_COLUMNS = { id: "id", scheduledAt: "scheduled_at", finalizedAt: "finalized_at" } as const

interface CursorData {
  readonly o: keyof typeof ORDER_COLUMNS
  readonly id: string
  readonly v: string | null
}

const encodeCursor = (data: CursorData): string => Buffer.from(JSON.stringify(data)).toString("base64url")

const decodeCursor = (cursor: string): CursorData | undefined => {
  try {
    const data = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<CursorData>
    if (
      typeof data === "object" && data !== null && typeof data.o === "string" && data.o in ORDER_COLUMNS &&
      typeof data.id === "string" && /^-?\d{1,19}$/.test(data.id) && BigInt(data.id) >= -(2n ** 63n) &&
      BigInt(data.id) < 2n ** 63n &&
      (data.v === null || (typeof data.v === "string" && /^-?\d{1,18}$/.test(data.v)))
    ) return data as CursorData
  } catch {
    // fall through
  }
  return undefined
}

const fail = (field: string, rule: string, value?: unknown) =>
  Result.fail(
    new InvalidOptions(value === undefined ? { field, rule } : { field, rule, value: show(value) })
  )

const checkArray = <A>(
  field: string,
  value: ReadonlyArray<A> | undefined,
  ok: (a: unknown) => boolean,
  rule: string
): InvalidOptions | undefined => {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) return new InvalidOptions({ field, rule: "must be an array", value: show(value) })
  for (let i = 0; i < value.length; i++) {
    if (!ok(value[i])) return new InvalidOptions({ field: `${field}[${i}]`, rule, value: show(value[i]) })
  }
  return undefined
}

/**
 * Validates a listing's parameters and turns them into the driver's page request (one row more
 * than the page, to know whether another page follows), with the function that makes the page
 * and its cursor from the rows.
 */
export const listRequest = (params: ListParams) => {
  const orderBy = params.orderBy ?? "id"
  if (!(orderBy in ORDER_COLUMNS)) return fail("orderBy", "must be one of id, scheduledAt, finalizedAt", orderBy)
  const order = params.order ?? "asc"
  if (order !== "asc" && order !== "desc") return fail("order", "must be asc or desc", order)
  const limit = params.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    return fail("limit", "must be an integer from 1 to 10,000", limit)
  }
  const problem = checkArray("states", params.states, (s) => (JobStates as ReadonlyArray<unknown>).includes(s), `must be one of ${JobStates.join(", ")}`) ??
    checkArray("kinds", params.kinds, (s) => typeof s === "string", "must be a string") ??
    checkArray("queues", params.queues, (s) => typeof s === "string", "must be a string") ??
    checkArray("priorities", params.priorities, (p) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 4, "must be an integer from 1 to 4") ??
    checkArray(
      "ids",
      params.ids,
      (id) => typeof id === "bigint" && id >= -(2n ** 63n) && id < 2n ** 63n,
      "must be a 64-bit signed integer (a bigint from -2^63 to 2^63 - 1)"
    ) ??
    checkArray("tagsAny", params.tagsAny, (s) => typeof s === "string", "must be a string") ??
    checkArray("tagsAll", params.tagsAll, (s) => typeof s === "string", "must be a string")
  if (problem !== undefined) return Result.fail(problem)
  if (params.metadata !== undefined && (typeof params.metadata !== "object" || params.metadata === null || Array.isArray(params.metadata))) {
    return fail("metadata", "must be a JSON object", params.metadata)
  }
  let metadataText: string | undefined
  if (params.metadata !== undefined) {
    try {
      metadataText = stringifyJson(params.metadata)
    } catch (cause) {
      return fail("metadata", `must be serializable as JSON (${String(cause)})`)
    }
    const unstorable = metadataText === undefined ? undefined : findUnstorableString(params.metadata, metadataText)
    if (unstorable !== undefined) return fail(`metadata${fieldPath(unstorable.path)}`, unstorable.problem)
  }

  let after: JobListParams["after"]
  if (params.after !== undefined) {
    const cursor = typeof params.after === "string" ? decodeCursor(params.after) : undefined
    if (cursor === undefined) return fail("after", "must be a cursor returned by list", params.after)
    if (cursor.o !== orderBy) {
      return fail("after", `cursor was made for orderBy "${cursor.o}", not "${orderBy}"`)
    }
    after = { id: BigInt(cursor.id), orderValueMicros: cursor.v }
  }
  const request: JobListParams = {
    states: params.states,
    kinds: params.kinds,
    queues: params.queues,
    priorities: params.priorities,
    ids: params.ids,
    tagsAny: params.tagsAny,
    tagsAll: params.tagsAll,
    metadataContains: metadataText,
    orderBy,
    order,
    limit: limit + 1,
    after
  }

  const toResult = (rows: ReadonlyArray<JobListRow>): ListResult => {
    const hasMore = rows.length > limit
    const page = hasMore ? rows.slice(0, limit) : rows
    const last = page[page.length - 1]
    return {
      jobs: page.map((row) => row.job),
      next: hasMore && last !== undefined
        ? encodeCursor({
          o: orderBy,
          id: String(last.job.id),
          v: last.orderValueMicros === null ? null : String(last.orderValueMicros)
        })
        : undefined
    }
  }
  return Result.succeed({ request, toResult })
}
