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
      ["src/bin.ts", "demo", "--database-url", url],
      { cwd: root, timeout: 50_000, env: { ...process.env, DATABASE_URL: "" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
    return Effect.sync(() => child.kill())
  })

/** The summary row of a kind, split into its columns (separated by two or more spaces). */
const summaryRow = (stdout: string, kind: string): ReadonlyArray<string> => {
  const summary = stdout.slice(stdout.indexOf("Summary ("))
  const line = summary.split("\n").find((l) => l.trimStart().startsWith(`${kind} `))
  assert.isDefined(line, `no summary row for ${kind} in:\n${stdout}`)
  return line!.trim().split(/\s{2,}/)
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
  assert.include(run.stdout, "Summary (6 jobs):")
  assert.include(run.stdout, "Every outcome as expected.")
  // Live progress, as plain lines (stdout is not a terminal here).
  assert.match(run.stdout, /^jobs: .*completed 5 · cancelled 1$/m)
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
      // The second run emptied the schema first: its six jobs have ids 1 to 6 again.
      const ids = new Set([...second.stdout.matchAll(/ demo_\w+ #(\d+) /g)].map((m) => Number(m[1])))
      assert.deepStrictEqual([...ids].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6])
    }), { timeout: 120_000 })
})
