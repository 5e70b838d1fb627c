/**
 * Test fixtures on a migrated River schema (`Testing.freshSchema`: each test gets a schema of its
 * own, dropped when the test's scope closes, so no test sees another's jobs).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../../src/Client.ts"
import * as Testing from "../../src/Testing.ts"

/** A client on a fresh migrated schema. */
export const clientOnFreshSchema = (options: Omit<Client.ClientOptions, "schema"> = {}) =>
  Effect.gen(function*() {
    const schema = yield* Testing.freshSchema("c")
    const client = yield* Client.make({ ...options, schema })
    return { client, schema }
  })

/** Counts rows of river_job in a schema. */
export const countJobs = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".river_job`)
    return rows[0]!.n
  })
