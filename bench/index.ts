/**
 * `npm run bench [-- workload ...]`: prints figures for the named workloads (default: all but
 * `backlog`), then issue 16's summary table (every figure next to its competitors and ceiling, as
 * ratios). `npm run bench -- --list` lists the workloads. Each workload has a time limit
 * (bench/workloads.ts): one that hangs ends the run with a message naming it and its last step,
 * and the process exits 1. `BENCH_TIMEOUT_SECONDS=N` replaces every workload's limit (to try the
 * timeout path, or to fail fast).
 */
import { BenchTimeout, killChildren, lastStep, withTimeout } from "./guard.ts"
import { printSummary, type Summary } from "./summary.ts"
import { commit, load, machine, startServer } from "./util.ts"
import { workloads } from "./workloads.ts"

if (process.argv.includes("--list")) {
  for (const [name, w] of Object.entries(workloads)) console.log(`${name.padEnd(8)} ${w.description}`)
  process.exit(0)
}
const requested = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = requested.filter((w) => !(w in workloads))
if (unknown.length > 0) {
  console.error(`unknown workload(s): ${unknown.join(", ")}; known: ${Object.keys(workloads).join(", ")}`)
  process.exit(2)
}
const selected = requested.length === 0
  ? Object.keys(workloads).filter((w) => workloads[w]!.onlyWhenNamed !== true)
  : requested

const override = Number(process.env.BENCH_TIMEOUT_SECONDS ?? "")
const limitOf = (name: string) => (override > 0 ? override * 1000 : workloads[name]!.timeoutMillis)

const started = performance.now()
const server = await startServer()
const header = `commit ${commit()}, ${new Date().toISOString().slice(0, 10)}`
console.log(`# effect-river benchmarks\n${header}\nmachine: ${machine()}\ndatabase: ${server.label}`)
const summary: Summary = {}
let failed = false
try {
  for (const name of selected) {
    const w = workloads[name]!
    const t0 = performance.now()
    console.log(`\n(${name}: started, load average ${load()})`)
    try {
      await withTimeout(w.run(server.url, summary), limitOf(name), `workload ${name}`)
    } catch (error) {
      failed = true
      if (error instanceof BenchTimeout) {
        console.error(`\n✗ ${error.message}`)
        break // its work may still be running: stop here rather than measure next to it
      }
      console.error(`\n✗ workload ${name} failed (last step: ${lastStep()}):`, error)
      continue
    }
    console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s, load average ${load()})`)
  }
  printSummary(summary, header)
  console.log(`\n(total ${((performance.now() - started) / 60_000).toFixed(1)} min)`)
} finally {
  killChildren()
  await withTimeout(server.stop(), 30_000, "stopping the database server").catch((e) => console.error(String(e)))
}
// A timed-out workload may have left fibers, sockets or timers behind: do not wait for them.
process.exit(failed ? 1 : 0)
