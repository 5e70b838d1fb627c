/**
 * `npm run bench [-- workload ...]`: prints figures for the named workloads (default: all).
 * Workloads: insert.
 */
import { printInsert, runInsert } from "./insert.ts"
import { machine, startServer } from "./util.ts"

const workloads: Record<string, (url: string) => Promise<void>> = {
  insert: async (url) => printInsert(await runInsert(url))
}

const requested = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = requested.filter((w) => !(w in workloads))
if (unknown.length > 0) {
  console.error(`unknown workload(s): ${unknown.join(", ")}; known: ${Object.keys(workloads).join(", ")}`)
  process.exit(2)
}
const selected = requested.length === 0 ? Object.keys(workloads) : requested

const server = await startServer()
console.log(`# effect-river benchmarks\nmachine: ${machine()}\ndatabase: ${server.label}`)
try {
  for (const name of selected) await workloads[name]!(server.url)
} finally {
  await server.stop()
}
