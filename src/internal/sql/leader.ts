/**
 * SQL for River's leader election (`river_leader`, §8.1). Unlike job SQL, these statements use
 * the database's `now()` on purpose: River's protocol measures every lease on the database
 * clock, so processes with skewed clocks (and River's Go clients) agree on who leads.
 * Terms are identified by `elected_at` in integer microseconds (a JS Date would lose them).
 *
 * @internal
 */
import { channelSql } from "./job.ts"

export const makeLeaderSql = (schema: string | undefined, p: string) => ({
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
SELECT count(pg_notify(${channelSql(schema, "river_leadership")},
  json_build_object('leader_id', leader_id, 'action', 'resigned')::text))::int AS n FROM deleted`,

  /** The current leader, if any. */
  leaderGet: `SELECT leader_id, expires_at FROM ${p}river_leader WHERE name = 'default'`
})

export type LeaderSql = ReturnType<typeof makeLeaderSql>
