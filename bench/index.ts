/**
 * `npm run bench [-- workload ...]`: prints figures for the named workloads (default: all).
 * Workloads: insert, w1 (throughput), w2 (latency), w3 (cancel latency), steps (resumable steps),
 * backlog (1,000,000 queued jobs, with the recommended runner flags and with Node's defaults; run it
 * explicitly: it takes ~7 minutes).
 */
import { printBacklog, runBacklog } from "./backlog.ts"
import { printInsert, runInsert } from "./insert.ts"
import { printSteps, runSteps } from "./steps.ts"
import { machine, startServer } from "./util.ts"
import { printW1, runW1 } from "./w1.ts"
import { printW2, runW2 } from "./w2.ts"
import { printW3, runW3 } from "./w3.ts"

const workloads: Record<string, (url: string) => Promise<void>> = {
  insert: async (url) => printInsert(await runInsert(url)),
  w1: async (url) => printW1(await runW1(url)),
  w2: async (url) => printW2(await runW2(url)),
  w3: async (url) => printW3(await runW3(url)),
  steps: async (url) => printSteps(await runSteps(url)),
  backlog: async (url) => printBacklog(await runBacklog(url))
}

const requested = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = requested.filter((w) => !(w in workloads))
if (unknown.length > 0) {
  console.error(`unknown workload(s): ${unknown.join(", ")}; known: ${Object.keys(workloads).join(", ")}`)
  process.exit(2)
}
// `backlog` takes minutes: it runs only when named.
const selected = requested.length === 0 ? Object.keys(workloads).filter((w) => w !== "backlog") : requested

const server = await startServer()
console.log(`# effect-river benchmarks\nmachine: ${machine()}\ndatabase: ${server.label}`)
try {
  for (const name of selected) await workloads[name]!(server.url)
} finally {
  await server.stop()
}
