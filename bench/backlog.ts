/**
 * Backlog: how fast a runner drains a very large queue compared with a small one, and how much
 * memory it needs. A backlog of no-op jobs is inserted with one `INSERT … SELECT
 * generate_series` (no runner running), then a runner in a child process works it to the end;
 * its peak RSS (`process.resourceUsage().maxRSS`) is reported. Done for 20,000 and for
 * 1,000,000 jobs, each on a fresh database, and for two ways of starting the runner process:
 * with the V8 heap flags the README recommends for runner processes (`runnerNodeFlags`), and
 * with Node's defaults (which size the heap from the machine's memory).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { step, track } from "./guard.ts"
import { benchDatabase, fmt } from "./util.ts"

/** The V8 heap flags recommended for runner processes (README, "Memory"). */
export const runnerNodeFlags = ["--max-old-space-size=1024", "--max-semi-space-size=8"] as const

export interface BacklogVariant {
  readonly label: string
  readonly nodeFlags: ReadonlyArray<string>
}

export const variants: ReadonlyArray<BacklogVariant> = [
  { label: `recommended flags (${runnerNodeFlags.join(" ")})`, nodeFlags: runnerNodeFlags },
  { label: "Node defaults", nodeFlags: [] }
]

export interface BacklogRun {
  readonly jobs: number
  readonly insertSeconds: number
  readonly drainSeconds: number
  readonly maxRssMb: number
}

const runnerScript = fileURLToPath(new URL("./backlog-runner.ts", import.meta.url))

const drain = (url: string, nodeFlags: ReadonlyArray<string>) =>
  new Promise<{ seconds: number; maxRssMb: number }>((resolve, reject) => {
    const child = track(spawn(process.execPath, [...nodeFlags, runnerScript, url], { stdio: ["ignore", "pipe", "inherit"] }))
    let out = ""
    child.stdout.on("data", (chunk) => (out += String(chunk)))
    child.on("error", reject)
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop()
      if (code !== 0 || line === undefined) return reject(new Error(`backlog runner exited ${code}: ${out}`))
      resolve(JSON.parse(line))
    })
  })

const once = async (serverUrl: string, jobs: number, nodeFlags: ReadonlyArray<string>): Promise<BacklogRun> => {
  const { layer, url } = await benchDatabase(serverUrl, `bench_backlog_${jobs}`, 2)
  const insertSeconds = await Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const t0 = performance.now()
      yield* sql.unsafe(
        `INSERT INTO river_job (args, kind, max_attempts, queue, scheduled_at, created_at)
         SELECT jsonb_build_object('n', i), 'bench_noop', 25, 'default', now(), now() FROM generate_series(1, $1::int) AS i`,
        [jobs]
      )
      yield* sql.unsafe(`VACUUM ANALYZE river_job`)
      return (performance.now() - t0) / 1000
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
  const { maxRssMb, seconds } = await drain(url, nodeFlags)
  return { jobs, insertSeconds, drainSeconds: seconds, maxRssMb }
}

export interface BacklogFigures {
  readonly variant: BacklogVariant
  readonly small: BacklogRun
  readonly large: BacklogRun
}

export const runBacklog = async (
  serverUrl: string,
  options: { readonly large?: number } = {}
): Promise<ReadonlyArray<BacklogFigures>> => {
  const out: Array<BacklogFigures> = []
  for (const variant of variants) {
    step(`backlog: 20,000 jobs, ${variant.label}`)
    const small = await once(serverUrl, 20_000, variant.nodeFlags)
    step(`backlog: ${fmt(options.large ?? 1_000_000)} jobs, ${variant.label}`)
    const large = await once(serverUrl, options.large ?? 1_000_000, variant.nodeFlags)
    out.push({ variant, small, large })
  }
  return out
}

export const printBacklog = (figures: ReadonlyArray<BacklogFigures>) => {
  const rate = (r: BacklogRun) => r.jobs / r.drainSeconds
  const first = figures[0]!
  console.log(
    `\n## backlog: drain ${fmt(first.small.jobs)} vs ${fmt(first.large.jobs)} queued no-op jobs (runner in a child process)`
  )
  console.log("  settings: one queue, maxWorkers 1,000, fetchCooldown 2 ms, fetchPollInterval 20 ms, pool 8")
  for (const f of figures) {
    console.log(`  runner process: ${f.variant.label}`)
    for (const r of [f.small, f.large]) {
      console.log(
        `  ${fmt(r.jobs).padStart(9)} jobs   insert ${r.insertSeconds.toFixed(1)} s   drain ${r.drainSeconds.toFixed(1)} s   ${
          fmt(rate(r)).padStart(7)
        } jobs/s   peak RSS ${r.maxRssMb.toFixed(0)} MB`
      )
    }
    console.log(`    large / small rate         ${fmt((100 * rate(f.large)) / rate(f.small), 1)} %  (target >= 80 %)`)
    const goal = f.variant.nodeFlags.length === 0
      ? "(issue 16 goal with Node's default heap < 250 MB)"
      : "(target with the recommended flags < 200 MB)"
    console.log(`    peak RSS at ${fmt(f.large.jobs)}      ${f.large.maxRssMb.toFixed(0)} MB  ${goal}`)
  }
}
