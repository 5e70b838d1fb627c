/**
 * W1, throughput: a backlog of 20,000 no-op jobs, inserted while nothing works it (each
 * contender with its own batch API, batches of 1,000, table emptied first, `CHECKPOINT` after),
 * then worked and timed until every job's completion is committed. Every measured round starts
 * from that same state. Contenders (bench/contenders/*.ts say how each is driven and timed):
 *
 * - **effect-river** (`Runner.make`), **graphile-worker** (`run`), **pg-boss** (`work`), each on
 *   its own database of the same server;
 * - the **River ceiling**: River's locking fetch and River's batched completion, the statements
 *   the runtime sends, through the driver, pipelined;
 * - the **minimal ceiling** (issue 16): a fetch returning only what the executor needs and a
 *   completion that sets `state`/`finalized_at` for an id array, nothing returned, pipelined.
 *
 * Two workloads:
 *
 * - `w1` (**best settings**): each contender's candidate settings are tried once (the sweep);
 *   the best of each then runs `rounds` more rounds, contenders alternating; medians reported.
 * - `w1-10` (**10 workers**, at most 10 jobs in hand at once): each contender at its documented
 *   defaults with 10 workers, and tuned for 10 workers; `rounds` alternating rounds each. A round
 *   ends when the backlog is drained or after a 10 s window, whichever is first (pg-boss's default
 *   2 s polls and effect-river's default 100 ms fetch cooldown would take minutes to drain 20,000
 *   jobs; their rate is steady, so the window measures it).
 *
 * Also printed: the benchmark process's CPU time per job (`process.cpuUsage`; PostgreSQL's not
 * included — every contender runs in this process, so it compares the libraries' own costs).
 */
import { type DrainRound, type DrainSpec, rate } from "./contenders/types.ts"
import { describeGraphile, type GraphileSettings, makeGraphile } from "./contenders/graphile.ts"
import { describePgBoss, makePgBoss, type PgBossSettings } from "./contenders/pgboss.ts"
import { describeRiver, makeRiver, type RiverSettings } from "./contenders/river.ts"
import { step } from "./guard.ts"
import { fmt, median, range, ratio } from "./util.ts"

/** A contender's figures for one row. */
export interface Contender {
  readonly name: string
  readonly settings: string
  /** Median rate of the measured rounds, jobs/s. */
  readonly rate: number
  readonly rates: ReadonlyArray<number>
  readonly cpuMicros: number
  /** Rounds that ended on the window instead of draining everything. */
  readonly windowed: number
  readonly rounds: number
}

export interface Trial {
  readonly label: string
  readonly rate: number
  readonly cpuMicros: number
}

/** Who runs a drain round, with which settings. */
interface Candidate {
  readonly name: string
  readonly settings: string
  /** effect-river's settings (to run the best one again with an exporter). */
  readonly river?: RiverSettings
  /** prepare + one drain round */
  readonly round: (spec: DrainSpec) => Promise<DrainRound>
}

const summarize = (c: Candidate, rounds: ReadonlyArray<DrainRound>, jobs: number): Contender => ({
  name: c.name,
  settings: c.settings,
  rate: median(rounds.map(rate)),
  rates: rounds.map(rate),
  cpuMicros: median(rounds.map((r) => r.cpuMicros)),
  windowed: rounds.filter((r) => r.completed < jobs).length,
  rounds: rounds.length
})

/** Runs `rounds` rounds of every candidate, alternating, and summarizes each. */
const alternate = async (
  title: string,
  candidates: ReadonlyArray<Candidate>,
  rounds: number,
  spec: DrainSpec
): Promise<ReadonlyArray<Contender>> => {
  const results = candidates.map(() => [] as Array<DrainRound>)
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of candidates.entries()) {
      step(`${title}: round ${r + 1} of ${rounds}, ${c.name} (${c.settings})`)
      results[i]!.push(await c.round(spec))
    }
  }
  return candidates.map((c, i) => summarize(c, results[i]!, spec.jobs))
}

const makeContenders = async (serverUrl: string, suffix: string, jobs: number, insertBatch: number) => {
  const river = await makeRiver(serverUrl, `bench_${suffix}`)
  const graphile = await makeGraphile(serverUrl, `bench_${suffix}_graphile`)
  const pgboss = await makePgBoss(serverUrl, `bench_${suffix}_pgboss`)
  const candidates = {
    river: (s: RiverSettings): Candidate => ({
      name: s.telemetry === "otel"
        ? "effect-river + OTel exporter"
        : s.telemetry === "off"
        ? "effect-river, telemetry off"
        : "effect-river",
      settings: describeRiver(s),
      river: s,
      round: async (spec) => {
        await river.prepare(jobs, insertBatch)
        return river.drain(s, spec)
      }
    }),
    graphile: (s: GraphileSettings): Candidate => ({
      name: "graphile-worker",
      settings: describeGraphile(s),
      round: async (spec) => {
        await graphile.prepare(jobs, insertBatch)
        return graphile.drain(s, spec)
      }
    }),
    pgboss: (s: PgBossSettings): Candidate => ({
      name: "pg-boss",
      settings: describePgBoss(s),
      round: async (spec) => {
        await pgboss.prepare(jobs, insertBatch)
        return pgboss.drain(s, spec)
      }
    }),
    ceiling: (kind: "river" | "minimal", batch: number): Candidate => ({
      name: kind === "river" ? "River ceiling" : "minimal ceiling",
      settings: `batch ${fmt(batch)}`,
      round: async (spec) => {
        await river.prepare(jobs, insertBatch)
        return river.ceiling(kind, batch, spec)
      }
    })
  }
  const close = async () => {
    await graphile.close()
    await pgboss.close()
    await river.close()
  }
  return { candidates, close }
}

// ---------------------------------------------------------------- w1: best settings

/** River's own benchmark settings for its drain (fetchCooldown 2 ms, fetchPollInterval 20 ms). */
const RIVER_FAST = { fetchCooldown: "2 millis", fetchPollInterval: "20 millis" } as const

export interface W1Options {
  readonly jobs?: number
  readonly insertBatch?: number
  readonly rounds?: number
  readonly riverMaxWorkers?: ReadonlyArray<number>
  readonly graphile?: ReadonlyArray<GraphileSettings>
  readonly pgboss?: ReadonlyArray<PgBossSettings>
  readonly ceilingBatches?: ReadonlyArray<number>
  /** The minimal ceiling's fetch limit (issue 16: 2,000). */
  readonly minimalBatch?: number
}

export interface W1Figures {
  readonly jobs: number
  readonly insertBatch: number
  readonly rounds: number
  readonly sweep: ReadonlyArray<Trial>
  readonly effectRiver: Contender
  /** The same settings with an OpenTelemetry SDK and in-memory exporters installed. */
  readonly effectRiverOtel: Contender
  /** The same settings with `telemetry: false` (no metrics, spans or log annotations). */
  readonly effectRiverOff: Contender
  readonly graphile: Contender
  readonly pgboss: Contender
  readonly riverCeiling: Contender
  readonly minimalCeiling: Contender
}

export const runW1 = async (serverUrl: string, options: W1Options = {}): Promise<W1Figures> => {
  const jobs = options.jobs ?? 20_000
  const insertBatch = options.insertBatch ?? 1_000
  const rounds = options.rounds ?? 5
  const spec: DrainSpec = { jobs, timeoutMillis: 120_000 }
  const { candidates: c, close } = await makeContenders(serverUrl, "w1", jobs, insertBatch)
  try {
    const groups: ReadonlyArray<ReadonlyArray<Candidate>> = [
      (options.riverMaxWorkers ?? [1_000, 2_000, 5_000]).map((maxWorkers) => c.river({ maxWorkers, ...RIVER_FAST })),
      (options.graphile ?? [
        { concurrency: 10, localQueueSize: 500, completeJobBatchDelay: 0 },
        { concurrency: 50, localQueueSize: 1_000, completeJobBatchDelay: 0 },
        { concurrency: 100, localQueueSize: 2_000, completeJobBatchDelay: 0, maxPoolSize: 20 }
      ]).map(c.graphile),
      (options.pgboss ?? [
        { localConcurrency: 2, batchSize: 1_000, burstWhenBatchFull: true },
        { localConcurrency: 4, batchSize: 500, burstWhenBatchFull: true },
        { localConcurrency: 8, batchSize: 250, burstWhenBatchFull: true }
      ]).map(c.pgboss),
      (options.ceilingBatches ?? [500, 1_000, 2_000]).map((b) => c.ceiling("river", b)),
      [c.ceiling("minimal", options.minimalBatch ?? 2_000)]
    ]
    // Warm-up: prepared statements, JIT, each library's start-up path.
    for (const g of groups) {
      step(`w1: warm-up, ${g[0]!.name}`)
      await g[0]!.round(spec)
    }
    const sweep: Array<Trial> = []
    const best: Array<Candidate> = []
    for (const g of groups) {
      let top: { c: Candidate; rate: number } | undefined
      for (const candidate of g) {
        if (g.length === 1) {
          top = { c: candidate, rate: 0 }
          break
        }
        step(`w1: sweep, ${candidate.name} (${candidate.settings})`)
        const round = await candidate.round(spec)
        sweep.push({ label: `${candidate.name}, ${candidate.settings}`, rate: rate(round), cpuMicros: round.cpuMicros })
        if (top === undefined || rate(round) > top.rate) top = { c: candidate, rate: rate(round) }
      }
      best.push(top!.c)
    }
    // The best effect-river settings again with an exporter installed (what tracing and metrics
    // cost once exported), in the same alternation.
    // The baseline: the same settings with telemetry off.
    best.splice(1, 0, c.river({ ...best[0]!.river!, telemetry: "otel" }), c.river({ ...best[0]!.river!, telemetry: "off" }))
    const [effectRiver, effectRiverOtel, effectRiverOff, graphile, pgboss, riverCeiling, minimalCeiling] = await alternate(
      "w1",
      best,
      rounds,
      spec
    )
    return {
      jobs,
      insertBatch,
      rounds,
      sweep,
      effectRiver: effectRiver!,
      effectRiverOtel: effectRiverOtel!,
      effectRiverOff: effectRiverOff!,
      graphile: graphile!,
      pgboss: pgboss!,
      riverCeiling: riverCeiling!,
      minimalCeiling: minimalCeiling!
    }
  } finally {
    await close()
  }
}

const line = (label: string, value: string, extra = "") => console.log(`  ${label.padEnd(44)}${value.padStart(14)}  ${extra}`)

const contenderLine = (x: Contender) =>
  line(
    `${x.name} (${x.settings})`.length > 44 ? x.name : `${x.name}`,
    `${fmt(x.rate)} jobs/s`,
    `range ${range(x.rates)}, ${fmt(x.cpuMicros, 1)} µs CPU/job${
      x.windowed > 0 ? `, ${x.windowed} of ${x.rounds} rounds ended on the window` : ""
    }   [${x.settings}]`
  )

export const printW1 = (f: W1Figures) => {
  console.log(`\n## w1: drain ${fmt(f.jobs)} no-op jobs at best settings (each contender's batch insert, batches of ${fmt(f.insertBatch)})`)
  console.log("  sweep, one round each (the best of each contender goes on):")
  for (const t of f.sweep) console.log(`    ${fmt(t.rate).padStart(8)} jobs/s  ${fmt(t.cpuMicros, 1).padStart(6)} µs CPU/job  ${t.label}`)
  console.log(`  best of each, median of ${f.rounds} alternating rounds:`)
  for (const x of [f.effectRiver, f.effectRiverOtel, f.effectRiverOff, f.graphile, f.pgboss, f.riverCeiling, f.minimalCeiling]) contenderLine(x)
  line("effect-river as shipped / telemetry off", ratio(f.effectRiver.rate, f.effectRiverOff.rate), "(metrics and log annotations, no exporter)")
  line("effect-river + OTel exporter / as shipped", ratio(f.effectRiverOtel.rate, f.effectRiver.rate), "(the cost of exporting spans and metrics)")
  line("effect-river / minimal ceiling", ratio(f.effectRiver.rate, f.minimalCeiling.rate), "(issue 16 goal >= 0.80)")
  line("effect-river / River ceiling", ratio(f.effectRiver.rate, f.riverCeiling.rate), "(earlier target >= 0.90)")
  line("effect-river / graphile-worker", ratio(f.effectRiver.rate, f.graphile.rate), "(issue 16 goal >= 1.20)")
  line("effect-river / pg-boss", ratio(f.effectRiver.rate, f.pgboss.rate))
  line("River ceiling / minimal ceiling", ratio(f.riverCeiling.rate, f.minimalCeiling.rate), "(what River's statements cost)")
}

// ---------------------------------------------------------------- w1-10: 10 workers

export interface W1TenFigures {
  readonly jobs: number
  readonly rounds: number
  readonly windowMillis: number
  readonly defaults: { readonly effectRiver: Contender; readonly graphile: Contender; readonly pgboss: Contender }
  readonly tuned: {
    readonly effectRiver: Contender
    readonly graphile: Contender
    readonly pgboss: Contender
    readonly minimalCeiling: Contender
  }
}

/** The documented defaults, with 10 workers. */
export const TEN_DEFAULTS = {
  effectRiver: { maxWorkers: 10 } satisfies RiverSettings,
  graphile: { concurrency: 10 } satisfies GraphileSettings,
  pgboss: { localConcurrency: 10 } satisfies PgBossSettings
}

/** Tuned for throughput with at most 10 jobs in hand. */
export const TEN_TUNED = {
  effectRiver: { maxWorkers: 10, ...RIVER_FAST } satisfies RiverSettings,
  graphile: { concurrency: 10, localQueueSize: 500, completeJobBatchDelay: 0 } satisfies GraphileSettings,
  pgboss: { localConcurrency: 1, batchSize: 10, burstWhenBatchFull: true } satisfies PgBossSettings,
  ceilingBatch: 10
}

export const runW1Ten = async (
  serverUrl: string,
  options: { readonly jobs?: number; readonly rounds?: number; readonly windowMillis?: number } = {}
): Promise<W1TenFigures> => {
  const jobs = options.jobs ?? 20_000
  const rounds = options.rounds ?? 3
  const windowMillis = options.windowMillis ?? 10_000
  const spec: DrainSpec = { jobs, windowMillis, timeoutMillis: windowMillis + 60_000 }
  const { candidates: c, close } = await makeContenders(serverUrl, "w1_10", jobs, 1_000)
  try {
    const defaults = [c.river(TEN_DEFAULTS.effectRiver), c.graphile(TEN_DEFAULTS.graphile), c.pgboss(TEN_DEFAULTS.pgboss)]
    const tuned = [
      c.river(TEN_TUNED.effectRiver),
      c.graphile(TEN_TUNED.graphile),
      c.pgboss(TEN_TUNED.pgboss),
      c.ceiling("minimal", TEN_TUNED.ceilingBatch)
    ]
    const [dr, dg, dp] = await alternate("w1-10 defaults", defaults, rounds, spec)
    const [tr, tg, tp, tc] = await alternate("w1-10 tuned", tuned, rounds, spec)
    return {
      jobs,
      rounds,
      windowMillis,
      defaults: { effectRiver: dr!, graphile: dg!, pgboss: dp! },
      tuned: { effectRiver: tr!, graphile: tg!, pgboss: tp!, minimalCeiling: tc! }
    }
  } finally {
    await close()
  }
}

export const printW1Ten = (f: W1TenFigures) => {
  console.log(
    `\n## w1-10: drain ${fmt(f.jobs)} no-op jobs with 10 workers (at most 10 jobs in hand); a round ends drained or after ${
      f.windowMillis / 1000
    } s; median of ${f.rounds} alternating rounds`
  )
  console.log("  documented defaults, 10 workers:")
  for (const x of [f.defaults.effectRiver, f.defaults.graphile, f.defaults.pgboss]) contenderLine(x)
  line("effect-river / graphile-worker, defaults", ratio(f.defaults.effectRiver.rate, f.defaults.graphile.rate), "(issue 16 goal >= 1.00)")
  line("effect-river / pg-boss, defaults", ratio(f.defaults.effectRiver.rate, f.defaults.pgboss.rate))
  console.log("  tuned, 10 workers:")
  for (const x of [f.tuned.effectRiver, f.tuned.graphile, f.tuned.pgboss, f.tuned.minimalCeiling]) contenderLine(x)
  line("effect-river / minimal ceiling, batch 10", ratio(f.tuned.effectRiver.rate, f.tuned.minimalCeiling.rate))
  line("effect-river / graphile-worker, tuned", ratio(f.tuned.effectRiver.rate, f.tuned.graphile.rate))
  line("effect-river defaults / effect-river tuned", ratio(f.defaults.effectRiver.rate, f.tuned.effectRiver.rate), "(what the defaults cost)")
}
