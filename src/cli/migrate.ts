/**
 * `effect-river migrate up|down|list|validate|get`: the command-line face of `Migrator`.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import { isSqlError } from "effect/sql/SqlError"
import * as Migrator from "../Migrator.ts"
import { CliError, type Command, parseInteger, parseOptions } from "./command.ts"

const help = `Usage: effect-river migrate <up|down|list|validate|get> [options]

Applies, reverts, lists or prints River's schema migrations (line ${Migrator.line}, versions 1 to ${Migrator.latestVersion}),
recorded in River's river_migration table. Each version runs in its own transaction.

Commands:
  up      Apply pending versions up to --target-version (default: ${Migrator.latestVersion})
  down    Revert applied versions above --target-version (required; 0 reverts everything)
  list    Show applied and pending versions
  validate  Exit 1 unless every version up to --target-version (default: latest) is applied
  get     Print the SQL of --up or --down from --from-version to --target-version (no database)

Options:
  --database-url <url>   PostgreSQL URL (default: $DATABASE_URL); up, down, list and validate
  --schema <name>        Schema holding River's tables (default: the connection's search_path)
  --target-version <n>   Version to end at
  --from-version <n>     get: version to start from (default: 0 going up, ${Migrator.latestVersion} going down)
  --up | --down          get: direction
  -h, --help             Show this help

Examples:
  effect-river migrate up --database-url postgres://user:pass@localhost:5432/app
  effect-river migrate down --target-version 6 --schema jobs
  effect-river migrate get --up --schema jobs > river.sql`

const connection = { "database-url": { type: "string" }, schema: { type: "string" }, help: { type: "boolean", short: "h" } } as const

const DATABASE_URL_SHAPE = "expected postgres://user:password@host:port/database"

/** Runs `effect` against the database named by `--database-url` or `DATABASE_URL`. */
const withDatabase = (option: string | undefined) =>
<A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>): Effect.Effect<A, E | CliError> => {
  const url = option ?? process.env.DATABASE_URL
  if (url === undefined || url.trim() === "") {
    return Effect.fail(new CliError({ message: "no database URL: pass --database-url or set DATABASE_URL" }))
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Effect.fail(new CliError({ message: `invalid database URL: ${DATABASE_URL_SHAPE}` }))
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return Effect.fail(new CliError({ message: `invalid database URL scheme "${parsed.protocol}": ${DATABASE_URL_SHAPE}` }))
  }
  // Migrator reports its own SQL failures; a SqlError left over comes from building the client.
  return effect.pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })),
    Effect.mapError((error) =>
      isSqlError(error) ? new CliError({ message: `cannot use the database: ${error.message}` }) : error as E
    )
  )
}

const ms = (duration: Duration.Duration) => `${Math.round(Duration.toMillis(duration))} ms`

/**
 * A version option. An integer too large for a number gets one line naming the range, the text
 * quoted as typed (never rounded); every other integer goes to the migrator, which says which
 * versions exist.
 */
const parseVersion = (value: string | undefined, option: string) =>
  parseInteger(value, option, {
    min: Number.MIN_SAFE_INTEGER,
    max: Number.MAX_SAFE_INTEGER,
    outOfRange: (text) => `--${option} ${text} is not a version of migration line ${Migrator.line} (0 to ${Migrator.latestVersion})`
  })

const statusLine = (current: number) =>
  `migration line ${Migrator.line} is at version ${current} (latest: ${Migrator.latestVersion})`

const up = Effect.fnUntraced(function*(args: ReadonlyArray<string>) {
  const options = yield* parseOptions(args, { ...connection, "target-version": { type: "string" } }, "migrate up")
  if (options.help === true) return yield* Console.log(help)
  const targetVersion = yield* parseVersion(options["target-version"], "target-version")
  yield* Effect.gen(function*() {
    const runs = yield* Migrator.up({ schema: options.schema, targetVersion })
    for (const run of runs) {
      yield* Console.log(`applied ${run.line === "main" ? "" : `${run.line} `}version ${run.version} ${run.name} (${ms(run.duration)})`)
    }
    const status = yield* Migrator.list({ schema: options.schema })
    yield* Console.log(runs.length === 0 ? `nothing to apply: ${statusLine(status.current)}` : statusLine(status.current))
  }).pipe(withDatabase(options["database-url"]))
})

const down = Effect.fnUntraced(function*(args: ReadonlyArray<string>) {
  const options = yield* parseOptions(args, { ...connection, "target-version": { type: "string" } }, "migrate down")
  if (options.help === true) return yield* Console.log(help)
  const targetVersion = yield* parseVersion(options["target-version"], "target-version")
  if (targetVersion === undefined) {
    return yield* new CliError({ message: "migrate down needs --target-version (0 reverts everything)" })
  }
  yield* Effect.gen(function*() {
    const runs = yield* Migrator.down({ schema: options.schema, targetVersion })
    for (const run of runs) {
      yield* Console.log(`reverted ${run.line === "main" ? "" : `${run.line} `}version ${run.version} ${run.name} (${ms(run.duration)})`)
    }
    const status = yield* Migrator.list({ schema: options.schema })
    yield* Console.log(runs.length === 0 ? `nothing to revert: ${statusLine(status.current)}` : statusLine(status.current))
  }).pipe(withDatabase(options["database-url"]))
})

const list = Effect.fnUntraced(function*(args: ReadonlyArray<string>) {
  const options = yield* parseOptions(args, connection, "migrate list")
  if (options.help === true) return yield* Console.log(help)
  const status = yield* Migrator.list({ schema: options.schema }).pipe(withDatabase(options["database-url"]))
  const rows: Array<readonly [string, string, string]> = [
    ["version", "name", "applied at"],
    ...status.applied.map((m) => [String(m.version), m.name ?? "(unknown)", m.createdAt.toISOString()] as const),
    ...status.pending.map((m) => [String(m.version), m.name, "pending"] as const)
  ]
  const width = Math.max(...rows.map((r) => r[1].length))
  for (const [version, name, when] of rows) yield* Console.log(`${version.padEnd(7)}  ${name.padEnd(width)}  ${when}`)
  yield* Console.log(statusLine(status.current))
  if (status.current > Migrator.latestVersion) {
    return yield* new CliError({
      message: `the database is at version ${status.current} of migration line ${Migrator.line}, ahead of this ` +
        `effect-river (latest: ${Migrator.latestVersion}); upgrade effect-river`
    })
  }
})

const validate = Effect.fnUntraced(function*(args: ReadonlyArray<string>) {
  const options = yield* parseOptions(args, { ...connection, "target-version": { type: "string" } }, "migrate validate")
  if (options.help === true) return yield* Console.log(help)
  const targetVersion = yield* parseInteger(options["target-version"], "target-version")
  const result = yield* Migrator.validate({ schema: options.schema, targetVersion }).pipe(
    withDatabase(options["database-url"])
  )
  if (!result.ok) return yield* new CliError({ message: `migrations not valid: ${result.messages.join("; ")}` })
  yield* Console.log("migrations are valid")
})

const get = Effect.fnUntraced(function*(args: ReadonlyArray<string>) {
  const options = yield* parseOptions(args, {
    schema: { type: "string" },
    help: { type: "boolean", short: "h" },
    up: { type: "boolean" },
    down: { type: "boolean" },
    "from-version": { type: "string" },
    "target-version": { type: "string" }
  }, "migrate get")
  if (options.help === true) return yield* Console.log(help)
  if ((options.up === true) === (options.down === true)) {
    return yield* new CliError({ message: "migrate get needs exactly one of --up or --down" })
  }
  const direction = options.up === true ? "up" : "down"
  const text = yield* Migrator.sql({
    direction,
    schema: options.schema,
    fromVersion: yield* parseVersion(options["from-version"], "from-version"),
    targetVersion: yield* parseVersion(options["target-version"], "target-version")
  })
  yield* Console.log(text === "" ? `-- nothing to run ${direction}` : text.trimEnd())
})

const subcommands: Record<string, (args: ReadonlyArray<string>) => Effect.Effect<void, { readonly message: string }>> = {
  up,
  down,
  list,
  validate,
  get
}

/** `effect-river migrate`. */
export const migrate: Command = {
  name: "migrate",
  summary: `apply, revert, list, validate or print River's schema migrations (line ${Migrator.line}, versions 1 to ${Migrator.latestVersion})`,
  run: (args) => {
    const [name, ...rest] = args
    if (name === undefined || name === "--help" || name === "-h" || name === "help") return Console.log(help)
    const subcommand = subcommands[name]
    return subcommand === undefined
      ? Effect.fail(new CliError({ message: `unknown migrate command "${name}": expected up, down, list, validate or get; see --help` }))
      : subcommand(rest)
  }
}
