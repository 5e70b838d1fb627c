/**
 * The `effect-river` command tree and how it runs: `migrate`, `demo`, `jobs` and `queues` under
 * the root command (`command.ts`), parsed by Effect's CLI module (`effect/cli`). To add a
 * subcommand, build it with `Command.make`, list it in `commands` and give it a line in `help`.
 *
 * Bad input fails with `CliError`: a parse error (unknown flag, bad value, unknown subcommand) as
 * `<what is wrong>; see <command> --help`, a handler's error with its own message. `main.ts`
 * prints it as one line and exits 1.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { CliError, root } from "./command.ts"
import { demo, summary as demoSummary } from "./demo.ts"
import { migrate, summary as migrateSummary } from "./migrate.ts"
import { jobs, jobsSummary, queues, queuesSummary } from "./operate.ts"

/** This package's version, from its package.json (two levels up from src/cli/ and dist/cli/). */
export const version: string =
  (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

const commands = [
  { name: "migrate", summary: migrateSummary },
  { name: "demo", summary: demoSummary },
  { name: "jobs", summary: jobsSummary },
  { name: "queues", summary: queuesSummary }
] as const

/** `effect-river --help`: the commands, one line each. */
export const help = `Usage: effect-river <command> [options]

River's PostgreSQL job queue for Effect.

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join("\n")}

Options (every command):
  --database-url <url>   PostgreSQL URL (default: $DATABASE_URL)
  --schema <name>        Schema holding River's tables (default: the connection's search_path)
  --version              Print effect-river's version

Run effect-river <command> --help for a command's options.`

const cli = root.pipe(Command.withSubcommands([migrate, demo, jobs, queues]))

/** Parse errors are turned into one `CliError` below instead of the help and the error list. */
const presenter = CliOutput.layerPresenter({
  present: (event) => event._tag === "InvalidInvocation" ? Effect.void : CliOutput.defaultPresenter.present(event)
})

/** Runs the command line given as `args` (without `node` and the script). */
export const run = (args: ReadonlyArray<string>): Effect.Effect<void, { readonly message: string }> => {
  const [first] = args
  if (first === undefined) return Effect.andThen(Console.error(help), Effect.fail(new CliError({ message: "no command given" })))
  if (args.length === 1 && (first === "--help" || first === "-h" || first === "help")) return Console.log(help)
  return Command.runWith(cli, { version })(args).pipe(
    Effect.catchTag("ShowHelp", (error) => {
      const [problem] = error.errors
      return problem === undefined
        ? Effect.void // help shown, as asked or implied (a command without its subcommand)
        : Effect.fail(new CliError({ message: `${problem.message}; see ${error.commandPath.join(" ")} --help` }))
    }),
    Effect.provide(Layer.merge(NodeServices.layer, presenter))
  )
}
