/**
 * The PostgreSQL driver: `../driver.ts`'s statements over an `@effect/sql` `SqlClient`, one file
 * per table (`job.ts`, `queue.ts`, `leader.ts`; `flowControl.ts` for the fetch under limits and
 * effect-river's own rate table) and the statements of no table here. Built once per
 * schema: every text is made when the driver is, and sent as the same static text each time
 * (prepared once per connection by the driver).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as SqlClient from "effect/sql/SqlClient"
import { schemaPrefix } from "../../identifiers.ts"
import { channelSql } from "../../notification.ts"
import type { Driver } from "../driver.ts"
import { makeFlowControlMethods } from "./flowControl.ts"
import { makeJobMethods } from "./job.ts"
import { makeLeaderMethods } from "./leader.ts"
import { makeQueueMethods } from "./queue.ts"

/** The driver for `schema` (validated; `undefined`: the connection's search path) over `sql`. */
export const makePgDriver = (sql: SqlClient.SqlClient, schema: string | undefined): Driver => {
  const p = schemaPrefix(schema)
  const insertNotify = `SELECT count(pg_notify(${channelSql(schema, "river_insert")}, payload))::int AS n FROM unnest($1::text[]) AS payload`
  const controlNotify = `SELECT count(pg_notify(${channelSql(schema, "river_control")}, payload))::int AS n FROM unnest($1::text[]) AS payload`
  const leadershipNotify =
    `SELECT count(pg_notify(${channelSql(schema, "river_leadership")}, payload))::int AS n FROM unnest($1::text[]) AS payload`
  return {
    schema,
    ...makeJobMethods(sql, schema, p),
    ...makeFlowControlMethods(sql, schema, p),
    ...makeLeaderMethods(sql, schema, p),
    ...makeQueueMethods(sql, schema, p),

    notifyMany: ({ payloads, topic }) =>
      Effect.asVoid(
        sql.unsafe(topic === "river_insert" ? insertNotify : topic === "river_control" ? controlNotify : leadershipNotify, [
          payloads
        ])
      ),

    databaseTime: Effect.map(
      sql.unsafe<{ readonly now_ms: number }>("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms"),
      (rows) => Number(rows[0]!.now_ms)
    ),

    schemaCurrent: schema !== undefined
      ? Effect.succeed(schema)
      : Effect.map(sql.unsafe<{ readonly schema: string }>("SELECT current_schema() AS schema"), (rows) => rows[0]!.schema)
  }
}
