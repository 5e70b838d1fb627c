/**
 * SQL for the leader's maintenance services (River §8.2, §8.5, §8.6). Times are parameters
 * from the Clock.
 *
 * @internal
 */
import { jobColumns, metadataObject } from "./job.ts"

export const makeMaintenanceSql = (p: string) => ({
  /** Running jobs attempted before $1, after id $2, in id order, at most $3. */
  jobGetStuck: `SELECT ${jobColumns()} FROM ${p}river_job
WHERE state = 'running' AND attempted_at < $1::timestamptz AND id > $2::bigint
ORDER BY id LIMIT $3::int`,

  /**
   * Applies the rescuer's decisions to jobs still running the attempt it read as stuck: state,
   * finalized_at, scheduled_at, one error appended, `river:rescue_count` + 1; attempt unchanged.
   * Fenced like River v0.48+ (`attempted_at` still before the stuck horizon $9) and by the
   * attempt read ($8): a job that finished and was fetched again between the read and this
   * update — or that an overlapping leader rescued first — is left alone. A rescue count that is
   * not a whole number (or metadata that is not an object) counts as 0, as in River.
   * $1 ids, $2 states, $3 finalized_at (flag $4), $5 scheduled_at (flag $6), $7 errors,
   * $8 attempts read, $9 stuck horizon.
   */
  jobRescueMany: `WITH input AS (
  SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS state,
    unnest($3::timestamptz[]) AS finalized_at, unnest($4::boolean[]) AS finalize,
    unnest($5::timestamptz[]) AS scheduled_at, unnest($6::boolean[]) AS reschedule,
    unnest($7::jsonb[]) AS error, unnest($8::smallint[]) AS attempt
)
UPDATE ${p}river_job AS j SET
  state = input.state::${p}river_job_state,
  finalized_at = CASE WHEN input.finalize THEN input.finalized_at ELSE j.finalized_at END,
  scheduled_at = CASE WHEN input.reschedule THEN input.scheduled_at ELSE j.scheduled_at END,
  errors = array_append(j.errors, input.error),
  metadata = ${metadataObject("j.metadata")} || jsonb_build_object('river:rescue_count', coalesce(
    CASE WHEN jsonb_typeof(j.metadata -> 'river:rescue_count') = 'number'
      AND (j.metadata ->> 'river:rescue_count') ~ '^[0-9]{1,9}$'
      THEN (j.metadata ->> 'river:rescue_count')::int END, 0) + 1)
FROM input
WHERE j.id = input.id AND j.state = 'running' AND j.attempt = input.attempt AND j.attempted_at < $9::timestamptz
RETURNING j.id`,

  /**
   * Deletes up to $4 finalized jobs past their retention: cancelled before $1, completed before
   * $2, discarded before $3 (NULL keeps that state forever).
   */
  jobDeleteFinalized: `WITH doomed AS (
  SELECT id FROM ${p}river_job
  WHERE (state = 'cancelled' AND finalized_at < $1::timestamptz)
     OR (state = 'completed' AND finalized_at < $2::timestamptz)
     OR (state = 'discarded' AND finalized_at < $3::timestamptz)
  ORDER BY id LIMIT $4::int
), deleted AS (
  DELETE FROM ${p}river_job AS j USING doomed WHERE j.id = doomed.id RETURNING j.id
)
SELECT count(*)::int AS n FROM deleted`,

  /** The newest run of a periodic job: $1 the metadata fragment `{"river:periodic_job_id": id}`. */
  jobLastPeriodicRun: `SELECT max(scheduled_at) AS last FROM ${p}river_job WHERE metadata @> $1::jsonb`,

  /** Deletes up to $2 queue rows not refreshed since $1. */
  queueDeleteExpired: `WITH doomed AS (
  SELECT name FROM ${p}river_queue WHERE updated_at < $1::timestamptz ORDER BY name LIMIT $2::int
), deleted AS (
  DELETE FROM ${p}river_queue AS q USING doomed WHERE q.name = doomed.name RETURNING q.name
)
SELECT count(*)::int AS n FROM deleted`
})

export type MaintenanceSql = ReturnType<typeof makeMaintenanceSql>
