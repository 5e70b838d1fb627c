/**
 * SQL for `river_queue` (River §8.8): queue rows, pause and resume. Pause and resume send
 * River's control notifications in the same statement (`{"action": "pause"|"resume",
 * "queue": <name or "*">}`), so inside a caller's transaction they go out on commit.
 *
 * @internal
 */
import { channelSql } from "./job.ts"

export const makeQueueSql = (schema: string | undefined, p: string) => {
  const controlChannel = channelSql(schema, "river_control")
  const notify = (action: "pause" | "resume") =>
    `SELECT pg_notify(${controlChannel}, json_build_object('action', '${action}', 'queue', $1::text)::text)`
  return {
    /**
     * A producer's start: creates its queue's row or refreshes `updated_at`; returns whether the
     * queue is paused. $1 name, $2 now.
     */
    queueCreateOrSetUpdatedAt: `INSERT INTO ${p}river_queue (name, created_at, metadata, paused_at, updated_at)
VALUES ($1::text, $2::timestamptz, '{}', NULL, $2::timestamptz)
ON CONFLICT (name) DO UPDATE SET updated_at = EXCLUDED.updated_at
RETURNING name, paused_at`,

    /** Pause states of the given queues. $1 names. */
    queuePausedStates: `SELECT name, paused_at FROM ${p}river_queue WHERE name = ANY($1::text[])`,

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
SELECT (SELECT count(*) FROM resumed)::int AS n, (SELECT count(*) FROM notified)::int AS notified`
  }
}

export type QueueSql = ReturnType<typeof makeQueueSql>
