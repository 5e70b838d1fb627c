/**
 * The workloads of `npm run bench`, each with its time limit: a workload that hangs (a failing
 * worker, a lost event) fails with a timeout message instead of hanging the run. Most steps
 * inside a workload have tighter deadlines of their own (a drain round, a latency block, a
 * child's message); these limits are the backstop, about three times a full run's duration on
 * the project's busy 2-core machine.
 */
import { printBacklog, runBacklog } from "./backlog.ts"
import { printBurst, runBurst } from "./burst.ts"
import { printExecutor, runExecutor } from "./executor.ts"
import { printFlow, runFlow } from "./flow.ts"
import { printInsert, runInsert } from "./insert.ts"
import { printSteps, runSteps } from "./steps.ts"
import { printTelemetry, runTelemetry } from "./telemetry.ts"
import type { Summary } from "./summary.ts"
import { printW1, printW1Ten, runW1, runW1Ten } from "./w1.ts"
import { printW2, runW2 } from "./w2.ts"
import { printW3, runW3 } from "./w3.ts"

export interface Workload {
  /** What it measures (for `npm run bench -- --list`). */
  readonly description: string
  /** Runs, prints and records its figures in `summary`. */
  readonly run: (serverUrl: string, summary: Summary) => Promise<void>
  readonly timeoutMillis: number
  /** Runs only when named (it takes long). */
  readonly onlyWhenNamed?: boolean
}

const MINUTE = 60_000

export const workloads: Readonly<Record<string, Workload>> = {
  insert: {
    description: "batch insert: insertMany vs River's statement, a raw multi-row insert, addJobs, pg-boss insert",
    timeoutMillis: 10 * MINUTE,
    run: async (url, summary) => printInsert(summary.insert = await runInsert(url))
  },
  w1: {
    description: "drain 20,000 jobs at best settings: effect-river, graphile-worker, pg-boss, River and minimal ceilings",
    timeoutMillis: 25 * MINUTE,
    run: async (url, summary) => printW1(summary.w1 = await runW1(url))
  },
  executor: {
    description: "CPU per no-op job in the executor alone (no database): telemetry as shipped and off",
    timeoutMillis: 5 * MINUTE,
    run: async () => printExecutor(await runExecutor())
  },
  telemetry: {
    description: "what metrics and log annotations cost on W1 (no exporter): as shipped vs telemetry off, with a noise control",
    timeoutMillis: 15 * MINUTE,
    run: async (url, summary) => printTelemetry(summary.telemetry = await runTelemetry(url))
  },
  "w1-10": {
    description: "drain with 10 workers: documented defaults and tuned, all three libraries and the minimal ceiling",
    timeoutMillis: 15 * MINUTE,
    run: async (url, summary) => printW1Ten(summary.w1Ten = await runW1Ten(url))
  },
  w2: {
    description: "insert -> handler latency: tuned vs LISTEN+fetch ceiling; defaults; graphile-worker; pg-boss",
    timeoutMillis: 10 * MINUTE,
    run: async (url, summary) => printW2(summary.w2 = await runW2(url))
  },
  w3: {
    description: "cancel -> interrupt latency of a running job: effect-river vs ceiling; pg-boss; graphile-worker",
    timeoutMillis: 5 * MINUTE,
    run: async (url, summary) => printW3(summary.w3 = await runW3(url))
  },
  steps: {
    description: "resumable steps and transactional checkpoints",
    timeoutMillis: 10 * MINUTE,
    run: async (url) => printSteps(await runSteps(url))
  },
  burst: {
    description: "fetches/s and notifications/s while 20,000 single inserts arrive in a burst",
    timeoutMillis: 10 * MINUTE,
    run: async (url, summary) => printBurst(summary.burst = await runBurst(url))
  },
  flow: {
    description: "flow control: cost of a global limit that never binds on W1; slot latency under a binding limit",
    timeoutMillis: 15 * MINUTE,
    run: async (url) => printFlow(await runFlow(url))
  },
  backlog: {
    description: "1,000,000-job backlog: drain rate and peak RSS, recommended flags, Node's defaults, and Node's defaults in a 2 GiB memory cgroup (~10 min)",
    timeoutMillis: 40 * MINUTE,
    onlyWhenNamed: true,
    run: async (url, summary) => printBacklog(summary.backlog = await runBacklog(url))
  }
}
