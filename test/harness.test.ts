import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { freshDatabase } from "./utils/db.ts"

describe("test harness", () => {
  it.layer(freshDatabase("harness"))((it) => {
    it.effect("each file gets its own empty database", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ db: string; tables: number }>`
          SELECT current_database() AS db,
                 (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public') AS tables`
        assert.match(row!.db, /^harness_/)
        assert.strictEqual(row!.tables, 0)
      }))
  })
})
