/**
 * Executor CPU (issue 16): what the runtime spends per no-op job between a fetched row and its
 * completion handed to the completer — decoding, the job's fiber, the outcome — with no
 * database: the executor runs batches of 1,000 rows (`maxWorkers`-sized, as W1's best setting
 * fetches them) and each completion goes to a counter. Telemetry as shipped (no exporter) and
 * off, rounds alternating; the process's CPU time per job (`process.cpuUsage`), median of the
 * rounds. W1's CPU per job is this plus the driver (statements, encoding and decoding rows), the
 * producer and the completer.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { JobRow } from "../src/Job.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Worker from "../src/Worker.ts"
import type { Driver } from "../src/internal/driver/driver.ts"
import * as Executor from "../src/internal/executor.ts"
import * as Telemetry from "../src/internal/telemetry.ts"
import { step } from "./guard.ts"
import { fmt, median, range } from "./util.ts"

const Noop = JobKind.make("bench_executor_noop", { args: Schema.Struct({ n: Schema.Int }) })

/** CPU per job of every round, as shipped and with telemetry off. */
export interface ExecutorFigures {
  readonly jobsPerRound: number
  readonly rounds: number
  /** µs of CPU per job, one value per round. */
  readonly shipped: ReadonlyArray<number>
  readonly off: ReadonlyArray<number>
}

const row = (id: number, at: Date): JobRow => ({
  id: BigInt(id),
  state: "running",
  attempt: 1,
  maxAttempts: 25,
  attemptedAt: at,
  attemptedBy: ["bench"],
  createdAt: at,
  finalizedAt: null,
  scheduledAt: at,
  priority: 1,
  args: { n: id },
  errors: [],
  kind: Noop.kind,
  metadata: {},
  queue: "default",
  tags: [],
  uniqueKey: null,
  uniqueStates: null
})

/** One round: `batches` batches of `batch` jobs through one executor; µs of CPU per job. */
const round = (telemetry: boolean, batch: number, batches: number) =>
  Effect.scoped(Effect.gen(function*() {
    let completed = 0
    const executor = yield* Executor.make({
      // A no-op worker without steps never reaches the driver.
      driver: {} as Driver,
      workers: new Map([[Noop.kind, Worker.make(Noop, () => Effect.void)]]),
      jobTimeout: Duration.minutes(1),
      retryPolicy: undefined,
      complete: () =>
        Effect.sync(() => {
          completed++
        })
    })
    const at = new Date()
    const batchesOfRows = Array.from({ length: batches }, (_, b) => Array.from({ length: batch }, (_, i) => row(b * batch + i + 1, at)))
    const cpu0 = process.cpuUsage()
    for (const rows of batchesOfRows) {
      yield* executor.start(rows, 0)
      yield* executor.awaitIdle
    }
    const cpu = process.cpuUsage(cpu0)
    if (completed !== batch * batches) return yield* Effect.die(new Error(`expected ${batch * batches} completions, got ${completed}`))
    return (cpu.user + cpu.system) / completed
  }).pipe(Effect.provideService(Telemetry.Enabled, telemetry)))

/** Warms up, then runs `rounds` rounds of each, alternating which goes first. */
export const runExecutor = async (options: { readonly rounds?: number; readonly batches?: number } = {}): Promise<ExecutorFigures> => {
  const rounds = options.rounds ?? 10
  const batches = options.batches ?? 50
  const batch = 1_000
  step("executor: warm-up")
  await Effect.runPromise(round(true, batch, batches))
  await Effect.runPromise(round(false, batch, batches))
  const shipped: Array<number> = []
  const off: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    step(`executor: round ${r + 1} of ${rounds}`)
    for (const telemetry of r % 2 === 0 ? [true, false] : [false, true]) {
      ;(telemetry ? shipped : off).push(await Effect.runPromise(round(telemetry, batch, batches)))
    }
  }
  return { jobsPerRound: batch * batches, rounds, shipped, off }
}

/** Prints the medians and ranges. */
export const printExecutor = (f: ExecutorFigures) => {
  console.log(`\n## executor: CPU per no-op job, no database (${fmt(f.jobsPerRound)} jobs a round, ${f.rounds} rounds each)`)
  console.log(`  as shipped     ${fmt(median(f.shipped), 2).padStart(6)} µs/job  range ${range(f.shipped, 2)}`)
  console.log(`  telemetry off  ${fmt(median(f.off), 2).padStart(6)} µs/job  range ${range(f.off, 2)}`)
}
