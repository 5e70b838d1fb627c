/**
 * River's notification protocol, in one place: the three topics, their channel names, the
 * payloads (built in JavaScript and, for statements that notify in the same transaction, as SQL
 * expressions producing the same JSON) and their parsers.
 *
 * - `<schema>.river_insert`: `{"queue": "<name>"}` when a queue got available jobs (inserts, the
 *   scheduler, a retry); `{"queue": "<name>", "slot_freed": true}` from effect-river when jobs of a
 *   queue with a global limit finished and their runner cannot take every freed slot itself
 *   (River reads the queue and ignores the other key).
 * - `<schema>.river_control`: `{"action": "cancel", "job_id": <id>, "queue": "<name>"}`, and
 *   `{"action": "pause" | "resume", "queue": "<name>" | "*"}`.
 * - `<schema>.river_leadership`: `{"leader_id": "<id>", "action": "resigned"}` (River also sends
 *   `request_resign`).
 *
 * Payloads are parsed as JSON (River's spacing varies between its statements), except job ids,
 * which are read from the text so that ids beyond 2^53 keep their precision.
 *
 * @internal
 */

/** River's notification topics. */
export type Topic = "river_insert" | "river_control" | "river_leadership"

/** The channel of a topic: `<schema>.<topic>`. */
export const channel = (schema: string, topic: Topic): string => `${schema}.${topic}`

/** The channel name as a SQL expression: `'<schema>.<topic>'`, or `current_schema() || '.<topic>'`. */
export const channelSql = (schema: string | undefined, topic: Topic): string =>
  schema === undefined ? `current_schema() || '.${topic}'` : `'${channel(schema, topic)}'`

/** River's insert-notification payload. */
export const insertPayload = (queue: string): string => `{"queue": ${JSON.stringify(queue)}}`

/**
 * The insert notification effect-river sends when jobs of a globally limited queue finished and
 * their runner cannot take every freed slot itself: a slot is free for every runner of the queue,
 * which fetches without waiting for its cooldown.
 */
export const slotFreedPayload = (queue: string): string => `{"queue": ${JSON.stringify(queue)}, "slot_freed": true}`

/** {@link insertPayload} as a SQL expression over a queue column (same bytes). */
export const insertPayloadSql = (column: string): string => `'{"queue": ' || to_json(${column})::text || '}'`

/** River's cancel payload (the bytes PostgreSQL's `json_build_object` writes, as River's statement sends them). */
export const cancelPayload = (jobId: bigint, queue: string): string =>
  `{"action" : "cancel", "job_id" : ${jobId}, "queue" : ${JSON.stringify(queue)}}`

/** {@link cancelPayload} as a SQL expression over id and queue columns. */
export const cancelPayloadSql = (idColumn: string, queueColumn: string): string =>
  `json_build_object('action', 'cancel', 'job_id', ${idColumn}, 'queue', ${queueColumn})::text`

/** River's pause / resume payload as a SQL expression over a queue name (`"*"` for every queue). */
export const queueControlPayloadSql = (action: "pause" | "resume", queue: string): string =>
  `json_build_object('action', '${action}', 'queue', ${queue})::text`

/** River's resignation payload as a SQL expression over a leader id column. */
export const resignedPayloadSql = (leaderIdColumn: string): string =>
  `json_build_object('leader_id', ${leaderIdColumn}, 'action', 'resigned')::text`

/** A `river_control` message. */
export type Control =
  | { readonly action: "cancel"; readonly jobId: bigint | undefined; readonly queue: string }
  | { readonly action: "pause" | "resume"; readonly queue: string }

const parseObject = (payload: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(payload)
    return typeof value === "object" && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** An insert notification's queue, and whether it says a slot was freed ({@link slotFreedPayload}); `undefined` if the payload is not one. */
export const parseInsert = (payload: string): { readonly queue: string; readonly slotFreed: boolean } | undefined => {
  const object = parseObject(payload)
  return typeof object?.queue === "string" ? { queue: object.queue, slotFreed: object.slot_freed === true } : undefined
}

/** A control notification, if the payload is one. */
export const parseControl = (payload: string): Control | undefined => {
  const parsed = parseObject(payload)
  if (parsed === undefined) return undefined
  const { action, queue } = parsed
  if (typeof queue !== "string") return undefined
  if (action === "pause" || action === "resume") return { action, queue }
  if (action === "cancel") {
    const match = /"job_id"\s*:\s*(\d+)/.exec(payload)
    return { action, queue, jobId: match === null ? undefined : BigInt(match[1]!) }
  }
  return undefined
}

/** The action of a leadership notification (`resigned`, `request_resign`), if the payload is one. */
export const parseLeadership = (payload: string): string | undefined => {
  const action = parseObject(payload)?.action
  return typeof action === "string" ? action : undefined
}
