/**
 * Test fixtures on a migrated River schema: each test gets a schema of its own, dropped when
 * the test's scope closes, so no test sees another's jobs.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as Client from "../../src/Client.ts"
import * as Migrator from "../../src/Migrator.ts"
import { uniqueName } from "./db.ts"

/** Creates and migrates a new schema; drops it at the end of the scope. */
export const migratedSchema = (prefix = "s") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = uniqueName(prefix).slice(0, 46)
    yield* Migrator.up({ schema })
    yield* Effect.addFinalizer(() => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.ignore))
    return schema
  })

/** A client on a fresh migrated schema. */
export const clientOnFreshSchema = (options: Omit<Client.ClientOptions, "schema"> = {}) =>
  Effect.gen(function*() {
    const schema = yield* migratedSchema("c")
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
