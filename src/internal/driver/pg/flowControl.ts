/**
 * Flow control's statements (`river_job` under limits, and effect-river's own
 * `effect_river_rate_limit`): the fetch of a queue with a global limit, partitions or a rate
 * limit. The plan of each fetch is the pure core's (`../../flowControl.ts`), except for the
 * common case of a global limit alone, which SQL computes.
 *
 * One fetch is one READ COMMITTED transaction:
 *
 * 1. `pg_advisory_xact_lock` on the queue (key: schema and queue name): every effect-river fetch
 *    of a limited queue waits for the one before it to commit, so the next one counts what that
 *    one started — no two runners can both take the last slot. (It cannot share a round trip
 *    with `BEGIN`: the driver sends every statement, transaction control included, through the
 *    extended protocol, which takes one statement per message.)
 * 2. A global limit alone (no partitions, no rate): one statement counts the queue's running jobs
 *    and runs River's own fetch with `LIMIT greatest(0, least(max, limit − running))`. A statement
 *    takes its snapshot when it starts, after the lock is held, so the count includes what the
 *    previous holder started. Four round trips in all (begin, lock, this, commit).
 * 3. Otherwise: the running jobs of the queue per partition (when there is a global limit) and the
 *    rate state of its partitions (when there is a rate limit), read after the lock; then the
 *    fetch: without partitions River's own fetch statement with `LIMIT` the allowed count; with
 *    partitions a scan in fetch order (priority, `scheduled_at`, id) that leaves out full
 *    partitions, takes at most each partition's allowance (`row_number()` per partition), and
 *    stops after `scan` rows. Rows are locked `SKIP LOCKED` and re-checked `available`, so a River
 *    client fetching the same queue without the lock never gets the same job.
 * 4. With a rate limit: the starts counted in the current time bucket of each partition, and
 *    buckets that left the window deleted.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { JobRow } from "../../../Job.ts"
import * as FlowControl from "../../flowControl.ts"
import type { Driver, LimitedFetch } from "../driver.ts"
import { decodeJobRow, fetchCtes, fetchedRunning, jobColumns, jobSql, type RawJobRow } from "./job.ts"

/** First key of the per-queue advisory lock (ASCII "RFLW"); the second is the queue's hash. */
const LOCK_CLASS = 0x52464c57

/**
 * A job's partition as text, from `$byKind` (boolean) and `$keys` (text[]): the JSON array
 * `[kind or null, [args -> key, …]]`. Jobs missing a key share the partition of `null`.
 */
const partitionOf = (alias: string, byKind: string, keys: string): string =>
  `jsonb_build_array(CASE WHEN ${byKind}::boolean THEN ${alias}.kind END, (SELECT coalesce(jsonb_agg(${alias}.args -> u.k ORDER BY u.o), '[]'::jsonb) FROM unnest(${keys}::text[]) WITH ORDINALITY AS u(k, o)))::text`

/** The statement texts for one schema (`p`: its quoted prefix). */
export const flowControlSql = (schema: string | undefined, p: string) => ({
  /** $1 the queue. Waits for the fetch of the queue holding the lock to commit. */
  lock: `SELECT pg_advisory_xact_lock(${LOCK_CLASS}::int4, hashtext(coalesce(${
    schema === undefined ? "NULL" : `'${schema.replace(/'/g, "''")}'`
  }::text, current_schema()) || '.' || $1::text))`,

  /**
   * A global limit alone: River's fetch (`jobGetAvailable`: $1 queue, $2 max, $3 now, $4 client
   * id) taking at most the slots that queue $1's running jobs leave of the limit $5. Run after the
   * lock, so that its snapshot (taken when the statement starts) counts what earlier fetches
   * started.
   */
  fetchGlobal: `WITH running AS (
  SELECT count(*)::int AS n FROM ${p}river_job WHERE state = 'running' AND queue = $1::text
), ${fetchCtes(p, "$1", "greatest(0, least($2::int, $5::int - (SELECT n FROM running)))")}
SELECT * FROM updated WHERE state = 'running'`,

  /** Running jobs of queue $1: one row, partition ''. */
  runningCount: `SELECT ''::text AS partition, count(*)::int AS running FROM ${p}river_job
WHERE state = 'running' AND queue = $1::text`,

  /** Running jobs of queue $1 per partition ($2 by kind, $3 args keys). */
  runningByPartition: `SELECT ${partitionOf("j", "$2", "$3")} AS partition, count(*)::int AS running
FROM ${p}river_job j WHERE j.state = 'running' AND j.queue = $1::text GROUP BY 1`,

  /** The start buckets of queue $1's partitions that begin after $2 (epoch ms). */
  rateState: `SELECT partition, bucket_at, starts FROM ${p}effect_river_rate_limit
WHERE queue = $1::text AND bucket_at > $2::float8`,

  /**
   * The partitioned fetch. $1 queue, $2 max, $3 now, $4 client id, $5 by kind, $6 args keys,
   * $7 full partitions, $8/$9 partitions with an allowance and that allowance, $10 the allowance of
   * any other partition, $11 how many rows to scan at most. Returns the running rows with their
   * `partition`, and `scanned` (the rows the scan saw).
   */
  fetchPartitioned: `WITH candidates AS (
  SELECT j.id, j.priority, j.scheduled_at, ${partitionOf("j", "$5", "$6")} AS partition
  FROM ${p}river_job j
  WHERE j.state = 'available' AND j.queue = $1::text AND j.scheduled_at <= $3::timestamptz
    AND ${partitionOf("j", "$5", "$6")} <> ALL($7::text[])
  ORDER BY j.priority ASC, j.scheduled_at ASC, j.id ASC
  LIMIT $11::int
), ranked AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.partition ORDER BY c.priority, c.scheduled_at, c.id) AS rn
  FROM candidates c
), chosen AS (
  SELECT r.id, r.partition FROM ranked r
  LEFT JOIN unnest($8::text[], $9::int[]) AS cap(partition, n) ON cap.partition = r.partition
  WHERE r.rn <= coalesce(cap.n, $10::int)
  ORDER BY r.priority ASC, r.scheduled_at ASC, r.id ASC
  LIMIT $2::int
), locked AS (
  SELECT j.id, chosen.partition FROM ${p}river_job j JOIN chosen ON chosen.id = j.id
  WHERE j.state = 'available'
  ORDER BY j.id
  FOR UPDATE OF j SKIP LOCKED
), updated AS (
  UPDATE ${p}river_job AS j
  SET ${fetchedRunning(p)}
  FROM locked WHERE j.id = locked.id
  RETURNING ${jobColumns("j")}, locked.partition
)
SELECT u.*, (SELECT count(*) FROM candidates)::int AS scanned FROM updated u WHERE u.state = 'running'`,

  /**
   * Adds queue $1's starts ($4 partitions, $5 counts) to the bucket beginning at $3, and deletes
   * its buckets that begin at or before $2 (out of every window from now on).
   */
  rateStore: `WITH expired AS (
  DELETE FROM ${p}effect_river_rate_limit WHERE queue = $1::text AND bucket_at <= $2::float8
)
INSERT INTO ${p}effect_river_rate_limit AS r (queue, partition, bucket_at, starts)
SELECT $1::text, t.partition, $3::float8, t.starts FROM unnest($4::text[], $5::int[]) AS t(partition, starts)
ON CONFLICT (queue, partition, bucket_at) DO UPDATE SET starts = r.starts + EXCLUDED.starts`
})

/** How many rows a partitioned fetch scans at most, for `max` jobs wanted. */
export const scanLimit = (max: number): number => Math.max(1_000, 10 * max)

type FlowControlMethods = Pick<Driver, "jobGetAvailableLimited" | "rateLimitTableExists">

/** The flow-control methods of a driver over `sql`, for one schema. */
export const makeFlowControlMethods = (
  sql: SqlClient.SqlClient,
  schema: string | undefined,
  p: string
): FlowControlMethods => {
  const q = flowControlSql(schema, p)
  const fetchSql = jobSql(schema, p).jobGetAvailable

  const readStates = (queue: string, limits: FlowControl.FlowLimits, now: number) =>
    Effect.gen(function*() {
      const states = new Map<string, { running: number; recent: Array<FlowControl.Bucket> }>()
      const state = (partition: string) => {
        let s = states.get(partition)
        if (s === undefined) states.set(partition, s = { running: 0, recent: [] })
        return s
      }
      if (limits.globalLimit !== undefined) {
        const rows = limits.partition === undefined
          ? yield* sql.unsafe<{ partition: string; running: number }>(q.runningCount, [queue])
          : yield* sql.unsafe<{ partition: string; running: number }>(q.runningByPartition, [
            queue,
            limits.partition.byKind,
            limits.partition.byArgs
          ])
        for (const row of rows) if (row.running > 0) state(row.partition).running = row.running
      }
      if (limits.rate !== undefined) {
        const rows = yield* sql.unsafe<{ partition: string; bucket_at: number; starts: number }>(q.rateState, [
          queue,
          FlowControl.windowFloor(limits.rate, now)
        ])
        for (const row of rows) state(row.partition).recent.push([Number(row.bucket_at), Number(row.starts)])
      }
      return states
    })

  const fetch = (
    params: Parameters<Driver["jobGetAvailableLimited"]>[0],
    plan: FlowControl.FetchPlan
  ): Effect.Effect<
    {
      readonly jobs: ReadonlyArray<JobRow>
      /** Each job's partition, in the same order. */
      readonly partitions: ReadonlyArray<string>
      readonly truncated: boolean
    },
    SqlError
  > => {
    const { clientId, limits, max, now, queue } = params
    if (limits.partition === undefined) {
      const cap = Math.min(max, plan.full.length > 0 ? 0 : plan.caps[0]?.[1] ?? plan.defaultCap)
      if (cap <= 0) return Effect.succeed({ jobs: [], partitions: [], truncated: false })
      return Effect.map(
        sql.unsafe<RawJobRow>(fetchSql, [queue, cap, now, clientId]),
        (raw) => ({ jobs: raw.map(decodeJobRow), partitions: raw.map(() => ""), truncated: false })
      )
    }
    const scan = scanLimit(max)
    return Effect.map(
      sql.unsafe<RawJobRow & { readonly partition: string; readonly scanned: number }>(q.fetchPartitioned, [
        queue,
        max,
        now,
        clientId,
        limits.partition.byKind,
        limits.partition.byArgs,
        plan.full,
        plan.caps.map(([partition]) => partition),
        plan.caps.map(([, n]) => n),
        Math.min(plan.defaultCap, 2_147_483_647),
        scan
      ]),
      (raw) => ({
        jobs: raw.map(decodeJobRow),
        partitions: raw.map((r) => r.partition),
        truncated: raw.length > 0 && raw.length < max && raw[0]!.scanned >= scan
      })
    )
  }

  return {
    rateLimitTableExists: Effect.map(
      sql.unsafe<{ readonly ok: boolean }>("SELECT to_regclass($1::text) IS NOT NULL AS ok", [`${p}effect_river_rate_limit`]),
      (rows) => rows[0]?.ok === true
    ),

    jobGetAvailableLimited: (params) =>
      Effect.gen(function*() {
        const { limits, now, queue } = params
        const nowMillis = now.getTime()
        yield* sql.unsafe(q.lock, [queue])
        if (limits.globalLimit !== undefined && limits.partition === undefined && limits.rate === undefined) {
          const raw = yield* sql.unsafe<RawJobRow>(q.fetchGlobal, [queue, params.max, now, params.clientId, limits.globalLimit])
          return { jobs: raw.map(decodeJobRow), truncated: false, nextRateAt: undefined } satisfies LimitedFetch
        }
        const states = yield* readStates(queue, limits, nowMillis)
        const plan = FlowControl.plan(limits, states, nowMillis)
        const { jobs, partitions, truncated } = yield* fetch(params, plan)
        let nextRateAt = plan.nextRateAt
        if (limits.rate !== undefined && jobs.length > 0) {
          const started = new Map<string, number>()
          for (const partition of partitions) started.set(partition, (started.get(partition) ?? 0) + 1)
          const bucket = FlowControl.bucketAt(limits.rate, nowMillis)
          yield* sql.unsafe(q.rateStore, [
            queue,
            FlowControl.windowFloor(limits.rate, nowMillis),
            bucket,
            [...started.keys()],
            [...started.values()]
          ])
          // A partition this fetch used up may start again later: wake then (a spurious wake, if
          // it has no job left, costs one fetch).
          for (const [partition, n] of started) {
            const recent = [...(states.get(partition)?.recent ?? []), [bucket, n] as const]
            const next = FlowControl.rateAllowance(limits.rate, recent, nowMillis).nextAt
            if (next !== undefined && (nextRateAt === undefined || next < nextRateAt)) nextRateAt = next
          }
        }
        return {
          jobs,
          truncated,
          nextRateAt: nextRateAt === undefined ? undefined : new Date(Math.ceil(nextRateAt))
        } satisfies LimitedFetch
      }).pipe(
        sql.withTransaction,
        Effect.provideService(SqlClient.BeginTransaction, "BEGIN ISOLATION LEVEL READ COMMITTED")
      )
  }
}
