/**
 * What the `effect-river` subcommands share: the root command with the `--database-url` /
 * `--schema` options every subcommand takes (before or after its name), the database connection
 * they open, and `CliError`, a failure printed as one line. Parsing is Effect's CLI module
 * (`effect/cli`); the commands are composed and run in `main.ts`.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import { isSqlError } from "effect/sql/SqlError"

/** Bad command-line input, or any failure to print as is. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/**
 * The root command and its shared options; a subcommand reads them with `yield* root` (see
 * {@link connection}).
 */
export const root = Command.make("effect-river").pipe(
  Command.withSharedFlags({
    databaseUrl: Flag.String("database-url").pipe(
      Flag.withDescription("PostgreSQL URL (default: $DATABASE_URL)"),
      Flag.optional
    ),
    schema: Flag.String("schema").pipe(
      Flag.withDescription("Schema holding River's tables (default: the connection's search_path)"),
      Flag.optional
    )
  }),
  Command.withDescription("River's PostgreSQL job queue for Effect")
)

/** The shared options as plain values. */
export const connection = Effect.map(root, ({ databaseUrl, schema }) => ({
  databaseUrl: Option.getOrUndefined(databaseUrl),
  schema: Option.getOrUndefined(schema)
}))

const DATABASE_URL_SHAPE = "expected postgres://user:password@host:port/database"

/** Runs `effect` against the database named by `--database-url` or `DATABASE_URL`. */
export const withDatabase = (option: string | undefined) =>
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
  // Migrator and Client report their own SQL failures; a SqlError left over comes from building the client.
  return effect.pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 })),
    Effect.mapError((error) =>
      isSqlError(error) ? new CliError({ message: `cannot use the database: ${error.message}` }) : error as E
    )
  )
}

/**
 * Parses an integer option value from `min` to `max`; `outOfRange` words the error for an
 * integer outside them (the value is quoted as typed, never rounded).
 */
export const parseInteger = (
  value: string | undefined,
  option: string,
  range: {
    readonly min: number
    readonly max: number
    readonly outOfRange: (text: string) => string
  } = {
    min: Number.MIN_SAFE_INTEGER,
    max: Number.MAX_SAFE_INTEGER,
    outOfRange: (text) => `--${option} ${text} is too large`
  }
): Effect.Effect<number | undefined, CliError> => {
  if (value === undefined) return Effect.succeed(undefined)
  const text = value.trim()
  if (!/^-?\d+$/.test(text)) {
    return Effect.fail(new CliError({ message: `--${option} must be an integer (got ${JSON.stringify(value)})` }))
  }
  const n = BigInt(text)
  if (n < BigInt(range.min) || n > BigInt(range.max)) {
    return Effect.fail(new CliError({ message: range.outOfRange(text) }))
  }
  return Effect.succeed(Number(n))
}
