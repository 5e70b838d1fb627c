/**
 * The embedded PostgreSQL as users meet it through `effect-river demo`: a demo whose reader goes
 * away (`demo | head -3`) or that is killed must not leave a server behind that breaks the next
 * run, and a checkout the `postgres` user cannot reach (as root, under a 0700 directory) fails
 * with one clear line.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { startEmbeddedPostgres } from "../src/cli/embeddedPostgres.ts"

const bin = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url))

interface Demo {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly stderr: Array<string>
  readonly exited: Promise<number | null>
}

const startDemo = (cwd: string): Demo => {
  const child = spawn(process.execPath, [bin, "demo"], { cwd, env: { ...process.env, DATABASE_URL: "" } })
  const lines: Array<string> = []
  const stderr: Array<string> = []
  let partial = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n")
    partial = parts.pop()!
    lines.push(...parts)
  })
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, lines, stderr, exited }
}

const until = async (what: string, check: () => boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The pid of a postgres still running on the demo's data directory, if any. */
const runningPostgres = (cwd: string): number | undefined => {
  const pidFile = join(cwd, ".demo-pg", "data", "postmaster.pid")
  if (!existsSync(pidFile)) return undefined
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0]!, 10)
  try {
    process.kill(pid, 0)
    return pid
  } catch {
    return undefined
  }
}

const migrated = (demo: Demo) => () => demo.lines.some((l) => l.includes("migrated and emptied"))

describe("embedded PostgreSQL", () => {
  it.live("a demo whose reader goes away, or that is killed, leaves nothing that breaks the next run", () =>
    Effect.promise(async () => {
      const cwd = mkdtempSync(join(tmpdir(), "effect-river-demo-"))
      chmodSync(cwd, 0o755)
      try {
        // `demo | head -3`: the reader goes away while the demo runs.
        const piped = startDemo(cwd)
        await until("the demo's database", migrated(piped))
        piped.child.stdout!.destroy()
        await until("the demo to exit", () => piped.child.exitCode !== null || piped.child.signalCode !== null, 60_000)
        assert.isUndefined(runningPostgres(cwd), "the demo stopped its PostgreSQL when its output went away")

        // Killed outright: no finalizer runs, its PostgreSQL keeps running.
        const killed = startDemo(cwd)
        await until("the demo's database", migrated(killed))
        killed.child.kill("SIGKILL")
        await killed.exited
        assert.isDefined(runningPostgres(cwd), "a killed demo leaves its server (nothing can stop it)")

        // The next run stops the leftover server and runs normally.
        const next = startDemo(cwd)
        const code = await Promise.race([next.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 90_000))])
        if (code === "timeout") next.child.kill("SIGKILL")
        const output = `${next.lines.join("\n")}\n${next.stderr.join("")}`
        assert.strictEqual(code, 0, output)
        assert.include(output, "Every outcome as expected.")
        assert.notInclude(output, "undefined")
        assert.isUndefined(runningPostgres(cwd))
      } finally {
        const leftover = runningPostgres(cwd)
        if (leftover !== undefined) process.kill(leftover, "SIGKILL")
        rmSync(cwd, { recursive: true, force: true })
      }
    }), { timeout: 240_000 })

  it.live("as root, a data directory under a directory others cannot enter is one clear error", () =>
    Effect.promise(async () => {
      const outer = mkdtempSync(join(tmpdir(), "effect-river-closed-"))
      chmodSync(outer, 0o755) // mkdtemp creates 0700
      const closed = join(outer, "private")
      mkdirSync(closed)
      chmodSync(closed, 0o700)
      try {
        const attempt = await startEmbeddedPostgres({ dir: join(closed, "pg") }).then(
          async (server) => {
            await server.stop()
            return "started" as const
          },
          (error: Error) => error.message
        )
        if (process.getuid?.() === 0) {
          assert.strictEqual(
            attempt,
            `cannot start the embedded PostgreSQL: running as root, it runs as the "postgres" user, which cannot enter ${closed} (mode 0700) to reach its data directory in ${
              join(closed, "pg", "data")
            }; put the checkout under a directory other users can enter (for example /srv or /opt), or set DATABASE_URL to a PostgreSQL server`
          )
        } else {
          assert.strictEqual(attempt, "started", "as another user, postgres runs as that user and reaches its own directory")
        }
      } finally {
        rmSync(outer, { recursive: true, force: true })
      }
    }), { timeout: 120_000 })
})
