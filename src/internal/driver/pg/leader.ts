/**
 * `river_leader` for PostgreSQL (River §8.1). Unlike the job statements, these use the database's
 * `now()` on purpose: River's protocol measures every lease on the database clock, so processes
 * with skewed clocks (and River's Go clients) agree on who leads. Terms are identified by
 * `elected_at` in integer microseconds (a JS Date would lose them). The methods' contracts are in
 * `../driver.ts`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import { channelSql, resignedPayloadSql } from "../../notification.ts"
import type { Driver } from "../driver.ts"

/** The statement texts for one schema. `p` is the quoted schema prefix (`"s".` or empty). */
export const leaderSql = (schema: string | undefined, p: string) => ({
  /** Removes an expired leader row (run before `leaderInsert`, in the same transaction). */
  leaderDeleteExpired: `DELETE FROM ${p}river_leader WHERE name = 'default' AND expires_at < now()`,

  /** Claims leadership if nobody holds it. $1 leader id, $2 TTL seconds. */
  leaderInsert: `INSERT INTO ${p}river_leader (elected_at, expires_at, leader_id, name)
VALUES (now(), now() + make_interval(secs => $2::double precision), $1::text, 'default')
ON CONFLICT (name) DO NOTHING
RETURNING (extract(epoch FROM elected_at) * 1000000)::bigint AS elected_us`,

  /** Extends the own term while it has not expired. $1 elected_us, $2 leader id, $3 TTL seconds. */
  leaderRenew: `UPDATE ${p}river_leader SET expires_at = now() + make_interval(secs => $3::double precision)
WHERE name = 'default' AND (extract(epoch FROM elected_at) * 1000000)::bigint = $1::bigint
  AND leader_id = $2::text AND expires_at >= now()
RETURNING leader_id`,

  /** Deletes exactly the own term's row and announces it. $1 elected_us, $2 leader id. */
  leaderResign: `WITH deleted AS (
  DELETE FROM ${p}river_leader
  WHERE name = 'default' AND (extract(epoch FROM elected_at) * 1000000)::bigint = $1::bigint AND leader_id = $2::text
  RETURNING leader_id
)
SELECT count(pg_notify(${channelSql(schema, "river_leadership")}, ${resignedPayloadSql("leader_id")}))::int AS n FROM deleted`
})

type LeaderMethods = Pick<Driver, "leaderAttemptElect" | "leaderAttemptReelect" | "leaderResign">

/** The `river_leader` methods of a driver over `sql`, for one schema. */
export const makeLeaderMethods = (sql: SqlClient.SqlClient, schema: string | undefined, p: string): LeaderMethods => {
  const q = leaderSql(schema, p)
  return {
    leaderAttemptElect: ({ leaderId, ttl }) =>
      sql.withTransaction(
        Effect.andThen(
          sql.unsafe(q.leaderDeleteExpired),
          sql.unsafe<{ readonly elected_us: bigint }>(q.leaderInsert, [leaderId, Duration.toSeconds(ttl)])
        )
      ).pipe(Effect.map((rows) => rows[0]?.elected_us)),

    leaderAttemptReelect: ({ leaderId, term, ttl }) =>
      Effect.map(sql.unsafe(q.leaderRenew, [term, leaderId, Duration.toSeconds(ttl)]), (rows) => rows.length > 0),

    leaderResign: ({ leaderId, term }) =>
      Effect.map(sql.unsafe<{ readonly n: number }>(q.leaderResign, [term, leaderId]), (rows) => (rows[0]?.n ?? 0) > 0)
  }
}
