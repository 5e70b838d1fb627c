/**
 * The shape of an `effect-river` subcommand and the helpers subcommands share: option parsing
 * with `node:util` `parseArgs`, and `CliError`, a failure printed as one line.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"

/** A subcommand of `effect-river`, registered in `src/bin.ts`. */
export interface Command {
  /** First argument that selects the command, e.g. `migrate`. */
  readonly name: string
  /** One line for `effect-river --help`. */
  readonly summary: string
  /**
   * Runs the command with the arguments after its name. Fails with `CliError` for bad input;
   * any error with a `message` is printed as one line by the dispatcher, and exits 1.
   */
  readonly run: (args: ReadonlyArray<string>) => Effect.Effect<void, { readonly message: string }>
}

/** Bad command-line input, or any failure to print as is. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/** Option definitions accepted by {@link parseOptions}. */
export type OptionSpec = Record<string, { readonly type: "string" | "boolean"; readonly short?: string }>

/** Parses `--name value` / `--name=value` / `--flag` options; no positionals. */
export const parseOptions = <const Spec extends OptionSpec>(
  args: ReadonlyArray<string>,
  options: Spec,
  context: string
): Effect.Effect<
  { readonly [K in keyof Spec]?: Spec[K]["type"] extends "string" ? string : boolean },
  CliError
> =>
  Effect.try({
    try: () =>
      parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values as {
        readonly [K in keyof Spec]?: Spec[K]["type"] extends "string" ? string : boolean
      },
    catch: (error) => {
      const message = error instanceof Error ? error.message.split(". ")[0]!.replace(/\.$/, "") : String(error)
      return new CliError({ message: `${context}: ${message}; see --help` })
    }
  })

/** Parses an integer option value. */
export const parseInteger = (value: string | undefined, option: string): Effect.Effect<number | undefined, CliError> => {
  if (value === undefined) return Effect.succeed(undefined)
  if (!/^-?\d+$/.test(value.trim())) {
    return Effect.fail(new CliError({ message: `--${option} must be an integer (got ${JSON.stringify(value)})` }))
  }
  return Effect.succeed(Number(value.trim()))
}
