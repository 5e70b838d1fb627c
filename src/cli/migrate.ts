/**
 * `effect-river migrate up|down|list|validate|get`: the command-line face of `Migrator`, parsed
 * with Effect's CLI module (`effect/cli`).
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Migrator from "../Migrator.ts"
import { CliError, connection, parseInteger, withDatabase } from "./command.ts"

const ms = (duration: Duration.Duration) => `${Math.round(Duration.toMillis(duration))} ms`

/**
 * A version option. An integer too large for a number gets one line naming the range, the text
 * quoted as typed (never rounded); every other integer goes to the migrator, which says which
 * versions exist.
 */
const parseVersion = (value: Option.Option<string>, option: string) =>
  parseInteger(Option.getOrUndefined(value), option, {
    min: Number.MIN_SAFE_INTEGER,
    max: Number.MAX_SAFE_INTEGER,
    outOfRange: (text) => `--${option} ${text} is not a version of migration line ${Migrator.line} (0 to ${Migrator.latestVersion})`
  })

const statusLine = (current: number) =>
  `migration line ${Migrator.line} is at version ${current} (latest: ${Migrator.latestVersion})`

/** A version flag, as text: the handler parses it (see {@link parseVersion}). */
const versionFlag = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.withMetavar("n"), Flag.optional)

const up = Command.make("up", {
  targetVersion: versionFlag("target-version", `Version to end at (default: ${Migrator.latestVersion})`)
}, (input) =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    const targetVersion = yield* parseVersion(input.targetVersion, "target-version")
    yield* Effect.gen(function*() {
      const runs = yield* Migrator.up({ schema, targetVersion })
      for (const run of runs) yield* Console.log(`applied ${run.line === "main" ? "" : `${run.line} `}version ${run.version} ${run.name} (${ms(run.duration)})`)
      const status = yield* Migrator.list({ schema })
      yield* Console.log(runs.length === 0 ? `nothing to apply: ${statusLine(status.current)}` : statusLine(status.current))
    }).pipe(withDatabase(databaseUrl))
  })).pipe(Command.withDescription(`Apply pending versions up to --target-version (default: ${Migrator.latestVersion})`))

const down = Command.make("down", {
  targetVersion: versionFlag("target-version", "Version to end at (required; 0 reverts everything)")
}, (input) =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    const targetVersion = yield* parseVersion(input.targetVersion, "target-version")
    if (targetVersion === undefined) {
      return yield* new CliError({ message: "migrate down needs --target-version (0 reverts everything)" })
    }
    yield* Effect.gen(function*() {
      const runs = yield* Migrator.down({ schema, targetVersion })
      for (const run of runs) yield* Console.log(`reverted ${run.line === "main" ? "" : `${run.line} `}version ${run.version} ${run.name} (${ms(run.duration)})`)
      const status = yield* Migrator.list({ schema })
      yield* Console.log(runs.length === 0 ? `nothing to revert: ${statusLine(status.current)}` : statusLine(status.current))
    }).pipe(withDatabase(databaseUrl))
  })).pipe(Command.withDescription("Revert applied versions above --target-version (required; 0 reverts everything)"))

const list = Command.make("list", {}, () =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    const status = yield* Migrator.list({ schema }).pipe(withDatabase(databaseUrl))
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
  })).pipe(Command.withDescription("Show applied and pending versions"))

const validate = Command.make("validate", {
  targetVersion: versionFlag("target-version", "Version that must be applied (default: latest)")
}, (input) =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    const targetVersion = yield* parseInteger(Option.getOrUndefined(input.targetVersion), "target-version")
    const result = yield* Migrator.validate({ schema, targetVersion }).pipe(withDatabase(databaseUrl))
    if (!result.ok) return yield* new CliError({ message: `migrations not valid: ${result.messages.join("; ")}` })
    yield* Console.log("migrations are valid")
  })).pipe(Command.withDescription("Exit 1 unless every version up to --target-version (default: latest) is applied"))

const get = Command.make("get", {
  up: Flag.Boolean("up").pipe(Flag.withDescription("The SQL going up"), Flag.withDefault(false)),
  down: Flag.Boolean("down").pipe(Flag.withDescription("The SQL going down"), Flag.withDefault(false)),
  fromVersion: versionFlag("from-version", `Version to start from (default: 0 going up, ${Migrator.latestVersion} going down)`),
  targetVersion: versionFlag("target-version", "Version to end at")
}, (input) =>
  Effect.gen(function*() {
    const { schema } = yield* connection
    if (input.up === input.down) {
      return yield* new CliError({ message: "migrate get needs exactly one of --up or --down" })
    }
    const direction = input.up ? "up" : "down"
    const text = yield* Migrator.sql({
      direction,
      schema,
      fromVersion: yield* parseVersion(input.fromVersion, "from-version"),
      targetVersion: yield* parseVersion(input.targetVersion, "target-version")
    })
    yield* Console.log(text === "" ? `-- nothing to run ${direction}` : text.trimEnd())
  })).pipe(Command.withDescription("Print the SQL of --up or --down from --from-version to --target-version (no database)"))

/** One line for `effect-river --help`. */
export const summary =
  `apply, revert, list, validate or print River's schema migrations (line ${Migrator.line}, versions 1 to ${Migrator.latestVersion})`

/** `effect-river migrate`. */
export const migrate = Command.make("migrate").pipe(
  Command.withDescription(
    `Applies, reverts, lists or prints River's schema migrations (line ${Migrator.line}, versions 1 to ` +
      `${Migrator.latestVersion}), recorded in River's river_migration table. Each version runs in its own transaction.`
  ),
  Command.withExamples([
    { command: "effect-river migrate up --database-url postgres://user:pass@localhost:5432/app", description: "Apply every pending version" },
    { command: "effect-river migrate down --target-version 6 --schema jobs", description: "Revert to version 6" },
    { command: "effect-river migrate get --up --schema jobs > river.sql", description: "Print the SQL (no database)" }
  ]),
  Command.withSubcommands([up, down, list, validate, get])
)
