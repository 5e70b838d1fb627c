/**
 * Flow control (issue 17), two figures:
 *
 * - **Cost of a limit that never binds**: W1's drain (20,000 no-op jobs inserted while nothing
 *   works them, then one runner at W1's best settings — `maxWorkers` 1,000, `fetchCooldown` 2 ms,
 *   `fetchPollInterval` 20 ms — timed until the 20,000th `completed` event) without limits and
 *   with `globalLimit: 1,000,000`, 7 rounds each alternating; medians and their ratio (target ≥ 0.9).
 *   The limited fetch takes the queue's advisory lock and counts its running jobs first.
 * - **Slot latency under a binding limit**: two runners in this process at their defaults
 *   (`fetchCooldown` 100 ms), `globalLimit: 5`, `maxWorkers` 10 each; 1,000 jobs that sleep 20 ms.
 *   Every handler records its start and end; for each start after the first five, the time since
 *   the latest end before it is how long a freed slot stayed empty (p50 target: below the
 *   100 ms fetch cooldown). Throughput next to the ideal `5 / 20 ms` = 250 jobs/s, and the slot
 *   use: the handlers' time over 5 slots × the span from the first start to the last end.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Latch, ManagedRuntime, Option, PubSub, References, Schema, Scope } from "effect"
import type { SqlClient } from "effect/sql"
import { BenchTimeout, step } from "./guard.ts"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import * as Runner from "../src/Runner.ts"
import * as Worker from "../src/Worker.ts"
import { benchDatabase, fmt, median, percentile } from "./util.ts"

const Noop = JobKind.make("bench_flow_noop", { args: Schema.Struct({ n: Schema.Int }) })
const Sleepy = JobKind.make("bench_flow_sleep", { args: Schema.Struct({ n: Schema.Int, ms: Schema.Int }) })

export interface FlowFigures {
  readonly unlimited: ReadonlyArray<number>
  readonly limited: ReadonlyArray<number>
  readonly slot: {
    readonly jobs: number
    readonly p50: number
    readonly p90: number
    readonly jobsPerSecond: number
    readonly ideal: number
    readonly peak: number
    /** The handlers' mean duration, ms (a little over the 20 ms they sleep). */
    readonly meanJobMillis: number
    /** Handler time / (5 slots × the span from the first start to the last end). */
    readonly utilization: number
  }
}

type Db = PgClient.PgClient | SqlClient.SqlClient

export const runFlow = async (serverUrl: string, options: { readonly rounds?: number } = {}): Promise<FlowFigures> => {
  const rounds = options.rounds ?? 7
  const { layer } = await benchDatabase(serverUrl, "bench_flow", 12)
  const runtime = ManagedRuntime.make(layer)
  const run = <A, E>(effect: Effect.Effect<A, E, Db | Scope.Scope>): Promise<A> =>
    runtime.runPromise(effect.pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Warn")))
  try {
    const prepare = (jobs: number, make: (n: number) => JobKind.InsertRequest) =>
      run(Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const client = yield* Client.make({})
        yield* sql`TRUNCATE river_job`
        for (let start = 0; start < jobs; start += 1_000) {
          yield* client.insertMany(Array.from({ length: Math.min(1_000, jobs - start) }, (_, i) => make(start + i)))
        }
        yield* sql`CHECKPOINT`
      }))

    const JOBS = 20_000
    const drain = (globalLimit: number | undefined) =>
      run(Effect.gen(function*() {
        const go = yield* Latch.make(false)
        const { runner } = yield* Runner.make({
          queues: { default: { maxWorkers: 1_000, ...(globalLimit === undefined ? {} : { globalLimit }) } },
          workers: [Worker.make(Noop, () => go.await)],
          fetchCooldown: "2 millis",
          fetchPollInterval: "20 millis",
          eventBuffer: JOBS * 2
        })
        const events = yield* runner.subscribe
        const t0 = performance.now()
        yield* go.open
        let completed = 0
        while (completed < JOBS) {
          if (performance.now() - t0 > 120_000) {
            return yield* Effect.die(new BenchTimeout(`flow drain (globalLimit ${globalLimit}) did not finish in 120 s: ${completed} done`))
          }
          const taken = yield* PubSub.takeAll(events).pipe(Effect.timeoutOption(1_000))
          if (Option.isSome(taken)) for (const event of taken.value) if (event.kind === "completed") completed++
        }
        const rate = JOBS / ((performance.now() - t0) / 1_000)
        // A no-op job never fails: one that did (a timeout after a hang, say) is a finding, and it
        // shows as a round far slower than the others. Say which.
        const sql = yield* PgClient.PgClient
        const [failed] = yield* sql<{ n: number; first: string | null }>`SELECT count(*)::int AS n,
          min(errors[1]::text) AS first FROM river_job WHERE cardinality(errors) > 0`
        if (failed!.n > 0) {
          console.log(`  (globalLimit ${globalLimit ?? "none"}: ${failed!.n} jobs failed an attempt in this round; first error: ${failed!.first})`)
        }
        return rate
      }))

    const unlimited: Array<number> = []
    const limited: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      for (const limit of round % 2 === 0 ? [undefined, 1_000_000] : [1_000_000, undefined]) {
        step(`flow drain round ${round + 1}, globalLimit ${limit ?? "none"}`)
        await prepare(JOBS, (n) => Noop.of({ n }))
        ;(limit === undefined ? unlimited : limited).push(await drain(limit))
      }
    }

    step("flow slot latency")
    const SLOT_JOBS = 1_000
    const MS = 20
    await prepare(SLOT_JOBS, (n) => Sleepy.of({ n, ms: MS }))
    const slot = await run(Effect.gen(function*() {
      const spans: Array<readonly [number, number]> = []
      let open = 0
      let peak = 0
      const done = yield* Latch.make(false)
      const worker = Worker.make(Sleepy, (job) =>
        Effect.gen(function*() {
          const start = performance.now()
          open++
          peak = Math.max(peak, open)
          yield* Effect.sleep(job.args.ms)
          open--
          spans.push([start, performance.now()])
          if (spans.length === SLOT_JOBS) yield* done.open
        }))
      const queues = { default: { maxWorkers: 10, globalLimit: 5 } }
      const t0 = performance.now()
      yield* Runner.make({ queues, workers: [worker] })
      yield* Runner.make({ queues, workers: [worker] })
      yield* done.await.pipe(
        Effect.timeoutOrElse({
          duration: "180 seconds",
          orElse: () => Effect.die(new BenchTimeout(`flow slot latency: ${spans.length} of ${SLOT_JOBS} jobs in 180 s`))
        })
      )
      const seconds = (performance.now() - t0) / 1_000
      const starts = spans.map(([s]) => s).sort((a, b) => a - b)
      const ends = spans.map(([, e]) => e).sort((a, b) => a - b)
      const gaps: Array<number> = []
      let e = -1
      for (const start of starts.slice(5)) {
        while (e + 1 < ends.length && ends[e + 1]! <= start) e++
        if (e >= 0) gaps.push(start - ends[e]!)
      }
      // Slot use: the handlers' own time against 5 slots over the span from the first start to
      // the last end (so the runners' start-up and the job's real length, a little over 20 ms,
      // are left out): 1.0 would be a slot never empty.
      const busy = spans.reduce((n, [s, e]) => n + (e - s), 0)
      const span = ends.at(-1)! - starts[0]!
      return {
        jobs: SLOT_JOBS,
        meanJobMillis: busy / spans.length,
        utilization: busy / (5 * span),
        p50: percentile(gaps, 50),
        p90: percentile(gaps, 90),
        jobsPerSecond: SLOT_JOBS / seconds,
        ideal: 5 * (1_000 / MS),
        peak
      }
    }))
    return { unlimited, limited, slot }
  } finally {
    await runtime.dispose()
  }
}

export const printFlow = (f: FlowFigures): void => {
  const u = median(f.unlimited)
  const l = median(f.limited)
  console.log("\n## flow: flow control (issue 17)")
  console.log(`  W1 drain, no limit                      ${fmt(u).padStart(8)} jobs/s   (rounds: ${f.unlimited.map((x) => fmt(x)).join(", ")})`)
  console.log(`  W1 drain, globalLimit 1,000,000         ${fmt(l).padStart(8)} jobs/s   (rounds: ${f.limited.map((x) => fmt(x)).join(", ")})`)
  console.log(`  cost of a limit that never binds        ${(l / u).toFixed(2)} × unlimited (target ≥ 0.90)`)
  console.log(
    `  slot latency, globalLimit 5, 2 runners  p50 ${fmt(f.slot.p50, 1)} ms, p90 ${fmt(f.slot.p90, 1)} ms ` +
      `(target: p50 below the 100 ms fetch cooldown)`
  )
  console.log(
    `  throughput, 20 ms jobs                  ${fmt(f.slot.jobsPerSecond).padStart(8)} jobs/s next to the ideal ` +
      `${fmt(f.slot.ideal)} (5 / 20 ms); most running at once: ${f.slot.peak}`
  )
  console.log(
    `  slot use under the limit                ${f.slot.utilization.toFixed(2).padStart(8)}    ` +
      `(handler time / 5 slots × span; jobs ran ${fmt(f.slot.meanJobMillis, 1)} ms on average)`
  )
}
