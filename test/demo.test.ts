/**
 * `effect-river demo` as a user runs it: a child process on the test run's server. Run twice on
 * the same database, the second run must start from a clean slate and print the same summary.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { createDatabase, urlForDatabase } from "./utils/db.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runDemo = (url: string) =>
  Effect.callback<Run>((resume) => {
    const child = execFile(
      process.execPath,
      ["src/cli/main.ts", "demo", "--database-url", url],
      { cwd: root, timeout: 50_000, env: { ...process.env, DATABASE_URL: "" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
    return Effect.sync(() => child.kill())
  })

/** The lines of the output section that starts with `heading`, up to the next blank line. */
const section = (stdout: string, heading: string): ReadonlyArray<string> => {
  const start = stdout.indexOf(heading)
  assert.isAtLeast(start, 0, `no "${heading}" in:\n${stdout}`)
  const lines = stdout.slice(start).split("\n").slice(1)
  return lines.slice(0, lines.indexOf(""))
}

/** The summary row of a kind, split into its columns (separated by two or more spaces). */
const summaryRow = (stdout: string, kind: string): ReadonlyArray<string> => {
  const line = section(stdout, "Summary (").find((l) => l.trimStart().startsWith(`${kind} `))
  assert.isDefined(line, `no summary row for ${kind} in:\n${stdout}`)
  return line!.trim().split(/\s{2,}/)
}

/** What the workers noted for the job of a kind, as printed below the summary. */
const notesOf = (stdout: string, kind: string): string => {
  const line = section(stdout, "What the workers noted").find((l) => l.trimStart().startsWith(`${kind} #`))
  assert.isDefined(line, `no notes for ${kind} in:\n${stdout}`)
  return line!.trim().split(/\s{2,}/)[1]!
}

const assertSummary = (run: Run) => {
  assert.strictEqual(run.code, 0, `exit code ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  assert.strictEqual(run.stderr, "")
  // columns: kind, jobs, outcome, attempts, snoozes, errors
  assert.deepStrictEqual(summaryRow(run.stdout, "demo_send_confirmation"), [
    "demo_send_confirmation",
    "3",
    "completed",
    "1",
    "0",
    "-"
  ])
  const charge = summaryRow(run.stdout, "demo_charge_card")
  assert.deepStrictEqual(charge.slice(0, 5), ["demo_charge_card", "1", "completed", "2", "0"])
  assert.match(charge[5]!, /^attempt 1: PaymentGatewayBusy: gateway busy/)
  assert.deepStrictEqual(summaryRow(run.stdout, "demo_generate_invoice"), [
    "demo_generate_invoice",
    "1",
    "completed",
    "1",
    "1",
    "-"
  ])
  const ship = summaryRow(run.stdout, "demo_ship_order")
  assert.deepStrictEqual(ship.slice(0, 5), ["demo_ship_order", "1", "cancelled", "1", "0"])
  assert.match(ship[5]!, /^attempt 1: JobCancelError: order 2 was withdrawn/)
  // Cancelled from the client while running: interrupted, and its finalizer ran.
  assert.deepStrictEqual(summaryRow(run.stdout, "demo_export_report"), [
    "demo_export_report",
    "1",
    "cancelled",
    "1",
    "0",
    "attempt 1: JobCancelError: job cancelled remotely"
  ])
  assert.match(
    notesOf(run.stdout, "demo_export_report"),
    /^attempt 1: export file opened, interrupted after \d+ of 100 chunks, cleaned up \(export file closed\)$/
  )
  assert.match(run.stdout, /client\.cancel\(\d+\) returned: still running, cancel requested/)
  // Resumed after the failed transform, without a second download.
  const stock = summaryRow(run.stdout, "demo_import_stock")
  assert.deepStrictEqual(stock.slice(0, 5), ["demo_import_stock", "1", "completed", "2", "0"])
  assert.match(stock[5]!, /^attempt 1: ParserUnavailable: parser service unavailable$/)
  assert.strictEqual(
    notesOf(run.stdout, "demo_import_stock"),
    "attempt 1: download ✓, transform ✗; attempt 2: transform ✓, load ✓; checkpoint river:resumable_step = \"download\""
  )
  assert.include(run.stdout, "Summary (8 jobs):")
  assert.include(run.stdout, "Every outcome as expected.")
  // Live progress, as plain lines (stdout is not a terminal here).
  assert.match(run.stdout, /^jobs: .*completed 6 · cancelled 2$/m)
  assert.match(run.stdout, /failed \(attempt 1\): PaymentGatewayBusy/)
  assert.match(run.stdout, /snoozed; runs again in/)
  assert.notInclude(run.stdout, "\x1b[")
}

describe("effect-river demo", () => {
  it.live("runs every scenario to its expected outcome, exits 0, and reruns cleanly", () =>
    Effect.gen(function*() {
      const url = urlForDatabase(yield* createDatabase("demo"))
      const first = yield* runDemo(url)
      assertSummary(first)
      const second = yield* runDemo(url)
      assertSummary(second)
      // The second run emptied the schema first: its eight jobs have ids 1 to 8 again.
      const ids = new Set([...second.stdout.matchAll(/ demo_\w+ #(\d+) /g)].map((m) => Number(m[1])))
      assert.deepStrictEqual([...ids].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8])
    }), { timeout: 120_000 })
})
