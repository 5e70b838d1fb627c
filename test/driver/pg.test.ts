/**
 * The driver conformance suite (conformance.ts) against the PostgreSQL driver: a database for
 * this file, a migrated schema per test.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { makePgDriver } from "../../src/internal/driver/pg/driver.ts"
import * as Testing from "../../src/Testing.ts"
import { freshDatabase } from "../utils/db.ts"
import { driverConformance } from "./conformance.ts"

driverConformance({
  name: "PostgreSQL",
  layer: freshDatabase("driver"),
  freshDriver: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return makePgDriver(sql, yield* Testing.freshSchema("d"))
  })
})
