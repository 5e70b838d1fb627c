/**
 * The shape of an `effect-river` subcommand and the helpers subcommands share: option parsing
 * with `node:util` `parseArgs`, and `CliError`, a failure printed as one line.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { parseArgs } from "node:util"

/** A subcommand of `effect-river`, registered in `src/cli/main.ts`. */
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

/**
 * Joins a string option and a value that looks like a negative number (`--n -1` → `--n=-1`):
 * `parseArgs` would otherwise refuse it as "ambiguous", and the value gets its own check.
 */
const joinNegativeValues = (args: ReadonlyArray<string>, options: OptionSpec): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const next = args[i + 1]
    const name = arg.startsWith("--") ? arg.slice(2) : undefined
    if (name !== undefined && options[name]?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`)
      i++
    } else out.push(arg)
  }
  return out
}

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
      parseArgs({ args: joinNegativeValues(args, options), options, strict: true, allowPositionals: false }).values as {
        readonly [K in keyof Spec]?: Spec[K]["type"] extends "string" ? string : boolean
      },
    catch: (error) => {
      const message = error instanceof Error ? error.message.split(". ")[0]!.replace(/\.$/, "") : String(error)
      return new CliError({ message: `${context}: ${message}; see --help` })
    }
  })

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
