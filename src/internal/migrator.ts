/**
 * The implementation of the public `Migrator` module (its notes say what each operation does):
 * planning from the history in `river_migration`, one transaction per version under an advisory
 * lock, and River's statement splitting. The SQL of each version comes from `migrations/`,
 * compiled into `generated/migrations.ts` (`npm run build:sql`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { DatabaseError, InvalidOptions, MigrationError } from "../Errors.ts"
import type {
  DownOptions,
  ListOptions,
  Migration,
  MigrationRun,
  MigrationStatus,
  SqlOptions,
  UpOptions,
  ValidateOptions,
  ValidationResult
} from "../Migrator.ts"
import { migrations as generatedMigrations } from "./generated/migrations.ts"
import { migrations as generatedOwnMigrations } from "./generated/ownMigrations.ts"
import { schemaPrefix, validateSchema } from "./identifiers.ts"
import { show } from "./show.ts"

/** The migration line these migrations belong to in `river_migration`. */
export const line = "main" as const

/** Every version of line `main`, oldest first (compiled from `migrations/*.sql`). */
export const migrations: ReadonlyArray<Migration> = generatedMigrations

/** The newest version of line `main` this library knows. */
export const latestVersion: number = migrations.length

/** effect-river's own migration line (flow-control state River's schema has no place for). */
export const ownLine = "effect-river" as const

/** Every version of line `effect-river`, oldest first (compiled from `migrations/effect-river/*.sql`). */
export const ownMigrations: ReadonlyArray<Migration> = generatedOwnMigrations

/** A migration line: its name in `river_migration` and its versions. */
interface Line {
  readonly name: typeof line | typeof ownLine
  readonly migrations: ReadonlyArray<Migration>
}

const MAIN: Line = { name: line, migrations }
const OWN: Line = { name: ownLine, migrations: ownMigrations }

/** The version of `main` that adds `river_migration.line`: other lines need it. */
const LINE_COLUMN_VERSION = 5

const lineOf = (name: string | undefined): Effect.Effect<Line, InvalidOptions> =>
  name === undefined || name === line
    ? Effect.succeed(MAIN)
    : name === ownLine
    ? Effect.succeed(OWN)
    : Effect.fail(new InvalidOptions({ field: "line", rule: `must be "${line}" or "${ownLine}"`, value: show(name) }))

/** The public `Migrator.up`. */
export const up = Effect.fn("Migrator.up")(function*(
  options: UpOptions = {}
): Effect.fn.Return<ReadonlyArray<MigrationRun>, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> {
  const schema = yield* validateSchema(options.schema)
  const only = options.line === undefined ? undefined : yield* lineOf(options.line)
  const first = only ?? MAIN
  const target = yield* checkVersion(first, "target version", options.targetVersion, first.migrations.length)
  const client = (yield* SqlClient.SqlClient).withoutTransforms()
  const runs = [...yield* upLine(client, schema, first, target)]
  // Without a line or a target: River's line, then effect-river's own.
  if (only === undefined && options.targetVersion === undefined) runs.push(...yield* upLine(client, schema, OWN, OWN.migrations.length))
  return runs
})

/** Runs the versions `plan` picks, one transaction each, until it picks none; the runs in order. */
const runLine = Effect.fnUntraced(function*(
  client: SqlClient.SqlClient,
  schema: string | undefined,
  of: Line,
  direction: "up" | "down",
  plan: (state: State, first: boolean) => Migration | MigrationError | undefined
) {
  const runs: Array<MigrationRun> = []
  while (true) {
    const run = yield* step(client, schema, of, `Migrator.${direction}`, (state) => plan(state, runs.length === 0), direction)
    if (run === undefined) return runs
    runs.push(run)
  }
})

const upLine = (client: SqlClient.SqlClient, schema: string | undefined, of: Line, target: number) =>
  runLine(client, schema, of, "up", (state, first) => {
    if (first && target < state.current) {
      return new MigrationError({
        reason: "InvalidTarget",
        detail: `target version ${target} is below the current version ${state.current}; use down to revert`
      })
    }
    if (of !== MAIN && state.current < target && !state.hasLine) {
      return new MigrationError({
        reason: "InvalidTarget",
        detail: `migration line ${of.name} needs line ${line} at version ${LINE_COLUMN_VERSION} or later; run up for line ${line} first`
      })
    }
    return state.current < target ? of.migrations[state.current] : undefined
  })

/** The public `Migrator.down`. */
export const down = Effect.fn("Migrator.down")(function*(
  options: DownOptions
): Effect.fn.Return<ReadonlyArray<MigrationRun>, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> {
  const schema = yield* validateSchema(options.schema)
  const of = yield* lineOf(options.line)
  const target = yield* checkVersion(of, "target version", options.targetVersion, undefined)
  const client = (yield* SqlClient.SqlClient).withoutTransforms()
  const runs: Array<MigrationRun> = []
  // Below version 5 River's history has no lines: effect-river's own line is reverted first.
  if (of === MAIN && target < LINE_COLUMN_VERSION) runs.push(...yield* downLine(client, schema, OWN, 0))
  runs.push(...yield* downLine(client, schema, of, target))
  return runs
})

const downLine = (client: SqlClient.SqlClient, schema: string | undefined, of: Line, target: number) =>
  runLine(client, schema, of, "down", (state, first) => {
    if (first && target > state.current) {
      return new MigrationError({
        reason: "InvalidTarget",
        detail: `target version ${target} is above the current version ${state.current}; use up to apply`
      })
    }
    return state.current > target ? of.migrations[state.current - 1] : undefined
  })

/** The public `Migrator.list`. */
export const list = Effect.fn("Migrator.list")(function*(
  options: ListOptions = {}
): Effect.fn.Return<MigrationStatus, InvalidOptions | DatabaseError, SqlClient.SqlClient> {
  const schema = yield* validateSchema(options.schema)
  const of = yield* lineOf(options.line)
  const client = (yield* SqlClient.SqlClient).withoutTransforms()
  const state = yield* readState(client, schema, of).pipe(Effect.mapError(DatabaseError.fromSqlError("Migrator.list")))
  return {
    current: state.current,
    applied: state.rows.map((row) => ({
      version: row.version,
      name: of.migrations[row.version - 1]?.name,
      createdAt: row.createdAt
    })),
    pending: of.migrations
      .filter((m) => m.version > state.current)
      .map((m) => ({ version: m.version, name: m.name }))
  }
})

/** The public `Migrator.validate`. */
export const validate = Effect.fn("Migrator.validate")(function*(
  options: ValidateOptions = {}
): Effect.fn.Return<ValidationResult, MigrationError | InvalidOptions | DatabaseError, SqlClient.SqlClient> {
  const schema = yield* validateSchema(options.schema)
  const of = yield* lineOf(options.line)
  const target = yield* checkVersion(of, "target version", options.targetVersion, of.migrations.length)
  const client = (yield* SqlClient.SqlClient).withoutTransforms()
  const state = yield* readState(client, schema, of).pipe(Effect.mapError(DatabaseError.fromSqlError("Migrator.validate")))
  if (state.current > of.migrations.length) return { ok: false, messages: [aheadError(of, state.current).detail] }
  const applied = new Set(state.rows.map((row) => row.version))
  const missing = of.migrations.filter((m) => m.version <= target && !applied.has(m.version)).map((m) => m.version)
  return missing.length === 0
    ? { ok: true, messages: [] }
    : { ok: false, messages: [`Unapplied migrations: [${missing.join(" ")}]`] }
})

/** The public `Migrator.sql`. */
export const sql = Effect.fnUntraced(function*(
  options: SqlOptions
): Effect.fn.Return<string, MigrationError | InvalidOptions> {
  const schema = yield* validateSchema(options.schema)
  const of = yield* lineOf(options.line)
  const goingUp = options.direction === "up"
  const from = yield* checkVersion(of, "from version", options.fromVersion, goingUp ? 0 : of.migrations.length)
  const target = yield* checkVersion(of, "target version", options.targetVersion, goingUp ? of.migrations.length : 0)
  if (goingUp ? from > target : target > from) {
    return yield* new MigrationError({
      reason: "InvalidTarget",
      detail: goingUp
        ? `cannot go up from version ${from} to version ${target}`
        : `cannot go down from version ${from} to version ${target}`
    })
  }
  const selected = goingUp
    ? of.migrations.filter((m) => m.version > from && m.version <= target)
    : of.migrations.filter((m) => m.version > target && m.version <= from).reverse()
  return selected
    .map((m) =>
      `-- ${of === MAIN ? "River" : "effect-river"} migration line ${of.name}, version ${m.version} (${m.name}), ${options.direction}\n` +
      render(goingUp ? m.up : m.down, schema)
    )
    .join("\n")
})


/** The history of one line as stored. */
interface State {
  /** Whether `river_migration` has River's `line` column (version 5 and later of `main`). */
  readonly hasLine: boolean
  readonly current: number
  readonly rows: ReadonlyArray<{ readonly version: number; readonly createdAt: Date }>
}

/** Arbitrary first key of the advisory lock (ASCII "RIVM"); the second is the schema's hash. */
const LOCK_CLASS = 0x5249564d

const PLACEHOLDER = /\/\* TEMPLATE: schema \*\//g

const render = (text: string, schema: string | undefined): string => text.replace(PLACEHOLDER, schemaPrefix(schema))

const checkVersion = (
  of: Line,
  field: string,
  value: number | undefined,
  fallback: number | undefined
): Effect.Effect<number, MigrationError> => {
  if (value === undefined && fallback !== undefined) return Effect.succeed(fallback)
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    return Effect.fail(new MigrationError({ reason: "InvalidTarget", detail: `${field} must be an integer (got ${show(value)})` }))
  }
  if (value < 0 || value > of.migrations.length) {
    return Effect.fail(new MigrationError({
      reason: "UnknownVersion",
      detail: `${field} ${value} is not a version of migration line ${of.name} (0 to ${of.migrations.length})`
    }))
  }
  return Effect.succeed(value)
}

const aheadError = (of: Line, current: number) =>
  new MigrationError({
    reason: "DatabaseAhead",
    detail: `the database is at version ${current} of migration line ${of.name}, but this version of effect-river ` +
      `only knows versions up to ${of.migrations.length}; upgrade effect-river`
  })

/** Whether `river_migration` exists (through the search_path when no schema) and has River's `line` column. */
const readTable = Effect.fnUntraced(function*(client: SqlClient.SqlClient, schema: string | undefined) {
  const rows = yield* client<{ exists: boolean; has_line: boolean }>`
    SELECT r.oid IS NOT NULL AS exists,
           EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = r.oid AND a.attname = 'line' AND NOT a.attisdropped) AS has_line
    FROM (SELECT pg_catalog.to_regclass(${`${schemaPrefix(schema)}river_migration`}::text) AS oid) r`
  return { exists: rows[0]?.exists === true, hasLine: rows[0]?.has_line === true }
})

const readState = Effect.fnUntraced(function*(client: SqlClient.SqlClient, schema: string | undefined, of: Line) {
  const table = yield* readTable(client, schema)
  if (!table.exists) return { hasLine: false, current: 0, rows: [] } satisfies State
  // Before the line column only line `main` exists.
  if (!table.hasLine && of !== MAIN) return { hasLine: false, current: 0, rows: [] } satisfies State
  const name = client.literal(`${schemaPrefix(schema)}river_migration`)
  const rows = table.hasLine
    ? yield* client<{ version: bigint | number | string; created_at: Date }>`
        SELECT version, created_at FROM ${name} WHERE line = ${of.name} ORDER BY version`
    : yield* client<{ version: bigint | number | string; created_at: Date }>`
        SELECT version, created_at FROM ${name} ORDER BY version`
  const history = rows.map((row) => ({ version: Number(row.version), createdAt: new Date(row.created_at) }))
  return {
    hasLine: table.hasLine,
    current: history.reduce((max, row) => Math.max(max, row.version), 0),
    rows: history
  } satisfies State
})

/**
 * One transaction: lock, read the history, let `plan` pick the version to run (or stop, or
 * fail), run it and record it. Returns `undefined` when there is nothing left to do.
 */
const step = (
  client: SqlClient.SqlClient,
  schema: string | undefined,
  of: Line,
  operation: string,
  plan: (state: State) => Migration | MigrationError | undefined,
  direction: "up" | "down"
): Effect.Effect<MigrationRun | undefined, MigrationError | DatabaseError> => {
  // The version this transaction runs, once chosen: a failing COMMIT is that version's failure.
  let chosen: Migration | undefined
  const failed = (migration: Migration) => (error: SqlError) =>
    new MigrationError({
      reason: "Failed",
      detail: `version ${migration.version} (${migration.name}) ${direction} failed: ${serverMessage(error)}`
    })
  return Effect.gen(function*() {
    const state = yield* Effect.gen(function*() {
      yield* client`SELECT pg_catalog.pg_advisory_xact_lock(${LOCK_CLASS}::int4, pg_catalog.hashtext(coalesce(${
        schema ?? null
      }::text, pg_catalog.current_schema(), '')))`
      return yield* readState(client, schema, of)
    }).pipe(Effect.mapError(DatabaseError.fromSqlError(operation)))
    if (state.current > of.migrations.length) return yield* aheadError(of, state.current)
    const planned = plan(state)
    if (planned === undefined) return undefined
    if (planned instanceof MigrationError) return yield* planned
    const migration = planned
    chosen = migration
    const [duration] = yield* Effect.timed(
      (direction === "up" ? applyUp(client, schema, of, migration) : applyDown(client, schema, of, migration)).pipe(
        Effect.mapError(failed(migration))
      )
    )
    return { line: of.name, version: migration.version, name: migration.name, duration }
  }).pipe(
    client.withTransaction,
    // READ COMMITTED: the history is read after the lock is granted, so it must see what the
    // lock holder committed (a snapshot taken by the lock statement would not).
    Effect.provideService(SqlClient.BeginTransaction, "BEGIN ISOLATION LEVEL READ COMMITTED"),
    Effect.catchTag("SqlError", (error) =>
      Effect.fail(chosen === undefined ? DatabaseError.fromSqlError(operation)(error) : failed(chosen)(error)))
  )
}

/** The server's message when there is one (the driver keeps it in the reason's cause), else the driver's. */
const serverMessage = (error: SqlError): string => {
  const cause: unknown = (error.reason as { readonly cause?: unknown }).cause
  const message = typeof cause === "object" && cause !== null ? (cause as { readonly message?: unknown }).message : undefined
  return typeof message === "string" && message !== "" ? message : error.message
}

const applyUp = Effect.fnUntraced(function*(
  client: SqlClient.SqlClient,
  schema: string | undefined,
  of: Line,
  migration: Migration
) {
  if (schema !== undefined && migration.version === 1 && of === MAIN) {
    yield* client`CREATE SCHEMA IF NOT EXISTS ${client(schema)}`
  }
  yield* runStatements(client, render(migration.up, schema))
  const name = client.literal(`${schemaPrefix(schema)}river_migration`)
  const table = yield* readTable(client, schema)
  if (table.hasLine) {
    yield* client`INSERT INTO ${name} (line, version) VALUES (${of.name}, ${migration.version})`
  } else {
    yield* client`INSERT INTO ${name} (version) VALUES (${migration.version})`
  }
})

const applyDown = Effect.fnUntraced(function*(
  client: SqlClient.SqlClient,
  schema: string | undefined,
  of: Line,
  migration: Migration
) {
  // Delete the row first: version 1's down drops the table, version 5's changes its shape.
  const name = client.literal(`${schemaPrefix(schema)}river_migration`)
  const table = yield* readTable(client, schema)
  if (table.hasLine) {
    yield* client`DELETE FROM ${name} WHERE line = ${of.name} AND version = ${migration.version}`
  } else if (table.exists) {
    yield* client`DELETE FROM ${name} WHERE version = ${migration.version}`
  }
  yield* runStatements(client, render(migration.down, schema))
})

const runStatements = (client: SqlClient.SqlClient, text: string) =>
  Effect.forEach(splitStatements(text), (statement) => client.unsafe(statement).unprepared, { discard: true })

const DOLLAR_TAG = /\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/y

/**
 * Splits a migration file into statements: the driver sends each statement separately
 * (extended protocol), which rejects several commands in one. Understands `--` and nested
 * block comments, quoted strings and identifiers, and dollar-quoted bodies. Chunks holding
 * only comments are dropped.
 */
const splitStatements = (text: string): Array<string> => {
  const statements: Array<string> = []
  let start = 0
  let hasCode = false
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i)
      i = end === -1 ? text.length : end + 1
    } else if (c === "/" && text[i + 1] === "*") {
      let depth = 1
      i += 2
      while (i < text.length && depth > 0) {
        if (text.startsWith("/*", i)) {
          depth++
          i += 2
        } else if (text.startsWith("*/", i)) {
          depth--
          i += 2
        } else {
          i++
        }
      }
    } else if (c === "'" || c === "\"") {
      hasCode = true
      i++
      while (i < text.length) {
        if (text[i] === c) {
          if (text[i + 1] !== c) break
          i++
        }
        i++
      }
      i++
    } else if (c === "$" && !/[A-Za-z0-9_$]/.test(text[i - 1] ?? " ")) {
      DOLLAR_TAG.lastIndex = i
      const tag = DOLLAR_TAG.exec(text)?.[0]
      hasCode = true
      if (tag === undefined) {
        i++
      } else {
        const end = text.indexOf(tag, i + tag.length)
        i = end === -1 ? text.length : end + tag.length
      }
    } else if (c === ";") {
      if (hasCode) statements.push(text.slice(start, i).trim())
      start = i + 1
      hasCode = false
      i++
    } else {
      if (!/\s/.test(c)) hasCode = true
      i++
    }
  }
  if (hasCode) statements.push(text.slice(start).trim())
  return statements
}
