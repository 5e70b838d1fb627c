/**
 * The `effect-river` command line. Dispatches on the first argument to one of `commands`;
 * to add a subcommand, implement `Command` (src/cli/command.ts) and list it here.
 *
 * Failures are printed as one line on stderr (`effect-river: <message>`) and exit with code 1.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { CliError, type Command } from "./command.ts"
import { demoCommand } from "./demo.ts"
import { migrate } from "./migrate.ts"
import { operatorCommands, runOperator } from "./operate.ts"

const commands: ReadonlyArray<Command> = [migrate, demoCommand]

const help = `Usage: effect-river <command> [options]

River's PostgreSQL job queue for Effect.

Commands:
${[...commands, ...operatorCommands].map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join("\n")}

Options:
  --version   Print effect-river's version

Run effect-river <command> --help for a command's options.`

/** Runs the command line given as `args` (without `node` and the script). */
const main = (args: ReadonlyArray<string>): Effect.Effect<void, { readonly message: string }> => {
  const [name, ...rest] = args
  if (name === "--help" || name === "-h" || name === "help") return Console.log(help)
  if (name === undefined) return Effect.andThen(Console.error(help), Effect.fail(new CliError({ message: "no command given" })))
  if (name === "--version" || name.startsWith("--") || operatorCommands.some((c) => c.name === name)) return runOperator(args)
  const command = commands.find((c) => c.name === name)
  return command === undefined
    ? Effect.fail(new CliError({ message: `unknown command "${name}"; run effect-river --help` }))
    : command.run(rest)
}

/** The error's message followed by those of its causes (e.g. the driver's reason for a failed connection), on one line. */
const describe = (error: { readonly message: string }): string => {
  let text = error.message
  let cause: unknown = (error as { readonly cause?: unknown }).cause
  for (let depth = 0; depth < 4 && typeof cause === "object" && cause !== null; depth++) {
    const message = (cause as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !text.includes(message)) text += `: ${message}`
    cause = (cause as { readonly cause?: unknown }).cause
  }
  return text.replace(/\s*\n\s*/g, " ")
}

/** Prints a failure as one line (a defect with its trace) and keeps the program failed, so it exits 1. */
const report = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
  Effect.catchCause(effect, (cause) => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
    const error = Cause.findErrorOption(cause)
    // A parse error of the effect/cli commands, already printed as one line.
    if (error._tag === "Some" && (error.value as { readonly _tag?: unknown })._tag === "ShowHelp") return Effect.failCause(cause)
    const line = error._tag === "Some" ? describe(error.value) : `unexpected error\n${Cause.pretty(cause)}`
    return Effect.andThen(Console.error(`effect-river: ${line}`), Effect.failCause(cause))
  })

// A reader that goes away (`effect-river demo | head -3`) makes writes to stdout fail with EPIPE,
// which would kill the process without running finalizers (an embedded PostgreSQL would be left
// running). Stop the program instead, as Ctrl-C does: its finalizers run, then it exits.
let stdoutClosed = false
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE" || stdoutClosed) return
  stdoutClosed = true
  process.kill(process.pid, "SIGINT")
})

NodeRuntime.runMain(report(main(process.argv.slice(2))), { disableErrorReporting: true })
