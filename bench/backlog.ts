/**
 * Backlog: how fast a runner drains a very large queue compared with a small one, and how much
 * memory it needs. A backlog of no-op jobs is inserted with one `INSERT … SELECT
 * generate_series` (no runner running), then a runner in a child process works it to the end;
 * its peak RSS (`process.resourceUsage().maxRSS`) is reported. Done for 20,000 and for
 * 1,000,000 jobs, each on a fresh database, and for three ways of starting the runner process:
 * with the V8 heap flags the README recommends for runner processes (`runnerNodeFlags`), with
 * Node's defaults (which size the heap from the memory Node may use: on this 24 GB machine a
 * 4 GiB old space and 64 MB semi-spaces), and with Node's defaults inside a 2 GiB memory cgroup,
 * as in a container with a 2 GiB limit (skipped, saying why, where this process cannot create
 * one: see `cgroup.ts`).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { makeMemoryCgroup, type MemoryCgroup } from "./cgroup.ts"
import { step, track } from "./guard.ts"
import { benchDatabase, fmt } from "./util.ts"

/** The V8 heap flags recommended for runner processes (README, "Memory"). */
export const runnerNodeFlags = ["--max-old-space-size=1024", "--max-semi-space-size=8"] as const

export interface BacklogVariant {
  readonly label: string
  readonly nodeFlags: ReadonlyArray<string>
  /** Run the runner process in a memory cgroup of this many GiB (a container's limit). */
  readonly memoryLimitGib?: number
}

export const variants: ReadonlyArray<BacklogVariant> = [
  { label: `recommended flags (${runnerNodeFlags.join(" ")})`, nodeFlags: runnerNodeFlags },
  { label: "Node defaults", nodeFlags: [] },
  { label: "Node defaults, in a 2 GiB memory cgroup (a container's limit)", nodeFlags: [], memoryLimitGib: 2 }
]

export interface BacklogRun {
  readonly jobs: number
  readonly insertSeconds: number
  readonly drainSeconds: number
  readonly maxRssMb: number
  /** What the runner process saw: `process.constrainedMemory()` and V8's heap size limit, MiB. */
  readonly constrainedMb: number
  readonly heapLimitMb: number
}

const runnerScript = fileURLToPath(new URL("./backlog-runner.ts", import.meta.url))

interface Drained {
  readonly seconds: number
  readonly maxRssMb: number
  readonly constrainedMb: number
  readonly heapLimitMb: number
}

const drain = (command: readonly [string, ReadonlyArray<string>]) =>
  new Promise<Drained>((resolve, reject) => {
    const child = track(spawn(command[0], command[1], { stdio: ["ignore", "pipe", "inherit"] }))
    let out = ""
    child.stdout.on("data", (chunk) => (out += String(chunk)))
    child.on("error", reject)
    child.on("exit", (code) => {
      const line = out.trim().split("\n").pop()
      if (code !== 0 || line === undefined) return reject(new Error(`backlog runner exited ${code}: ${out}`))
      resolve(JSON.parse(line))
    })
  })

const once = async (serverUrl: string, jobs: number, variant: BacklogVariant): Promise<BacklogRun> => {
  // Made first: a machine that cannot make one skips the variant before any rows are inserted.
  const cgroup = variant.memoryLimitGib === undefined
    ? undefined
    : makeMemoryCgroup(`effect-river-bench-${process.pid}-${jobs}`, variant.memoryLimitGib * 1024 ** 3)
  if (typeof cgroup === "string") throw new CgroupUnavailable(cgroup)
  try {
    return await onceIn(serverUrl, jobs, variant, cgroup)
  } finally {
    cgroup?.remove()
  }
}

const onceIn = async (
  serverUrl: string,
  jobs: number,
  variant: BacklogVariant,
  cgroup: MemoryCgroup | undefined
): Promise<BacklogRun> => {
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
  const command = [process.execPath, ...variant.nodeFlags, runnerScript, url] as const
  const d = await drain(cgroup === undefined ? [command[0], command.slice(1)] : cgroup.wrap(command))
  return { jobs, insertSeconds, drainSeconds: d.seconds, ...d }
}

/** This process cannot create a memory cgroup; the variant is skipped. */
class CgroupUnavailable extends Error {}

export interface BacklogFigures {
  readonly variant: BacklogVariant
  readonly small: BacklogRun
  readonly large: BacklogRun
}

/** Variants that could not run here, and why. */
export interface BacklogSkipped {
  readonly variant: BacklogVariant
  readonly why: string
}

export const runBacklog = async (
  serverUrl: string,
  options: { readonly large?: number } = {}
): Promise<{ readonly figures: ReadonlyArray<BacklogFigures>; readonly skipped: ReadonlyArray<BacklogSkipped> }> => {
  const figures: Array<BacklogFigures> = []
  const skipped: Array<BacklogSkipped> = []
  for (const variant of variants) {
    try {
      step(`backlog: 20,000 jobs, ${variant.label}`)
      const small = await once(serverUrl, 20_000, variant)
      step(`backlog: ${fmt(options.large ?? 1_000_000)} jobs, ${variant.label}`)
      const large = await once(serverUrl, options.large ?? 1_000_000, variant)
      figures.push({ variant, small, large })
    } catch (e) {
      if (!(e instanceof CgroupUnavailable)) throw e
      skipped.push({ variant, why: e.message })
    }
  }
  return { figures, skipped }
}

export const printBacklog = (
  { figures, skipped }: { readonly figures: ReadonlyArray<BacklogFigures>; readonly skipped: ReadonlyArray<BacklogSkipped> }
) => {
  const rate = (r: BacklogRun) => r.jobs / r.drainSeconds
  const first = figures[0]!
  console.log(
    `\n## backlog: drain ${fmt(first.small.jobs)} vs ${fmt(first.large.jobs)} queued no-op jobs (runner in a child process)`
  )
  console.log("  settings: one queue, maxWorkers 1,000, fetchCooldown 2 ms, fetchPollInterval 20 ms, pool 8")
  for (const f of figures) {
    console.log(
      `  runner process: ${f.variant.label}; memory Node may use: ${
        f.large.constrainedMb >= 2 ** 40 ? "unlimited" : `${fmt(f.large.constrainedMb)} MiB`
      }, V8 heap limit ${fmt(f.large.heapLimitMb)} MiB`
    )
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
  for (const s of skipped) console.log(`  runner process: ${s.variant.label}: skipped (${s.why})`)
}
