/**
 * The `effect-river` command line's entry point: runs `run.ts` with the process's arguments.
 *
 * Failures are printed as one line on stderr (`effect-river: <message>`) and exit with code 1.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { run } from "./run.ts"

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

NodeRuntime.runMain(report(run(process.argv.slice(2))), { disableErrorReporting: true })
