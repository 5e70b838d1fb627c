/**
 * `river_queue` for PostgreSQL (River §8.8): queue rows, pause and resume. Pause and resume send
 * River's control notifications in the same statement, so inside a caller's transaction they go
 * out on commit. The methods' contracts are in `../driver.ts`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import { channelSql, queueControlPayloadSql } from "../../notification.ts"
import type { Driver, QueueRow } from "../driver.ts"

/** The statement texts for one schema. `p` is the quoted schema prefix (`"s".` or empty). */
export const queueSql = (schema: string | undefined, p: string) => {
  const controlChannel = channelSql(schema, "river_control")
  const notify = (action: "pause" | "resume") =>
    `SELECT pg_notify(${controlChannel}, ${queueControlPayloadSql(action, "$1::text")})`
  return {
    /**
     * A producer's start: creates its queue's row or refreshes `updated_at`; returns whether the
     * queue is paused. $1 name, $2 now.
     */
    queueCreateOrSetUpdatedAt: `INSERT INTO ${p}river_queue (name, created_at, metadata, paused_at, updated_at)
VALUES ($1::text, $2::timestamptz, '{}', NULL, $2::timestamptz)
ON CONFLICT (name) DO UPDATE SET updated_at = EXCLUDED.updated_at
RETURNING name, paused_at`,

    /** Every queue row, by name. $1 max. */
    queueListAll: `SELECT name, paused_at, created_at, updated_at FROM ${p}river_queue ORDER BY name ASC LIMIT $1::int`,

    /** Pause states of the given queues. $1 names. */
    queueList: `SELECT name, paused_at FROM ${p}river_queue WHERE name = ANY($1::text[])`,

    /**
     * Pauses one queue, creating its row when no runner has started it yet (runners then start
     * paused). Idempotent. $1 name, $2 now.
     */
    queuePause: `WITH paused AS (
  INSERT INTO ${p}river_queue (name, created_at, metadata, paused_at, updated_at)
  VALUES ($1::text, $2::timestamptz, '{}', $2::timestamptz, $2::timestamptz)
  ON CONFLICT (name) DO UPDATE SET
    paused_at = coalesce(${p}river_queue.paused_at, EXCLUDED.paused_at),
    updated_at = CASE WHEN ${p}river_queue.paused_at IS NULL THEN EXCLUDED.updated_at ELSE ${p}river_queue.updated_at END
  RETURNING name
), notified AS (${notify("pause")})
SELECT (SELECT count(*) FROM paused)::int AS n, (SELECT count(*) FROM notified)::int AS notified`,

    /** Pauses every queue that has a row. $1 '*', $2 now. */
    queuePauseAll: `WITH paused AS (
  UPDATE ${p}river_queue SET paused_at = $2::timestamptz, updated_at = $2::timestamptz WHERE paused_at IS NULL RETURNING name
), notified AS (${notify("pause")})
SELECT (SELECT count(*) FROM paused)::int AS n, (SELECT count(*) FROM notified)::int AS notified`,

    /** Resumes one queue (a no-op if it is not paused). $1 name, $2 now. */
    queueResume: `WITH resumed AS (
  UPDATE ${p}river_queue SET paused_at = NULL, updated_at = $2::timestamptz
  WHERE name = $1::text AND paused_at IS NOT NULL RETURNING name
), notified AS (${notify("resume")})
SELECT (SELECT count(*) FROM resumed)::int AS n, (SELECT count(*) FROM notified)::int AS notified`,

    /** Resumes every queue. $1 '*', $2 now. */
    queueResumeAll: `WITH resumed AS (
  UPDATE ${p}river_queue SET paused_at = NULL, updated_at = $2::timestamptz WHERE paused_at IS NOT NULL RETURNING name
), notified AS (${notify("resume")})
SELECT (SELECT count(*) FROM resumed)::int AS n, (SELECT count(*) FROM notified)::int AS notified`,

    /** Deletes up to $2 queue rows not refreshed since $1. */
    queueDeleteExpired: `WITH doomed AS (
  SELECT name FROM ${p}river_queue WHERE updated_at < $1::timestamptz ORDER BY name LIMIT $2::int
), deleted AS (
  DELETE FROM ${p}river_queue AS q USING doomed WHERE q.name = doomed.name RETURNING q.name
)
SELECT count(*)::int AS n FROM deleted`
  }
}

type QueueMethods = Pick<
  Driver,
  "queueCreateOrSetUpdatedAt" | "queueDeleteExpired" | "queueList" | "queueListAll" | "queuePause" | "queueResume"
>

interface RawQueueRow {
  readonly name: string
  readonly paused_at: Date | null
}

const decodeQueueRow = (raw: RawQueueRow): QueueRow => ({ name: raw.name, pausedAt: raw.paused_at })

/** The `river_queue` methods of a driver over `sql`, for one schema. */
export const makeQueueMethods = (sql: SqlClient.SqlClient, schema: string | undefined, p: string): QueueMethods => {
  const q = queueSql(schema, p)
  return {
    queueCreateOrSetUpdatedAt: ({ name, now }) =>
      Effect.map(sql.unsafe<RawQueueRow>(q.queueCreateOrSetUpdatedAt, [name, now]), (rows) => decodeQueueRow(rows[0]!)),

    queueDeleteExpired: ({ max, updatedBefore }) =>
      Effect.map(sql.unsafe<{ readonly n: number }>(q.queueDeleteExpired, [updatedBefore, max]), (rows) => rows[0]?.n ?? 0),

    queueListAll: ({ max }) =>
      Effect.map(
        sql.unsafe<RawQueueRow & { readonly created_at: Date; readonly updated_at: Date }>(q.queueListAll, [max]),
        (rows) => rows.map((raw) => ({ ...decodeQueueRow(raw), createdAt: raw.created_at, updatedAt: raw.updated_at }))
      ),

    queueList: ({ names }) => Effect.map(sql.unsafe<RawQueueRow>(q.queueList, [names]), (rows) => rows.map(decodeQueueRow)),

    queuePause: ({ name, now }) => Effect.asVoid(sql.unsafe(name === "*" ? q.queuePauseAll : q.queuePause, [name, now])),

    queueResume: ({ name, now }) => Effect.asVoid(sql.unsafe(name === "*" ? q.queueResumeAll : q.queueResume, [name, now]))
  }
}
