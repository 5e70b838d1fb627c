/**
 * The operator CLI as an operator runs it: `node src/cli/main.ts jobs|queues …` as a child process
 * on the test run's PostgreSQL, on jobs a client inserted and on the demo's database. Bad input
 * prints one line on stderr, exits 1 and changes nothing (checked on the rows).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Migrator from "../src/Migrator.ts"
import * as Testing from "../src/Testing.ts"
import { createDatabase, urlForDatabase } from "./utils/db.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const nodeBin = join(root, "node_modules", ".bin", "node")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `effect-river ...args` (without DATABASE_URL unless given). */
// Each run starts a Node process (~1 s of CPU): generous limits, as other work may share the machine.
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeout = 120_000) =>
  Effect.callback<Run>((resume) => {
    const { DATABASE_URL: _, ...inherited } = process.env
    const child = execFile(
      nodeBin,
      ["src/cli/main.ts", ...args],
      { cwd: root, env: { ...inherited, ...env }, timeout },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })

const ok = (run: Run): string => {
  assert.strictEqual(run.code, 0, `exit code ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  assert.strictEqual(run.stderr, "")
  return run.stdout
}

const oneLineError = (run: Run, pattern: RegExp) => {
  assert.strictEqual(run.code, 1, `exit code; stdout: ${run.stdout}; stderr: ${run.stderr}`)
  assert.strictEqual(run.stdout, "")
  const lines = run.stderr.split("\n").filter((l) => l !== "")
  assert.strictEqual(lines.length, 1, run.stderr)
  assert.match(lines[0]!, /^effect-river: /)
  assert.match(lines[0]!, pattern)
}

const Email = JobKind.make("email", { args: Schema.Struct({ to: Schema.String }) })
const Report = JobKind.make("report", { args: Schema.Struct({}), options: { queue: "reports" } })

/** Every row of River's job and queue tables, to compare before and after. */
const snapshot = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const jobs = yield* sql.unsafe(`SELECT * FROM "${schema}".river_job ORDER BY id`)
    const queues = yield* sql.unsafe(`SELECT * FROM "${schema}".river_queue ORDER BY name`)
    return JSON.stringify({ jobs, queues }, (_, v) => (typeof v === "bigint" ? v.toString() : v))
  })

describe("effect-river jobs / queues", () => {
  it.live("--version prints package.json's version; --help lists jobs and queues", () =>
    Effect.gen(function*() {
      const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }
      assert.strictEqual(ok(yield* cli(["--version"])).trim(), `effect-river v${version}`)
      const help = ok(yield* cli(["--help"]))
      assert.match(help, /\n {2}jobs {6}list, show, cancel, retry or delete jobs/)
      assert.match(help, /\n {2}queues {4}list, pause or resume queues/)
      assert.include(ok(yield* cli(["jobs", "list", "--help"])), "--state")
    }))

  it.live("list, get, cancel, retry, delete and queues pause/resume/list work on a real database", () =>
    Effect.gen(function*() {
      const url = urlForDatabase(yield* createDatabase("cli"))
      const schema = "ops"
      const db = ["--database-url", url, "--schema", schema]
      const setup = Effect.gen(function*() {
        yield* Migrator.up({ schema })
        const client = yield* Client.make({ schema })
        const a = yield* client.insert(Email, { to: "a@x" }, { tags: ["vip"] })
        const b = yield* client.insert(Email, { to: "b@x" })
        const c = yield* client.insert(Report, {})
        return [a.job.id, b.job.id, c.job.id] as const
      }).pipe(Effect.scoped)
      const [a, b, c] = yield* setup.pipe(Effect.provide(Testing.database(url)))

      const table = ok(yield* cli(["jobs", "list", ...db]))
      assert.match(table, /^id\s+state\s+kind\s+queue/)
      assert.strictEqual(table.trim().split("\n").length, 4)
      const listed = (out: string) => (JSON.parse(out) as { jobs: ReadonlyArray<{ id: string }> }).jobs.map((j) => j.id)
      assert.deepStrictEqual(listed(ok(yield* cli(["jobs", "list", "--kind", "email", "--json", ...db]))), [`${a}`, `${b}`])
      assert.deepStrictEqual(listed(ok(yield* cli(["jobs", "list", "--queue", "reports", "--json", ...db]))), [`${c}`])
      assert.deepStrictEqual(listed(ok(yield* cli(["jobs", "list", "--tag", "vip", "--json", ...db]))), [`${a}`])
      // Shared options before the subcommand, and DATABASE_URL instead of --database-url.
      assert.deepStrictEqual(
        listed(ok(yield* cli(["--schema", schema, "jobs", "list", "--state", "available", "--state", "completed", "--json"], { DATABASE_URL: url }))),
        [`${a}`, `${b}`, `${c}`]
      )

      const got = JSON.parse(ok(yield* cli(["jobs", "get", `${a}`, "--json", ...db])))
      assert.deepStrictEqual([got.id, got.kind, got.state, got.args], [`${a}`, "email", "available", { to: "a@x" }])
      assert.match(ok(yield* cli(["jobs", "get", `${a}`, ...db])), /^id\s+\d+\nstate\s+available\nkind\s+email/)

      assert.strictEqual(ok(yield* cli(["jobs", "cancel", `${a}`, ...db])).trim(), `job ${a} is cancelled`)
      assert.match(ok(yield* cli(["jobs", "retry", `${a}`, ...db])), new RegExp(`^job ${a} is available, scheduled at `))
      assert.strictEqual(ok(yield* cli(["jobs", "delete", `${b}`, ...db])).trim(), `job ${b} (email, available) deleted`)
      assert.deepStrictEqual(listed(ok(yield* cli(["jobs", "list", "--json", ...db]))), [`${a}`, `${c}`])

      assert.strictEqual(ok(yield* cli(["queues", "pause", "reports", ...db])).trim(), "queue reports paused")
      const queues = JSON.parse(ok(yield* cli(["queues", "list", "--json", ...db]))) as ReadonlyArray<{ name: string; pausedAt: string | null }>
      assert.deepStrictEqual(queues.map((q) => [q.name, q.pausedAt !== null]), [["reports", true]])
      assert.match(ok(yield* cli(["queues", "list", ...db])), /^queue\s+paused at\s+created at\s+updated at\nreports\s+\d{4}-/)
      assert.strictEqual(ok(yield* cli(["queues", "resume", "*", ...db])).trim(), "every queue resumed")
      const resumed = JSON.parse(ok(yield* cli(["queues", "list", "--json", ...db]))) as ReadonlyArray<{ pausedAt: string | null }>
      assert.deepStrictEqual(resumed.map((q) => q.pausedAt), [null])

      // Bad input: one line, exit 1, nothing changed.
      const before = yield* snapshot(schema).pipe(Effect.provide(Testing.database(url)))
      const bad: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp, Record<string, string>?]> = [
        [["jobs", "list", "--state", "sleeping", ...db], /Invalid value for flag --state: "sleeping"/],
        [["jobs", "cancel", "abc", ...db], /job id must be a positive 64-bit integer \(got "abc"\)/],
        [["jobs", "delete", "-1", ...db], /--help|job id must be/],
        [["jobs", "retry", "99999999", ...db], /job 99999999 not found/],
        [["jobs", "delete", `${c}`, "--schema", schema], /no database URL: pass --database-url or set DATABASE_URL/],
        [["jobs", "get", `${c}`, "--database-url", "not a url"], /invalid database URL/],
        [["jobs", "list", "--limit", "0", ...db], /invalid limit: must be an integer from 1 to 10,000/],
        [["jobs", "frobnicate", ...db], /Unknown subcommand "frobnicate"/],
        [["jobs", "list", "--bogus", ...db], /Unrecognized flag: --bogus/],
        [["queues", "pause", "Not A Queue", ...db], /invalid queue/],
        [["queues", "pause", ...db], /Missing required argument: queue/],
        [["jobs", "list", "--database-url", url, "--schema", "bad-schema"], /invalid schema/]
      ]
      const runs = yield* Effect.forEach(bad, ([args, _, env]) => cli(args, env), { concurrency: 4 })
      runs.forEach((run, i) => oneLineError(run, bad[i]![1]))
      assert.strictEqual(yield* snapshot(schema).pipe(Effect.provide(Testing.database(url))), before)
    }), { timeout: 900_000 })

  it.live("works on the demo's database", () =>
    Effect.gen(function*() {
      const url = urlForDatabase(yield* createDatabase("cli_demo"))
      ok(yield* cli(["demo", "--database-url", url], {}, 180_000))
      const db = ["--database-url", url, "--schema", "effect_river_demo"]
      const { jobs } = JSON.parse(ok(yield* cli(["jobs", "list", "--json", ...db]))) as {
        jobs: ReadonlyArray<{ id: string; state: string; kind: string }>
      }
      assert.strictEqual(jobs.length, 8)
      assert.deepStrictEqual(
        [...new Set(jobs.map((j) => j.state))].sort(),
        ["cancelled", "completed"]
      )
      const cancelled = JSON.parse(ok(yield* cli(["jobs", "list", "--state", "cancelled", "--json", ...db]))).jobs
      assert.strictEqual(cancelled.length, 2)
      const retried = JSON.parse(ok(yield* cli(["jobs", "retry", cancelled[0].id, "--json", ...db])))
      assert.strictEqual(retried.state, "available")
      assert.match(ok(yield* cli(["queues", "list", ...db])), /\ndefault\s/)
    }), { timeout: 600_000 })
})
