/**
 * The SQL the raw ceilings send, owned by the benchmarks so that they do not depend on where the
 * runtime keeps its statements (issue 14 moves them).
 *
 * - River's statements, as effect-river sends them for the default schema (the search path)
 *   (copied from the runtime at 32279ee; River's sqlc queries with the runtime's guards):
 *   `jobInsertMany`, `jobGetAvailable`, `jobSetStateIfRunningMany`, `jobMergeMetadataIfRunning`.
 *   If the runtime changes one of these, copy it again here so the ceiling keeps measuring
 *   what the runtime sends.
 * - The minimal statements of issue 16's ceiling: the least a queue on River's table must do.
 */

/** A raw row as the driver returns it for River's column list (`args`, `metadata` as text). */
export interface RawJobRow {
  readonly id: bigint
  readonly state: string
  readonly attempt: number
  readonly max_attempts: number
  readonly attempted_at: Date | null
  readonly attempted_by: ReadonlyArray<string> | null
  readonly created_at: Date
  readonly finalized_at: Date | null
  readonly scheduled_at: Date
  readonly priority: number
  readonly args: string
  readonly errors: ReadonlyArray<unknown> | null
  readonly kind: string
  readonly metadata: string
  readonly queue: string
  readonly tags: ReadonlyArray<string>
  readonly unique_key: Uint8Array | null
  readonly unique_states: string | null
}

/**
 * River's multi-row insert with the insert notification in the same statement.
 * $1 args jsonb[], $2 created_at, $3 kind text[], $4 max_attempts smallint[], $5 metadata jsonb[],
 * $6 priority smallint[], $7 queue text[], $8 scheduled_at timestamptz[], $9 state text[],
 * $10 tags (comma-joined) text[], $11 notification payloads text[]. Returns the full rows.
 */
export const jobInsertMany = `WITH inserted AS (
  INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
  SELECT unnest($1::jsonb[]), $2::timestamptz, unnest($3::text[]), unnest($4::smallint[]), unnest($5::jsonb[]),
    unnest($6::smallint[]), unnest($7::text[]), unnest($8::timestamptz[]), unnest($9::text[])::river_job_state,
    string_to_array(unnest($10::text[]), ',')::varchar(255)[]
  RETURNING id, state, attempt, max_attempts, attempted_at, attempted_by, created_at, finalized_at, scheduled_at, priority, errors, kind, queue, tags, unique_key, args::text AS args, metadata::text AS metadata, unique_states::text AS unique_states
), notified AS (
  SELECT count(pg_notify(current_schema() || '.river_insert', payload)) AS n FROM unnest($11::text[]) AS payload
)
SELECT inserted.*, (SELECT n FROM notified) AS notified FROM inserted`

/**
 * River's locking fetch: $1 queue, $2 limit, $3 now, $4 client id. Marks the batch `running` and
 * returns the full rows.
 */
export const jobGetAvailable = `WITH locked AS (
  SELECT id FROM river_job
  WHERE state = 'available' AND queue = $1::text AND scheduled_at <= $3::timestamptz
  ORDER BY priority ASC, scheduled_at ASC, id ASC
  LIMIT $2::int
  FOR UPDATE SKIP LOCKED
), updated AS (
  UPDATE river_job AS j
  SET state = CASE WHEN j.attempt < 32767 THEN 'running'::river_job_state ELSE 'discarded'::river_job_state END,
    attempt = CASE WHEN j.attempt < 32767 THEN j.attempt + 1 ELSE j.attempt END,
    attempted_at = CASE WHEN j.attempt < 32767 THEN $3::timestamptz ELSE j.attempted_at END,
    attempted_by = CASE WHEN j.attempt < 32767 THEN array_append(
    CASE WHEN coalesce(array_length(j.attempted_by, 1), 0) >= 100
      THEN j.attempted_by[array_length(j.attempted_by, 1) - 98:]
      ELSE j.attempted_by END,
    $4::text) ELSE j.attempted_by END,
    finalized_at = CASE WHEN j.attempt < 32767 THEN j.finalized_at ELSE $3::timestamptz END,
    errors = CASE WHEN j.attempt < 32767 THEN j.errors ELSE array_append(j.errors, jsonb_build_object(
      'at', $3::timestamptz, 'attempt', j.attempt, 'trace', '',
      'error', 'effect-river: attempt 32767 is the most the attempt column (a smallint) can count; the job cannot be fetched again and was discarded')) END
  FROM locked WHERE j.id = locked.id
  RETURNING j.id, j.state, j.attempt, j.max_attempts, j.attempted_at, j.attempted_by, j.created_at, j.finalized_at, j.scheduled_at, j.priority, j.errors, j.kind, j.queue, j.tags, j.unique_key, j.args::text AS args, j.metadata::text AS metadata, j.unique_states::text AS unique_states
)
SELECT * FROM updated WHERE state = 'running'`

/**
 * River's batched completion ("set state if still running"), parallel arrays: $1 id, $2 state,
 * $3/$4 attempt flag/value, $5/$6 errors flag/element, $7/$8 finalized_at flag/value, $9/$10
 * metadata flag/update, $11/$12 scheduled_at flag/value, $13 now, $14 the attempt each outcome
 * belongs to, $15 the cancel request present at fetch ('' for none). Returns the rows.
 */
export const jobSetStateIfRunningMany = `WITH job_input AS (
  SELECT unnest($1::bigint[]) AS id, unnest($2::text[]) AS state,
    unnest($3::boolean[]) AS attempt_do_update, unnest($4::smallint[]) AS attempt,
    unnest($5::boolean[]) AS errors_do_update, unnest($6::jsonb[]) AS error,
    unnest($7::boolean[]) AS finalized_at_do_update, unnest($8::timestamptz[]) AS finalized_at,
    unnest($9::boolean[]) AS metadata_do_merge, unnest($10::jsonb[]) AS metadata_updates,
    unnest($11::boolean[]) AS scheduled_at_do_update, unnest($12::timestamptz[]) AS scheduled_at,
    unnest($14::smallint[]) AS ran_attempt, nullif(unnest($15::text[]), '')::jsonb AS stale_cancel
), job_to_update AS (
  SELECT ji.*, j.state = 'running' AS is_running,
    (ji.state IN ('available', 'retryable', 'scheduled') AND j.metadata ? 'cancel_attempted_at'
      AND (j.metadata -> 'cancel_attempted_at') IS DISTINCT FROM ji.stale_cancel) AS should_cancel
  FROM job_input ji JOIN river_job j ON j.id = ji.id
  WHERE j.attempt = ji.ran_attempt AND (j.state = 'running' OR ji.metadata_do_merge)
  ORDER BY j.id
  FOR UPDATE OF j
), updated AS (
  UPDATE river_job AS j SET
    state = CASE WHEN NOT u.is_running THEN j.state
      WHEN u.should_cancel THEN 'cancelled'::river_job_state
      ELSE u.state::river_job_state END,
    finalized_at = CASE WHEN NOT u.is_running THEN j.finalized_at
      WHEN u.should_cancel THEN $13::timestamptz
      WHEN u.finalized_at_do_update THEN u.finalized_at
      ELSE j.finalized_at END,
    attempt = CASE WHEN u.is_running AND NOT u.should_cancel AND u.attempt_do_update THEN u.attempt ELSE j.attempt END,
    scheduled_at = CASE WHEN u.is_running AND NOT u.should_cancel AND u.scheduled_at_do_update
      THEN u.scheduled_at ELSE j.scheduled_at END,
    errors = CASE WHEN u.is_running AND u.errors_do_update THEN array_append(j.errors, u.error) ELSE j.errors END,
    metadata = CASE WHEN u.metadata_do_merge THEN (CASE WHEN jsonb_typeof(j.metadata) = 'object' THEN j.metadata ELSE '{}'::jsonb END) || u.metadata_updates ELSE j.metadata END
  FROM job_to_update u WHERE j.id = u.id
  RETURNING j.id, j.state, j.attempt, j.max_attempts, j.attempted_at, j.attempted_by, j.created_at, j.finalized_at, j.scheduled_at, j.priority, j.errors, j.kind, j.queue, j.tags, j.unique_key, j.args::text AS args, j.metadata::text AS metadata, j.unique_states::text AS unique_states
)
SELECT * FROM updated
UNION ALL
SELECT id, state, attempt, max_attempts, attempted_at, attempted_by, created_at, finalized_at, scheduled_at, priority, errors, kind, queue, tags, unique_key, args::text AS args, metadata::text AS metadata, unique_states::text AS unique_states FROM river_job
WHERE id = ANY($1::bigint[]) AND id NOT IN (SELECT id FROM updated)`

/** A resumable checkpoint's statement: $1 id, $2 JSON patch, $3 attempt. */
export const jobMergeMetadataIfRunning = `UPDATE river_job SET metadata = (CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END) || $2::jsonb
WHERE id = $1 AND state = 'running' AND attempt = $3 RETURNING id`

/**
 * The minimal fetch of issue 16's ceiling: River's locking fetch (`LIMIT $2 … FOR UPDATE SKIP
 * LOCKED`, marks the batch `running`, counts the attempt, appends the client id) without the
 * runtime's attempt-overflow guard, returning only what the executor needs to run a job: id,
 * kind, args, attempt, max_attempts, attempted_at, metadata (a retry's backoff would also need
 * the number of recorded errors; a failure path could read it then).
 * $1 queue, $2 limit, $3 now, $4 client id.
 */
export const minimalFetch = `WITH locked AS (
  SELECT id FROM river_job
  WHERE state = 'available' AND queue = $1::text AND scheduled_at <= $3::timestamptz
  ORDER BY priority ASC, scheduled_at ASC, id ASC
  LIMIT $2::int
  FOR UPDATE SKIP LOCKED
)
UPDATE river_job AS j
SET state = 'running', attempt = j.attempt + 1, attempted_at = $3::timestamptz,
  attempted_by = array_append(j.attempted_by, $4::text)
FROM locked WHERE j.id = locked.id
RETURNING j.id, j.kind, j.args::text AS args, j.attempt, j.max_attempts, j.attempted_at, j.metadata::text AS metadata`

/** What {@link minimalFetch} returns. */
export interface MinimalRow {
  readonly id: bigint
  readonly kind: string
  readonly args: string
  readonly attempt: number
  readonly max_attempts: number
  readonly attempted_at: Date
  readonly metadata: string
}

/** The minimal completion of issue 16's ceiling: $1 ids, $2 now; nothing returned. */
export const minimalComplete = `UPDATE river_job SET state = 'completed', finalized_at = $2::timestamptz WHERE id = ANY($1::bigint[])`

/**
 * The bare multi-row insert of the insert ceiling: River's columns from parallel arrays, no
 * notification, nothing returned. $1 args jsonb[], $2 created_at, $3 kind, $4 queue,
 * $5 max_attempts (one value for the batch).
 */
export const minimalInsert = `INSERT INTO river_job (args, created_at, kind, max_attempts, queue, scheduled_at, state)
SELECT unnest($1::jsonb[]), $2::timestamptz, $3::text, $5::smallint, $4::text, $2::timestamptz, 'available'`
