/**
 * `river_job` for PostgreSQL: each statement's text (built once per schema; identifiers are
 * validated before they get here, every value is a bound parameter), how its parameters are
 * packed and how its rows are decoded. Timestamps always come from the caller (the Clock), never
 * from `now()`. The methods' contracts are in `../driver.ts`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import type { AttemptError, JobRow, JobState } from "../../../Job.ts"
import { statesFromBitmask } from "../../../Job.ts"
import { cancelRequestAtFetch } from "../../cancelRequest.ts"
import { parseJson, stringifyJson, toJsonb } from "../../json.ts"
import { cancelPayloadSql, channelSql, insertPayload, insertPayloadSql } from "../../notification.ts"
import type { Driver, JobCompleteParams, JobInsertParams, JobListParams, JobSetStateParams } from "../driver.ts"

/**
 * The row columns, optionally qualified by a table alias. `unique_states` is sent as text, and so
 * are `args` and `metadata`: the driver would parse their `jsonb` with `JSON.parse`, which rounds
 * integers beyond 2^53 (a Go `int64`); {@link decodeJobRow} parses them losslessly.
 */
export const jobColumns = (alias = ""): string => {
  const a = alias === "" ? "" : `${alias}.`
  return [
    "id",
    "state",
    "attempt",
    "max_attempts",
    "attempted_at",
    "attempted_by",
    "created_at",
    "finalized_at",
    "scheduled_at",
    "priority",
    "errors",
    "kind",
    "queue",
    "tags",
    "unique_key"
  ].map((c) => `${a}${c}`).join(", ") +
    `, ${a}args::text AS args, ${a}metadata::text AS metadata, ${a}unique_states::text AS unique_states`
}

/** A raw row as the driver returns it for {@link jobColumns}. */
export interface RawJobRow {
  readonly id: bigint
  readonly state: JobState
  readonly attempt: number
  readonly max_attempts: number
  readonly attempted_at: Date | null
  readonly attempted_by: ReadonlyArray<string> | null
  readonly created_at: Date
  readonly finalized_at: Date | null
  readonly scheduled_at: Date
  readonly priority: number
  /** `jsonb` as text (see {@link jobColumns}). */
  readonly args: string
  readonly errors: ReadonlyArray<AttemptError> | null
  readonly kind: string
  /** `jsonb` as text (see {@link jobColumns}). */
  readonly metadata: string
  readonly queue: string
  readonly tags: ReadonlyArray<string>
  readonly unique_key: Uint8Array | null
  readonly unique_states: string | null
}

const EMPTY: ReadonlyArray<never> = []

/**
 * A job's metadata as an object. The column is `NOT NULL jsonb` but holds whatever another writer
 * put there (`null`, a scalar, an array); every part of this runtime reads that as `{}` (and the
 * statements that write metadata treat it so: {@link metadataObject}), so one malformed row never
 * breaks a snooze, a rescue, a cancel or a checkpoint.
 */
export const metadataOf = (value: unknown): Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {}

/** A raw row as a `JobRow`: `args` and `metadata` parsed losslessly (see `parseJson`). */
export const decodeJobRow = (raw: RawJobRow): JobRow => ({
  id: raw.id,
  state: raw.state,
  attempt: raw.attempt,
  maxAttempts: raw.max_attempts,
  attemptedAt: raw.attempted_at,
  attemptedBy: raw.attempted_by ?? EMPTY,
  createdAt: raw.created_at,
  finalizedAt: raw.finalized_at,
  scheduledAt: raw.scheduled_at,
  priority: raw.priority,
  args: parseJson(raw.args),
  errors: raw.errors ?? EMPTY,
  kind: raw.kind,
  metadata: metadataOf(parseJson(raw.metadata)),
  queue: raw.queue,
  tags: raw.tags,
  uniqueKey: raw.unique_key,
  uniqueStates: raw.unique_states === null ? null : statesFromBitmask(raw.unique_states)
})

/** `attempted_by` with a client id appended, keeping River's last 100 entries (of table alias `j`). */
const appendAttemptedBy = (clientIdParam: string): string =>
  `array_append(
    CASE WHEN coalesce(array_length(j.attempted_by, 1), 0) >= 100
      THEN j.attempted_by[array_length(j.attempted_by, 1) - 98:]
      ELSE j.attempted_by END,
    ${clientIdParam}::text)`

/**
 * `metadata` as a JSON object: the column is `NOT NULL jsonb` but accepts `null`, scalars and
 * arrays from other writers; `||` would turn those into an array. Anything but an object is
 * treated as `{}`.
 */
export const metadataObject = (column: string): string =>
  `(CASE WHEN jsonb_typeof(${column}) = 'object' THEN ${column} ELSE '{}'::jsonb END)`

/** The largest `attempt` (a smallint) can hold. */
const MAX_ATTEMPT = 32767

const setStateIfRunningMany = (p: string, returning: "rows" | "ids"): string =>
  `WITH job_input AS (
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
  FROM job_input ji JOIN ${p}river_job j ON j.id = ji.id
  WHERE j.attempt = ji.ran_attempt AND (j.state = 'running' OR ji.metadata_do_merge)
  ORDER BY j.id
  FOR UPDATE OF j
), updated AS (
  UPDATE ${p}river_job AS j SET
    state = CASE WHEN NOT u.is_running THEN j.state
      WHEN u.should_cancel THEN 'cancelled'::${p}river_job_state
      ELSE u.state::${p}river_job_state END,
    finalized_at = CASE WHEN NOT u.is_running THEN j.finalized_at
      WHEN u.should_cancel THEN $13::timestamptz
      WHEN u.finalized_at_do_update THEN u.finalized_at
      ELSE j.finalized_at END,
    attempt = CASE WHEN u.is_running AND NOT u.should_cancel AND u.attempt_do_update THEN u.attempt ELSE j.attempt END,
    scheduled_at = CASE WHEN u.is_running AND NOT u.should_cancel AND u.scheduled_at_do_update
      THEN u.scheduled_at ELSE j.scheduled_at END,
    errors = CASE WHEN u.is_running AND u.errors_do_update THEN array_append(j.errors, u.error) ELSE j.errors END,
    metadata = CASE WHEN u.metadata_do_merge THEN ${metadataObject("j.metadata")} || u.metadata_updates ELSE j.metadata END
  FROM job_to_update u WHERE j.id = u.id
  RETURNING ${returning === "rows" ? `${jobColumns("j")}, u.is_running AS applied` : "j.id"}
)
${
    returning === "rows"
      ? `SELECT * FROM updated
UNION ALL
SELECT ${jobColumns()}, false AS applied FROM ${p}river_job
WHERE id = ANY($1::bigint[]) AND id NOT IN (SELECT id FROM updated)`
      : "SELECT id FROM updated"
  }`

/**
 * The SET list of a fetch (of table alias `j`; $3 now, $4 the client id): attempt + 1,
 * `attempted_at`, `attempted_by`, state `running` — or, for a row already at attempt 32767, the
 * discard with an error saying why. Shared by River's fetch and flow control's.
 */
export const fetchedRunning = (p: string): string =>
  `state = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN 'running'::${p}river_job_state ELSE 'discarded'::${p}river_job_state END,
    attempt = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN j.attempt + 1 ELSE j.attempt END,
    attempted_at = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN $3::timestamptz ELSE j.attempted_at END,
    attempted_by = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN ${appendAttemptedBy("$4")} ELSE j.attempted_by END,
    finalized_at = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN j.finalized_at ELSE $3::timestamptz END,
    errors = CASE WHEN j.attempt < ${MAX_ATTEMPT} THEN j.errors ELSE array_append(j.errors, jsonb_build_object(
      'at', $3::timestamptz, 'attempt', j.attempt, 'trace', '',
      'error', 'effect-river: attempt ${MAX_ATTEMPT} is the most the attempt column (a smallint) can count; the job cannot be fetched again and was discarded')) END`

/**
 * River's fetch as two CTEs, `locked` and `updated`: at most `limit` (an SQL expression) available
 * jobs of queue `queueParam` scheduled by `$3`, in fetch order, locked `SKIP LOCKED` and marked
 * running ({@link fetchedRunning}: `$3` now, `$4` client id), returning their columns. Callers end
 * the statement with `SELECT … FROM updated WHERE state = 'running'` (a job at the attempt
 * ceiling is discarded instead).
 */
export const fetchCtes = (p: string, queueParam: string, limit: string): string =>
  `locked AS (
  SELECT id FROM ${p}river_job
  WHERE state = 'available' AND queue = ${queueParam}::text AND scheduled_at <= $3::timestamptz
  ORDER BY priority ASC, scheduled_at ASC, id ASC
  LIMIT ${limit}
  FOR UPDATE SKIP LOCKED
), updated AS (
  UPDATE ${p}river_job AS j
  SET ${fetchedRunning(p)}
  FROM locked WHERE j.id = locked.id
  RETURNING ${jobColumns("j")}
)`

/**
 * The lean completion's fenced `UPDATE` without its `RETURNING`: each row of `$1` (ids) still
 * running at the attempt in `$2` becomes `completed` at its own `finalized_at`, from the array
 * parameter `finalizedParam`. `indent` starts its continuation lines (inside a CTE). Shared by
 * {@link JobSql.jobCompleteManyIfRunning}, its ids-only twin and the slot hand-over, so that the
 * fence stays one rule.
 */
const completeIfRunning = (p: string, finalizedParam: string, indent = ""): string =>
  [
    `UPDATE ${p}river_job AS j SET state = 'completed', finalized_at = u.finalized_at`,
    `FROM unnest($1::bigint[], $2::smallint[], ${finalizedParam}::timestamptz[]) AS u(id, attempt, finalized_at)`,
    `WHERE j.id = u.id AND j.attempt = u.attempt AND j.state = 'running'`
  ].join(`\n${indent}`)

/**
 * The statement texts for one schema. `p` is the quoted schema prefix (`"s".` or empty). Exported
 * for the benchmarks' raw ceilings, which send the same texts straight through the driver.
 */
export const jobSql = (schema: string | undefined, p: string) => {
  const insertChannel = channelSql(schema, "river_insert")
  const controlChannel = channelSql(schema, "river_control")
  // Pieces shared by the insert statements (each statement's text stays static).
  /** The plain insert of $1–$10 as parallel arrays (River's columns, `created_at` = $2). */
  const insertArrays = `  INSERT INTO ${p}river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
  SELECT unnest($1::jsonb[]), $2::timestamptz, unnest($3::text[]), unnest($4::smallint[]), unnest($5::jsonb[]),
    unnest($6::smallint[]), unnest($7::text[]), unnest($8::timestamptz[]), unnest($9::text[])::${p}river_job_state,
    string_to_array(unnest($10::text[]), ',')::varchar(255)[]`
  /**
   * The unique insert, up to its conflict action: $1–$12 numbered in input order (ids drawn in that
   * order), inserted in unique-key order, `ON CONFLICT` on River's unique index.
   */
  const insertUnique = `  SELECT * FROM unnest($1::jsonb[], $3::text[], $4::smallint[], $5::jsonb[], $6::smallint[], $7::text[],
    $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[]) WITH ORDINALITY
    AS t(args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags, unique_key, unique_states, ord)
), numbered AS (
  SELECT input.*, nextval('${p}river_job_id_seq'::regclass) AS id FROM input ORDER BY ord
), inserted AS (
  INSERT INTO ${p}river_job AS j
    (id, args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags, unique_key, unique_states)
  SELECT id, args, $2::timestamptz, kind, max_attempts, metadata, priority, queue, scheduled_at,
    state::${p}river_job_state, string_to_array(tags, ',')::varchar(255)[],
    decode(nullif(unique_key, ''), 'hex'), nullif(unique_states, '')::bit(8)
  FROM numbered ORDER BY unique_key, ord
  ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND unique_states IS NOT NULL AND ${p}river_job_state_in_bitmask(unique_states, state)`
  return {
    /**
     * Inserts many jobs with one statement (parallel arrays, unnested in lockstep), and sends the
     * given insert notifications in the same statement, hence the same transaction.
     * $1 args jsonb[], $2 created_at, $3 kind text[], $4 max_attempts smallint[],
     * $5 metadata jsonb[], $6 priority smallint[], $7 queue text[], $8 scheduled_at timestamptz[],
     * $9 state text[], $10 tags (comma-joined) text[], $11 notification payloads text[].
     */
    jobInsertMany: `WITH inserted AS (
${insertArrays}
  RETURNING ${jobColumns()}
), notified AS (
  SELECT count(pg_notify(${insertChannel}, payload)) AS n FROM unnest($11::text[]) AS payload
)
SELECT inserted.*, (SELECT n FROM notified) AS notified FROM inserted`,

    /**
     * {@link jobInsertMany} for batches with unique jobs (kept apart so plain batches keep the
     * plain statement): River's `ON CONFLICT` on `river_job_unique_idx` returns the existing row
     * of a duplicate instead of inserting, with `skipped` (`xmax <> 0`: the row was locked by
     * this statement's no-op update rather than inserted by it). The update leaves the row as it
     * is (River sets `kind = EXCLUDED.kind`, which rewrites an existing job's kind when the key
     * excludes the kind). The batch must not contain one key twice (Postgres refuses to update a
     * row twice in one statement); the client deduplicates first.
     * Deadlock-free against concurrent batches sharing keys: rows are inserted in unique-key order
     * (two batches taking the same keys in opposite orders would each wait for the other), while
     * ids are drawn from the sequence in input order, so the batch is still worked in the order
     * given. Rows come back in input order, matched to their input by unique key (a duplicate
     * returns the existing row's id) or, for rows without one, by id (one equality, so a hash join).
     * $1–$10 as {@link jobInsertMany}, $11 unique_key as hex text[] ('' = none), $12 unique_states
     * as bit(8) text[] ('' = none), $13 notification payloads text[].
     */
    jobInsertManyUnique: `WITH input AS (
${insertUnique}
    DO UPDATE SET kind = j.kind
  RETURNING ${jobColumns()}, (xmax <> 0) AS skipped
), notified AS (
  SELECT count(pg_notify(${insertChannel}, payload)) AS n FROM unnest($13::text[]) AS payload
)
SELECT inserted.*, (SELECT n FROM notified) AS notified FROM inserted
JOIN numbered ON (CASE WHEN numbered.unique_key = '' THEN numbered.id::text ELSE numbered.unique_key END)
  = (CASE WHEN inserted.unique_key IS NULL THEN inserted.id::text ELSE encode(inserted.unique_key, 'hex') END)
ORDER BY numbered.ord`,

    /**
     * River's `InsertManyFast`: {@link jobInsertMany} returning only how many rows it inserted
     * (no row comes back, nothing to decode). $1–$11 as {@link jobInsertMany}.
     */
    jobInsertManyFast: `WITH inserted AS (
${insertArrays}
  RETURNING 1
), notified AS (
  SELECT count(pg_notify(${insertChannel}, payload)) AS n FROM unnest($11::text[]) AS payload
)
SELECT (SELECT count(*) FROM inserted)::int AS inserted, (SELECT n FROM notified) AS notified`,

    /**
     * {@link jobInsertManyFast} for a batch whose jobs differ only in their args (the common bulk
     * insert: one kind, one set of options): every other column is sent once, as a scalar, instead
     * of an array of copies. $1 args jsonb[], $2 created_at, $3 kind, $4 max_attempts,
     * $5 metadata, $6 priority, $7 queue, $8 scheduled_at, $9 state, $10 tags (comma-joined),
     * $11 notification payloads text[].
     */
    jobInsertManyFastUniform: `WITH inserted AS (
  INSERT INTO ${p}river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
  SELECT a, $2::timestamptz, $3::text, $4::smallint, $5::jsonb, $6::smallint, $7::text, $8::timestamptz,
    $9::text::${p}river_job_state, string_to_array($10::text, ',')::varchar(255)[]
  FROM unnest($1::jsonb[]) AS a
  RETURNING 1
), notified AS (
  SELECT count(pg_notify(${insertChannel}, payload)) AS n FROM unnest($11::text[]) AS payload
)
SELECT (SELECT count(*) FROM inserted)::int AS inserted, (SELECT n FROM notified) AS notified`,

    /**
     * {@link jobInsertManyFast} for batches with unique jobs: a duplicate (its key held by a row in
     * a covered state) is skipped (`ON CONFLICT … DO NOTHING`, River's `JobInsertFastManyNoReturning`)
     * and not counted. Ids are drawn in input order, rows inserted in unique-key order (deadlock-free,
     * as {@link jobInsertManyUnique}). $1–$13 as {@link jobInsertManyUnique}.
     */
    jobInsertManyFastUnique: `WITH input AS (
${insertUnique}
    DO NOTHING
  RETURNING 1
), notified AS (
  SELECT count(pg_notify(${insertChannel}, payload)) AS n FROM unnest($13::text[]) AS payload
)
SELECT (SELECT count(*) FROM inserted)::int AS inserted, (SELECT n FROM notified) AS notified`,

    jobGetById: `SELECT ${jobColumns()} FROM ${p}river_job WHERE id = $1`,

    /**
     * River's retry: any state but `running` becomes `available` now, `finalized_at` cleared,
     * `max_attempts` raised by one if no attempt is left, and the cancel request of an earlier
     * attempt (`cancel_attempted_at`) removed so it cannot cancel the next one (River 0.51); a
     * no-op for a job already available and due. Sends the queue's insert notification when it changed something.
     * $1 id, $2 now.
     */
    jobRetry: `WITH cur AS (
  SELECT ${jobColumns()} FROM ${p}river_job WHERE id = $1 FOR UPDATE
), updated AS (
  UPDATE ${p}river_job AS j
  SET state = 'available', scheduled_at = $2::timestamptz, finalized_at = NULL,
    max_attempts = CASE WHEN j.attempt >= j.max_attempts THEN least(j.attempt + 1, ${MAX_ATTEMPT}) ELSE j.max_attempts END,
    metadata = j.metadata - 'cancel_attempted_at'
  FROM cur
  WHERE j.id = cur.id AND cur.state <> 'running'
    AND NOT (cur.state = 'available' AND cur.scheduled_at <= $2::timestamptz)
  RETURNING ${jobColumns("j")}
), notified AS (
  SELECT count(pg_notify(${insertChannel}, ${insertPayloadSql("queue")})) AS n FROM updated
)
SELECT true AS changed, updated.*, (SELECT n FROM notified) AS notified FROM updated
UNION ALL
SELECT false AS changed, cur.*, 0 AS notified FROM cur WHERE NOT EXISTS (SELECT 1 FROM updated)`,

    /** Deletes a job unless it is running; returns the row as it was, and whether it was deleted. $1 id. */
    jobDelete: `WITH cur AS (
  SELECT ${jobColumns()} FROM ${p}river_job WHERE id = $1 FOR UPDATE
), deleted AS (
  DELETE FROM ${p}river_job AS j USING cur WHERE j.id = cur.id AND cur.state <> 'running' RETURNING j.id
)
SELECT (SELECT count(*) FROM deleted) > 0 AS deleted, cur.* FROM cur`,

    /**
     * River's fetch: locks up to $2 available, due jobs of queue $1 (priority, scheduled_at, id;
     * SKIP LOCKED, so concurrent fetchers never share a row) and marks them running: attempt + 1,
     * attempted_at = $3, client id $4 appended to attempted_by (kept to the last 100).
     * A row whose `attempt` is already 32767 (the column is a smallint; only another writer can
     * put it there) cannot count another attempt: instead of failing the whole fetch (and every
     * later fetch of its queue) with "smallint out of range", it is discarded at $3 with an error
     * saying so, and not returned.
     */
    jobGetAvailable: `WITH ${fetchCtes(p, "$1", "$2::int")}
SELECT * FROM updated WHERE state = 'running'`,

    /**
     * River's batched "set state if still running", one row per job (parallel arrays):
     * a job that left `running` meanwhile only gets its metadata merged. A job whose cancel was
     * requested during this attempt and whose target is not final (retryable, scheduled or
     * available, as River 0.51 has it) is cancelled instead, at $13, keeping the outcome's own
     * error if it had one (River appends nothing else).
     * A request belongs to this attempt when the row's `cancel_attempted_at` differs from the one
     * the job carried when the attempt was fetched ($15, its JSON text, '' for none): a request
     * left over from before a retry (River before 0.51 kept it on retry) is never honoured, and
     * no clocks are compared.
     * Fenced by attempt (improves on River, which checks the state only): an outcome applies only
     * while the row's `attempt` is still the attempt that produced it ($14), so a late outcome of
     * attempt 1 (say, held back by a database outage while the job was rescued and attempt 2
     * started) changes nothing, not even metadata.
     * $1 id, $2 state, $3/$4 attempt flag/value, $5/$6 errors flag/element, $7/$8 finalized_at
     * flag/value, $9/$10 metadata flag/update, $11/$12 scheduled_at flag/value, $13 now,
     * $14 the attempt each outcome belongs to, $15 the cancel request present at fetch.
     * Returns every job of $1 that still exists, as it is afterwards.
     */
    jobSetStateIfRunningMany: setStateIfRunningMany(p, "rows"),

    /** `jobSetStateIfRunningMany` returning only the ids it changed (nobody needs the rows). */
    jobSetStateIfRunningManyIds: setStateIfRunningMany(p, "ids"),

    /**
     * The lean completion (issue 16): {@link jobSetStateIfRunningMany} for plain successes only.
     * Each row still running at the attempt that ran ($2, the same fence) becomes `completed` at
     * its own `finalized_at` ($3); nothing else changes (a success keeps a cancel requested during
     * its attempt as River does: only outcomes that would run again become `cancelled`, and there
     * is no metadata to merge), and nothing is locked first (each row is updated once, in the
     * order of $1, which the caller sorts). Returns the id and metadata of each row it completed
     * (the only column another writer may have changed since the fetch).
     * $1 id bigint[], $2 attempt smallint[], $3 finalized_at timestamptz[].
     */
    jobCompleteManyIfRunning: `${completeIfRunning(p, "$3")}
RETURNING j.id, j.metadata::text AS metadata`,

    /**
     * Flow control's slot hand-over (issue 17): {@link jobCompleteManyIfRunning} for jobs of queue
     * $6, and in the same statement the start of at most `least($7, completions that applied)`
     * available jobs of $6 for client $4 at $3, as {@link jobGetAvailable} starts them — only while
     * the queue's running count in this statement's snapshot is at most $8 (its global limit; a
     * limit lowered since the jobs started hands nothing over). Every job started replaces one that
     * completed in the same commit, so the queue's running count never grows and no lock is taken;
     * rows are locked `SKIP LOCKED` and re-checked, so a concurrent fetch never takes the same job.
     * One row per completion that applied: `done_id` and `done_metadata`, paired with a started
     * job's columns (`id` is null on rows without one).
     * $1 id bigint[], $2 attempt smallint[], $5 finalized_at timestamptz[].
     */
    jobCompleteManyAndStart: `WITH done AS (
  ${completeIfRunning(p, "$5", "  ")}
  RETURNING j.id, j.metadata
), ${
      fetchCtes(
        p,
        "$6",
        `(SELECT CASE
    WHEN (SELECT count(*) FROM ${p}river_job WHERE state = 'running' AND queue = $6::text) <= $8::int
    THEN least($7::int, (SELECT count(*) FROM done)) ELSE 0 END)`
      )
    }, started AS (
  SELECT *, row_number() OVER () AS pair FROM updated WHERE state = 'running'
), completed AS (
  SELECT id AS done_id, metadata::text AS done_metadata, row_number() OVER () AS pair FROM done
)
SELECT c.done_id, c.done_metadata, s.* FROM completed c LEFT JOIN started s ON s.pair = c.pair`,

    /** {@link jobCompleteManyIfRunning} returning only the ids (nobody needs the rows). */
    jobCompleteManyIfRunningIds: `${completeIfRunning(p, "$3")}
RETURNING j.id`,

    /**
     * River's scheduler (`JobSchedule` of River v0.51.2, in one statement): makes retryable and
     * scheduled jobs due by $1 (now + 5 s) available, at most $2 of them, and notifies the queues
     * of those due by $3 (now + 5 ms). Unique jobs (River §8.3) are resolved in the same
     * statement, so no conflict can fail the pass: a due job whose unique key is held by any
     * other row in a state that row's bitmask covers — a row of this very batch included — is
     * discarded at $4 with `metadata.unique_key_conflict = "scheduler_discarded"`, as is every
     * due job but the first (priority, scheduled_at, id) of its key. Only the first of a key no
     * other row holds is promoted, so a promotion never meets another covered row of its key.
     * Metadata that is not an object (written by someone else) is treated as `{}`.
     */
    jobSchedule: `WITH jobs_to_schedule AS (
  SELECT id, unique_key, unique_states, priority, scheduled_at FROM ${p}river_job
  WHERE state IN ('retryable', 'scheduled') AND scheduled_at <= $1::timestamptz
  ORDER BY priority ASC, scheduled_at ASC, id ASC
  LIMIT $2::int
  FOR UPDATE
), jobs_with_rownum AS (
  SELECT *,
    CASE WHEN unique_key IS NOT NULL AND unique_states IS NOT NULL
      THEN row_number() OVER (PARTITION BY unique_key ORDER BY priority, scheduled_at, id) END AS row_num
  FROM jobs_to_schedule
), unique_conflicts AS (
  SELECT DISTINCT other.unique_key
  FROM ${p}river_job AS other
  JOIN jobs_with_rownum AS job ON other.unique_key = job.unique_key AND other.id <> job.id
  WHERE other.unique_key IS NOT NULL AND other.unique_states IS NOT NULL
    AND ${p}river_job_state_in_bitmask(other.unique_states, other.state)
), job_updates AS (
  SELECT job.id, (job.row_num IS NOT NULL AND (uc.unique_key IS NOT NULL OR job.row_num > 1)) AS discard
  FROM jobs_with_rownum AS job LEFT JOIN unique_conflicts AS uc ON job.unique_key = uc.unique_key
), updated AS (
  UPDATE ${p}river_job AS j SET
    state = CASE WHEN u.discard THEN 'discarded'::${p}river_job_state ELSE 'available'::${p}river_job_state END,
    finalized_at = CASE WHEN u.discard THEN $4::timestamptz ELSE j.finalized_at END,
    metadata = CASE WHEN u.discard
      THEN ${metadataObject("j.metadata")} || '{"unique_key_conflict": "scheduler_discarded"}'::jsonb
      ELSE j.metadata END
  FROM job_updates AS u WHERE j.id = u.id
  RETURNING j.queue, j.scheduled_at, u.discard
), notified AS (
  SELECT count(pg_notify(${insertChannel}, ${insertPayloadSql("queue")})) AS n
  FROM (SELECT DISTINCT queue FROM updated WHERE NOT discard AND scheduled_at <= $3::timestamptz) AS q
)
SELECT (SELECT count(*) FROM updated WHERE NOT discard)::int AS scheduled, (SELECT n FROM notified)::int AS notified,
  (SELECT count(*) FROM updated WHERE discard)::int AS discarded,
  coalesce((SELECT array_agg(DISTINCT queue) FROM updated WHERE NOT discard), '{}') AS queues`,

    /**
     * River's cancel: locks the job; if it is not finalized, sends the control notification
     * `{"action": "cancel", "job_id": …, "queue": …}` and sets `metadata.cancel_attempted_at` ($3,
     * the client's time as text); a job that is not running is cancelled at once
     * (`finalized_at` = $2). Finalized jobs are returned unchanged — as they are once the lock
     * is held (`FOR UPDATE` re-reads the row): a cancel that waited for a concurrent cancel of
     * the same job returns the job as that one left it, not the statement's older snapshot
     * (River 0.48, PR #1409).
     */
    jobCancel: `WITH locked AS (
  SELECT id, queue, state, finalized_at FROM ${p}river_job WHERE id = $1 FOR UPDATE
), target AS (
  SELECT * FROM locked WHERE state NOT IN ('cancelled', 'completed', 'discarded') AND finalized_at IS NULL
), notified AS (
  SELECT count(pg_notify(${controlChannel}, ${cancelPayloadSql("id", "queue")})) AS n
  FROM target
), updated AS (
  UPDATE ${p}river_job AS j SET
    state = CASE WHEN j.state = 'running' THEN j.state ELSE 'cancelled'::${p}river_job_state END,
    finalized_at = CASE WHEN j.state = 'running' THEN j.finalized_at ELSE $2::timestamptz END,
    metadata = jsonb_set(${metadataObject("j.metadata")}, '{cancel_attempted_at}', to_jsonb($3::text))
  FROM target WHERE j.id = target.id
  RETURNING ${jobColumns("j")}
)
SELECT true AS changed, updated.*, (SELECT n FROM notified) AS notified FROM updated
UNION ALL
SELECT false AS changed, fallback.*, 0 AS notified
FROM (SELECT ${jobColumns()} FROM ${p}river_job WHERE id = $1 FOR UPDATE) AS fallback
WHERE NOT EXISTS (SELECT 1 FROM updated)`,

    /**
     * Marks one job running as a fetch would, whatever its state (the testing kit's "work an
     * existing row"): attempt + 1, attempted_at $2, client id $3 appended (the last 100 kept),
     * finalized_at cleared (a running row has none). $1 id.
     */
    jobMarkRunning: `UPDATE ${p}river_job AS j
SET state = 'running', attempt = j.attempt + 1, attempted_at = $2::timestamptz, finalized_at = NULL,
  attempted_by = ${appendAttemptedBy("$3")}
WHERE j.id = $1 RETURNING ${jobColumns("j")}`,

    /**
     * Merges $2 into a running job's metadata (transactional resumable checkpoints) while attempt
     * $3 is the one running. $1 id.
     */
    jobMergeMetadataIfRunning: `UPDATE ${p}river_job SET metadata = ${metadataObject("metadata")} || $2::jsonb
WHERE id = $1 AND state = 'running' AND attempt = $3 RETURNING id`,

    /**
     * Running jobs among $1 whose cancel was requested during the attempt running (the runner's
     * cancel check): `cancel_attempted_at` present and different from the one the job carried
     * when it was fetched ($2, parallel to $1: its JSON text, '' for none).
     */
    jobGetCancelRequested: `SELECT j.id FROM ${p}river_job AS j
JOIN unnest($1::bigint[], $2::text[]) AS r(id, stale) ON r.id = j.id
WHERE j.state = 'running' AND j.metadata ? 'cancel_attempted_at'
  AND (j.metadata -> 'cancel_attempted_at') IS DISTINCT FROM nullif(r.stale, '')::jsonb`,

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

    /** The newest `scheduled_at` of the jobs whose metadata contains $1 (the periodic enqueuer's last run). */
    jobGetLatestScheduledAt: `SELECT max(scheduled_at) AS last FROM ${p}river_job WHERE metadata @> $1::jsonb`,

    /**
     * Inserts rows with every column given (tests and tools), in input order. $1–$17 parallel
     * arrays: args, attempt, attempted_at (text, '' for NULL), attempted_by (JSON text),
     * created_at, errors (JSON text), finalized_at (text, '' for NULL), kind, max_attempts,
     * metadata, priority, queue, scheduled_at, state, tags (JSON text), unique_key (hex, '' for
     * NULL), unique_states (bit text, '' for NULL).
     */
    jobInsertFull: `INSERT INTO ${p}river_job (args, attempt, attempted_at, attempted_by, created_at, errors, finalized_at,
  kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags, unique_key, unique_states)
SELECT args, attempt, nullif(attempted_at, '')::timestamptz, ARRAY(SELECT jsonb_array_elements_text(attempted_by)),
  created_at, ARRAY(SELECT jsonb_array_elements(errors)), nullif(finalized_at, '')::timestamptz, kind, max_attempts,
  metadata, priority, queue, scheduled_at, state::${p}river_job_state,
  ARRAY(SELECT jsonb_array_elements_text(tags))::varchar(255)[],
  decode(nullif(unique_key, ''), 'hex'), nullif(unique_states, '')::bit(8)
FROM unnest($1::jsonb[], $2::smallint[], $3::text[], $4::jsonb[], $5::timestamptz[], $6::jsonb[],
  $7::text[], $8::text[], $9::smallint[], $10::jsonb[], $11::smallint[], $12::text[], $13::timestamptz[],
  $14::text[], $15::jsonb[], $16::text[], $17::text[]) WITH ORDINALITY
  AS t(args, attempt, attempted_at, attempted_by, created_at, errors, finalized_at, kind, max_attempts, metadata,
    priority, queue, scheduled_at, state, tags, unique_key, unique_states, ord)
ORDER BY ord
RETURNING ${jobColumns()}`,

    /** Prefix for list queries; {@link jobList} appends WHERE / ORDER BY / LIMIT. */
    jobListSelect: (orderColumn: string) =>
      `SELECT ${jobColumns()}, ${
        orderColumn === "id" ? "NULL::bigint" : `(extract(epoch FROM ${orderColumn}) * 1000000)::bigint`
      } AS order_us FROM ${p}river_job`
  }
}

export type JobSql = ReturnType<typeof jobSql>

type JobMethods = Pick<
  Driver,
  | "jobCancel"
  | "jobCompleteManyIfRunning"
  | "jobCompleteManyAndStart"
  | "jobDelete"
  | "jobDeleteFinalized"
  | "jobGetAvailable"
  | "jobGetById"
  | "jobGetCancelRequested"
  | "jobGetLatestScheduledAt"
  | "jobGetStuck"
  | "jobInsertFull"
  | "jobInsertMany"
  | "jobInsertManyFast"
  | "jobList"
  | "jobMarkRunning"
  | "jobMergeMetadataIfRunning"
  | "jobRescueMany"
  | "jobRetry"
  | "jobSchedule"
  | "jobSetStateIfRunningMany"
  | "jobSetStateIfRunningManyIds"
>

const decodeRows = (rows: ReadonlyArray<RawJobRow>): ReadonlyArray<JobRow> => rows.map(decodeJobRow)

/** The lean completion's parameter arrays, sorted by id (each row is updated once, in that order). */
const completeParams = (jobs: ReadonlyArray<JobCompleteParams>) => {
  const n = jobs.length
  const sorted = jobs.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const ids = new Array<bigint>(n)
  const attempts = new Array<number>(n)
  const finalized = new Array<Date>(n)
  for (let i = 0; i < n; i++) {
    const c = sorted[i]!
    ids[i] = c.id
    attempts[i] = c.job.attempt
    finalized[i] = c.finalizedAt
  }
  return { ids, attempts, finalized }
}

/** The rows the lean completion completed, from the fetched rows and each one's current metadata. */
const completedRows = (
  jobs: ReadonlyArray<JobCompleteParams>,
  done: ReadonlyArray<readonly [id: bigint, metadata: string]>
): { readonly ids: ReadonlyArray<bigint>; readonly rows: ReadonlyArray<JobRow> } => {
  const byId = new Map<bigint, JobCompleteParams>()
  for (const c of jobs) byId.set(c.id, c)
  const rows = new Array<JobRow>(done.length)
  const ids = new Array<bigint>(done.length)
  for (let i = 0; i < done.length; i++) {
    const [id, metadata] = done[i]!
    const c = byId.get(id)!
    ids[i] = id
    rows[i] = { ...c.job, state: "completed", finalizedAt: c.finalizedAt, metadata: metadataOf(parseJson(metadata)) }
  }
  return { ids, rows }
}

/**
 * The parameters of {@link JobSql.jobSetStateIfRunningMany}, one array per column. Unused slots
 * (flag false) carry placeholders: the driver cannot type an array of nulls.
 */
const packSetState = (jobs: ReadonlyArray<JobSetStateParams>, now: Date): ReadonlyArray<unknown> => {
  const n = jobs.length
  const ids = new Array<bigint>(n)
  const states = new Array<string>(n)
  const attemptDo = new Array<boolean>(n)
  const attempts = new Array<number>(n)
  const errorsDo = new Array<boolean>(n)
  const errors = new Array<string>(n)
  const finalizedDo = new Array<boolean>(n)
  const finalized = new Array<Date>(n)
  const metadataDo = new Array<boolean>(n)
  const metadata = new Array<string>(n)
  const scheduledDo = new Array<boolean>(n)
  const scheduled = new Array<Date>(n)
  const ranAttempts = new Array<number>(n)
  const cancelRequests = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const c = jobs[i]!
    ids[i] = c.id
    ranAttempts[i] = c.job.attempt
    cancelRequests[i] = cancelRequestAtFetch(c.job.metadata)
    states[i] = c.state
    attemptDo[i] = c.attempt !== undefined
    attempts[i] = c.attempt ?? 0
    errorsDo[i] = c.error !== undefined
    errors[i] = c.error === undefined ? "{}" : toJsonb(c.error)
    finalizedDo[i] = c.finalizedAt !== undefined
    finalized[i] = c.finalizedAt ?? now
    metadataDo[i] = c.metadata !== undefined
    metadata[i] = c.metadata === undefined ? "{}" : toJsonb(c.metadata)
    scheduledDo[i] = c.scheduledAt !== undefined
    scheduled[i] = c.scheduledAt ?? now
  }
  return [
    ids,
    states,
    attemptDo,
    attempts,
    errorsDo,
    errors,
    finalizedDo,
    finalized,
    metadataDo,
    metadata,
    scheduledDo,
    scheduled,
    now,
    ranAttempts,
    cancelRequests
  ]
}

const ORDER_COLUMNS = { id: "id", scheduledAt: "scheduled_at", finalizedAt: "finalized_at" } as const

/** The text and values of one {@link Driver.jobList} page (the filters vary, so the text does). */
const listQuery = (q: JobSql, params: JobListParams): { readonly text: string; readonly values: Array<unknown> } => {
  const column = ORDER_COLUMNS[params.orderBy]
  const values: Array<unknown> = []
  const where: Array<string> = []
  const bind = (value: unknown) => {
    values.push(value)
    return `$${values.length}`
  }
  if (params.states !== undefined) where.push(`state::text = ANY(${bind(params.states)}::text[])`)
  if (params.kinds !== undefined) where.push(`kind = ANY(${bind(params.kinds)}::text[])`)
  if (params.queues !== undefined) where.push(`queue = ANY(${bind(params.queues)}::text[])`)
  if (params.priorities !== undefined) where.push(`priority = ANY(${bind(params.priorities)}::smallint[])`)
  if (params.ids !== undefined) where.push(`id = ANY(${bind(params.ids)}::bigint[])`)
  if (params.tagsAny !== undefined) where.push(`tags && ${bind(params.tagsAny)}::varchar(255)[]`)
  if (params.tagsAll !== undefined) where.push(`tags @> ${bind(params.tagsAll)}::varchar(255)[]`)
  if (params.metadataContains !== undefined) where.push(`metadata @> ${bind(params.metadataContains)}::jsonb`)
  if (params.orderBy === "finalizedAt") where.push("finalized_at IS NOT NULL")
  const cmp = params.order === "asc" ? ">" : "<"
  if (params.after !== undefined) {
    const id = bind(params.after.id)
    if (params.orderBy === "id" || params.after.orderValueMicros === null) {
      where.push(`id ${cmp} ${id}::bigint`)
    } else {
      const at = `('epoch'::timestamptz + (${bind(params.after.orderValueMicros)}::text || ' microseconds')::interval)`
      where.push(`(${column} ${cmp} ${at} OR (${column} = ${at} AND id ${cmp} ${id}::bigint))`)
    }
  }
  const direction = params.order === "asc" ? "ASC" : "DESC"
  const text = `${q.jobListSelect(column)}${where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`} ORDER BY ${
    params.orderBy === "id" ? "" : `${column} ${direction}, `
  }id ${direction} LIMIT ${params.limit}`
  return { text, values }
}

const dateOrEmpty = (date: Date | null | undefined): string => (date == null ? "" : date.toISOString())

/** The `river_job` methods of a driver over `sql`, for one schema. */
/**
 * The insert statements' parameters $1–$11 (parallel arrays; the notification payloads last), and
 * whether a job is unique (then the unique statements' $11–$12 go before the payloads).
 */
const insertParams = (
  jobs: ReadonlyArray<JobInsertParams>,
  now: Date,
  notifyQueues: ReadonlyArray<string>
): { readonly params: Array<unknown>; readonly unique: boolean } => {
  const n = jobs.length
  const args = new Array<string>(n)
  const kinds = new Array<string>(n)
  const maxAttempts = new Array<number>(n)
  const metadata = new Array<string>(n)
  const priorities = new Array<number>(n)
  const queues = new Array<string>(n)
  const scheduledAt = new Array<Date>(n)
  const states = new Array<string>(n)
  const tags = new Array<string>(n)
  let unique = false
  for (let i = 0; i < n; i++) {
    const job = jobs[i]!
    args[i] = job.args
    kinds[i] = job.kind
    maxAttempts[i] = job.maxAttempts
    metadata[i] = job.metadata
    priorities[i] = job.priority
    queues[i] = job.queue
    scheduledAt[i] = job.scheduledAt
    states[i] = job.state
    tags[i] = job.tags.join(",")
    if (job.uniqueKey !== undefined) unique = true
  }
  return {
    params: [args, now, kinds, maxAttempts, metadata, priorities, queues, scheduledAt, states, tags, notifyQueues.map(insertPayload)],
    unique
  }
}

/**
 * The parameters of the uniform fast insert when the jobs differ only in their args (and none is
 * unique); `undefined` otherwise.
 */
const uniformParams = (
  jobs: ReadonlyArray<JobInsertParams>,
  now: Date,
  notifyQueues: ReadonlyArray<string>
): Array<unknown> | undefined => {
  const n = jobs.length
  if (n === 0) return undefined
  const first = jobs[0]!
  if (first.uniqueKey !== undefined) return undefined
  const scheduledAt = first.scheduledAt.getTime()
  const tags = first.tags.join(",")
  const args = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const job = jobs[i]!
    if (
      job.kind !== first.kind || job.maxAttempts !== first.maxAttempts || job.metadata !== first.metadata ||
      job.priority !== first.priority || job.queue !== first.queue || job.state !== first.state ||
      job.uniqueKey !== undefined || job.scheduledAt.getTime() !== scheduledAt ||
      (job.tags !== first.tags && job.tags.join(",") !== tags)
    ) return undefined
    args[i] = job.args
  }
  return [
    args,
    now,
    first.kind,
    first.maxAttempts,
    first.metadata,
    first.priority,
    first.queue,
    first.scheduledAt,
    first.state,
    tags,
    notifyQueues.map(insertPayload)
  ]
}

/** The unique insert statements' unique_key and unique_states arrays ('' = none). */
const uniqueParams = (jobs: ReadonlyArray<JobInsertParams>): [ReadonlyArray<string>, ReadonlyArray<string>] => [
  jobs.map((job) => job.uniqueKey ?? ""),
  jobs.map((job) => job.uniqueKey === undefined ? "" : job.uniqueStates ?? "")
]

export const makeJobMethods = (sql: SqlClient.SqlClient, schema: string | undefined, p: string): JobMethods => {
  const q = jobSql(schema, p)
  return {
    jobCancel: ({ id, now }) =>
      sql.unsafe<RawJobRow & { readonly changed: boolean }>(q.jobCancel, [id, now, now.toISOString()]).pipe(
        Effect.map((rows) => rows.length === 0 ? undefined : { job: decodeJobRow(rows[0]!), changed: rows[0]!.changed })
      ),

    jobDelete: ({ id }) =>
      sql.unsafe<RawJobRow & { readonly deleted: boolean }>(q.jobDelete, [id]).pipe(
        Effect.map((rows) => rows.length === 0 ? undefined : { job: decodeJobRow(rows[0]!), deleted: rows[0]!.deleted })
      ),

    jobDeleteFinalized: ({ cancelledBefore, completedBefore, discardedBefore, max }) =>
      sql.unsafe<{ readonly n: number }>(q.jobDeleteFinalized, [
        cancelledBefore ?? null,
        completedBefore ?? null,
        discardedBefore ?? null,
        max
      ]).pipe(Effect.map((rows) => rows[0]?.n ?? 0)),

    jobGetAvailable: ({ clientId, max, now, queue }) =>
      Effect.map(sql.unsafe<RawJobRow>(q.jobGetAvailable, [queue, max, now, clientId]), decodeRows),

    jobGetById: ({ id }) =>
      Effect.map(sql.unsafe<RawJobRow>(q.jobGetById, [id]), (rows) => rows.length === 0 ? undefined : decodeJobRow(rows[0]!)),

    jobGetCancelRequested: ({ jobs }) =>
      Effect.map(
        sql.unsafe<{ readonly id: bigint }>(q.jobGetCancelRequested, [
          jobs.map((job) => job.id),
          jobs.map((job) => cancelRequestAtFetch(job.metadata))
        ]),
        (rows) => rows.map((row) => row.id)
      ),

    jobGetLatestScheduledAt: ({ metadataContains }) =>
      Effect.map(
        sql.unsafe<{ readonly last: Date | null }>(q.jobGetLatestScheduledAt, [stringifyJson(metadataContains)]),
        (rows) => rows[0]?.last ?? undefined
      ),

    jobGetStuck: ({ afterId, max, stuckHorizon }) =>
      Effect.map(sql.unsafe<RawJobRow>(q.jobGetStuck, [stuckHorizon, afterId, max]), decodeRows),

    jobInsertFull: ({ jobs }) =>
      Effect.map(
        sql.unsafe<RawJobRow>(q.jobInsertFull, [
          jobs.map((j) => j.args ?? "{}"),
          jobs.map((j) => j.attempt ?? 0),
          jobs.map((j) => dateOrEmpty(j.attemptedAt)),
          jobs.map((j) => JSON.stringify(j.attemptedBy ?? [])),
          jobs.map((j) => j.createdAt ?? j.scheduledAt ?? new Date(0)),
          jobs.map((j) => toJsonb(j.errors ?? [])),
          jobs.map((j) => dateOrEmpty(j.finalizedAt)),
          jobs.map((j) => j.kind),
          jobs.map((j) => j.maxAttempts ?? 25),
          jobs.map((j) => j.metadata ?? "{}"),
          jobs.map((j) => j.priority ?? 1),
          jobs.map((j) => j.queue ?? "default"),
          jobs.map((j) => j.scheduledAt ?? j.createdAt ?? new Date(0)),
          jobs.map((j) => j.state ?? "available"),
          jobs.map((j) => JSON.stringify(j.tags ?? [])),
          jobs.map((j) => j.uniqueKey ?? ""),
          jobs.map((j) => j.uniqueStates ?? "")
        ]),
        decodeRows
      ),

    jobInsertManyFast: ({ jobs, notifyQueues, now }) =>
      Effect.suspend(() => {
        const uniform = uniformParams(jobs, now, notifyQueues)
        if (uniform !== undefined) {
          return Effect.map(
            sql.unsafe<{ readonly inserted: number }>(q.jobInsertManyFastUniform, uniform),
            (rows) => rows[0]?.inserted ?? 0
          )
        }
        const { params, unique } = insertParams(jobs, now, notifyQueues)
        if (unique) params.splice(10, 0, ...uniqueParams(jobs))
        return Effect.map(
          sql.unsafe<{ readonly inserted: number }>(unique ? q.jobInsertManyFastUnique : q.jobInsertManyFast, params),
          (rows) => rows[0]?.inserted ?? 0
        )
      }),

    jobInsertMany: ({ jobs, notifyQueues, now }) =>
      Effect.suspend(() => {
        const { params, unique } = insertParams(jobs, now, notifyQueues)
        if (!unique) {
          return Effect.map(
            sql.unsafe<RawJobRow>(q.jobInsertMany, params),
            (rows) => rows.map((row) => ({ job: decodeJobRow(row), skipped: false }))
          )
        }
        params.splice(10, 0, ...uniqueParams(jobs))
        return Effect.map(
          sql.unsafe<RawJobRow & { readonly skipped: boolean }>(q.jobInsertManyUnique, params),
          (rows) => rows.map((row) => ({ job: decodeJobRow(row), skipped: row.skipped }))
        )
      }),

    jobList: (params) =>
      Effect.suspend(() => {
        const { text, values } = listQuery(q, params)
        return Effect.map(
          sql.unsafe<RawJobRow & { readonly order_us: bigint | null }>(text, values),
          (rows) => rows.map((row) => ({ job: decodeJobRow(row), orderValueMicros: row.order_us }))
        )
      }),

    jobMarkRunning: ({ clientId, id, now }) =>
      Effect.map(
        sql.unsafe<RawJobRow>(q.jobMarkRunning, [id, now, clientId]),
        (rows) => rows.length === 0 ? undefined : decodeJobRow(rows[0]!)
      ),

    jobMergeMetadataIfRunning: ({ attempt, id, metadata }) =>
      Effect.map(
        sql.unsafe<{ readonly id: bigint }>(q.jobMergeMetadataIfRunning, [id, toJsonb(metadata), attempt]),
        (rows) => rows.length === 1
      ),

    jobRescueMany: ({ jobs, stuckHorizon }) =>
      Effect.suspend(() => {
        const placeholder = stuckHorizon
        return Effect.map(
          sql.unsafe<{ readonly id: bigint }>(q.jobRescueMany, [
            jobs.map((j) => j.id),
            jobs.map((j) => j.state),
            jobs.map((j) => j.finalizedAt ?? placeholder),
            jobs.map((j) => j.finalizedAt !== undefined),
            jobs.map((j) => j.scheduledAt ?? placeholder),
            jobs.map((j) => j.scheduledAt !== undefined),
            jobs.map((j) => toJsonb(j.error)),
            jobs.map((j) => j.attempt),
            stuckHorizon
          ]),
          (rows) => rows.length
        )
      }),

    jobRetry: ({ id, now }) =>
      sql.unsafe<RawJobRow & { readonly changed: boolean }>(q.jobRetry, [id, now]).pipe(
        Effect.map((rows) => rows.length === 0 ? undefined : { job: decodeJobRow(rows[0]!), changed: rows[0]!.changed })
      ),

    jobSchedule: ({ max, notifyBefore, now, scheduleBefore }) =>
      Effect.map(
        sql.unsafe<{
          readonly scheduled: number
          readonly notified: number
          readonly discarded: number
          readonly queues: ReadonlyArray<string>
        }>(q.jobSchedule, [scheduleBefore, max, notifyBefore, now]),
        (rows) => ({
          scheduled: rows[0]?.scheduled ?? 0,
          discarded: rows[0]?.discarded ?? 0,
          queues: rows[0]?.queues ?? []
        })
      ),

    jobCompleteManyIfRunning: ({ jobs, wantRows }) =>
      Effect.suspend(() => {
        const { attempts, finalized, ids } = completeParams(jobs)
        const params = [ids, attempts, finalized]
        if (!wantRows) {
          return Effect.map(sql.unsafe<{ readonly id: bigint }>(q.jobCompleteManyIfRunningIds, params), (rows) => ({
            ids: rows.map((row) => row.id),
            rows: EMPTY as ReadonlyArray<JobRow>
          }))
        }
        return Effect.map(
          sql.unsafe<{ readonly id: bigint; readonly metadata: string }>(q.jobCompleteManyIfRunning, params),
          (rows) => completedRows(jobs, rows.map((row) => [row.id, row.metadata]))
        )
      }),

    jobCompleteManyAndStart: ({ clientId, jobs, limit, max, now, queue, wantRows }) =>
      Effect.suspend(() => {
        const { attempts, finalized, ids } = completeParams(jobs)
        return Effect.map(
          sql.unsafe<RawJobRow & { readonly done_id: bigint; readonly done_metadata: string }>(q.jobCompleteManyAndStart, [
            ids,
            attempts,
            now,
            clientId,
            finalized,
            queue,
            max,
            limit
          ]),
          (raw) => {
            const started: Array<JobRow> = []
            for (const row of raw) if (row.id !== null) started.push(decodeJobRow(row))
            const done = wantRows
              ? completedRows(jobs, raw.map((row) => [row.done_id, row.done_metadata]))
              : { ids: raw.map((row) => row.done_id), rows: EMPTY as ReadonlyArray<JobRow> }
            return { ...done, started }
          }
        )
      }),

    jobSetStateIfRunningMany: ({ jobs, now }) =>
      Effect.suspend(() =>
        Effect.map(
          sql.unsafe<RawJobRow & { readonly applied: boolean }>(q.jobSetStateIfRunningMany, packSetState(jobs, now)),
          (rows) => rows.map((row) => ({ job: decodeJobRow(row), applied: row.applied }))
        )
      ),

    jobSetStateIfRunningManyIds: ({ jobs, now }) =>
      Effect.suspend(() =>
        Effect.map(
          sql.unsafe<{ readonly id: bigint }>(q.jobSetStateIfRunningManyIds, packSetState(jobs, now)),
          (rows) => rows.map((row) => row.id)
        )
      )
  }
}
