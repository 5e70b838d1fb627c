/**
 * Per-file database isolation. `freshDatabase` creates a new database on the run's server
 * (named after the file plus a random suffix), yields a PgClient for it and drops it when the
 * layer closes. Pool fibers are pinned to the live clock so tests may use TestClock freely.
 */
import { PgClient } from "@effect/sql-pg"
import { Clock, Context, Effect, Layer, Redacted } from "effect"
import { inject } from "vitest"
import * as Testing from "../../src/Testing.ts"

export const serverUrl = (): string => inject("DATABASE_URL")

export const urlForDatabase = (database: string): string => {
  const url = new URL(serverUrl())
  url.pathname = `/${database}`
  return url.toString()
}

const adminLayer = () => PgClient.layer({ url: Redacted.make(serverUrl()), maxConnections: 1 })

let counter = 0
export const uniqueName = (prefix: string): string =>
  `${prefix.replace(/[^a-z0-9_]/gi, "_").toLowerCase().slice(0, 30)}_${process.pid}_${++counter}_${
    Math.random().toString(36).slice(2, 8)
  }`

/** Creates an empty database; returns its name. Drops it when the scope closes. */
export const createDatabase = (prefix: string) =>
  Effect.gen(function*() {
    const name = uniqueName(prefix)
    // The admin pool lives in the caller's scope so that the DROP finalizer (registered after it,
    // hence run before it closes) still has a connection.
    const context = yield* Layer.build(adminLayer())
    const admin = Context.get(context, PgClient.PgClient)
    yield* admin.unsafe(`CREATE DATABASE "${name}"`)
    yield* Effect.addFinalizer(() => admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).pipe(Effect.ignore))
    return name
  })

/** A PgClient layer (`Testing.database`: its pool on the live clock) on a new, empty database of its own. */
export const freshDatabase = (prefix = "t", options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const name = yield* createDatabase(prefix)
    return Testing.database(urlForDatabase(name), { maxConnections: options.maxConnections ?? 10 })
  })).pipe(Layer.provide(Layer.sync(Clock.Clock, () => Clock.Clock.defaultValue())))
