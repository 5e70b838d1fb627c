/**
 * Telemetry cost (issue 15): W1's drain at its best effect-river settings (`maxWorkers` 1,000,
 * `fetchCooldown` 2 ms, `fetchPollInterval` 20 ms; 20,000 no-op jobs inserted while nothing works
 * them) three ways, rounds alternating:
 *
 * - **as shipped** (metrics into Effect's registry, worker log annotations, no exporter), twice:
 *   the second copy is the noise control — the same code measured as a different contender;
 * - **telemetry off** (the runner's `telemetry: false`): the baseline.
 *
 * Each round runs the three in a rotated order (no contender always runs first or after the same
 * one). Printed: each one's median rate and CPU per job, the ratios, and a one-sided Mann–Whitney U
 * test on the rounds' rates (exact): the probability that rates as low as the shipped ones, against
 * the baseline's, come from one distribution. "Within noise" means telemetry's rounds are not
 * significantly slower: p ≥ 0.05. The control, the same code as a second contender, shows what the
 * test says about noise alone.
 */
import { describeRiver, makeRiver, type RiverSettings } from "./contenders/river.ts"
import { type DrainRound, rate } from "./contenders/types.ts"
import { step } from "./guard.ts"
import { fmt, median, range, ratio } from "./util.ts"

const SETTINGS: RiverSettings = { maxWorkers: 1_000, fetchCooldown: "2 millis", fetchPollInterval: "20 millis" }

/** Every round's drain, per variant (rates and CPU per job come from these). */
export interface TelemetryFigures {
  readonly jobs: number
  readonly rounds: number
  readonly shipped: ReadonlyArray<DrainRound>
  readonly control: ReadonlyArray<DrainRound>
  readonly off: ReadonlyArray<DrainRound>
}

/** Runs the three variants `rounds` times each, the order rotating every round. */
export const runTelemetry = async (
  serverUrl: string,
  options: { readonly jobs?: number; readonly rounds?: number } = {}
): Promise<TelemetryFigures> => {
  const jobs = options.jobs ?? 20_000
  const rounds = options.rounds ?? 9
  const river = await makeRiver(serverUrl, "bench_telemetry")
  try {
    const spec = { jobs, timeoutMillis: 120_000 }
    const variants = [
      { name: "as shipped", settings: SETTINGS, out: [] as Array<DrainRound> },
      { name: "telemetry off", settings: { ...SETTINGS, telemetry: "off" } as RiverSettings, out: [] as Array<DrainRound> },
      { name: "as shipped (control)", settings: SETTINGS, out: [] as Array<DrainRound> }
    ]
    step("telemetry: warm-up")
    await river.prepare(jobs, 1_000)
    await river.drain(SETTINGS, spec)
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(r + i) % variants.length]!
        step(`telemetry: round ${r + 1} of ${rounds}, ${v.name} (${describeRiver(v.settings)})`)
        await river.prepare(jobs, 1_000)
        v.out.push(await river.drain(v.settings, spec))
      }
    }
    return { jobs, rounds, shipped: variants[0]!.out, off: variants[1]!.out, control: variants[2]!.out }
  } finally {
    await river.close()
  }
}

/**
 * One-sided exact Mann–Whitney U test of "`a` tends lower than `b`": `u` counts the pairs where
 * `a`'s value is the larger (ties count half), `p` is the probability of a `u` that small or
 * smaller if both samples came from one distribution.
 */
export const mannWhitney = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): { readonly u: number; readonly p: number } => {
  let u = 0
  for (const x of a) for (const y of b) u += x > y ? 1 : x === y ? 0.5 : 0
  // The distribution of U by counting: ways[n][m][k] over rank placements (small samples only).
  const n = a.length
  const m = b.length
  const memo = new Map<string, number>()
  const ways = (i: number, j: number, k: number): number => {
    if (k < 0) return 0
    if (i === 0 || j === 0) return k === 0 ? 1 : 0
    const key = `${i},${j},${k}`
    const hit = memo.get(key)
    if (hit !== undefined) return hit
    const w = ways(i - 1, j, k - j) + ways(i, j - 1, k)
    memo.set(key, w)
    return w
  }
  let total = 0
  const counts: Array<number> = []
  for (let k = 0; k <= n * m; k++) total += counts[k] = ways(n, m, k)
  let extreme = 0
  for (let k = 0; k <= n * m && k <= u + 1e-9; k++) extreme += counts[k]!
  return { u, p: extreme / total }
}

const signed = (x: number) => `${x < -0.05 ? "−" : "+"}${fmt(Math.abs(x), 1)}`

/** Prints the medians, the ratios and the test's verdict. */
export const printTelemetry = (f: TelemetryFigures) => {
  const rates = (xs: ReadonlyArray<DrainRound>) => xs.map(rate)
  const cpu = (xs: ReadonlyArray<DrainRound>) => median(xs.map((r) => r.cpuMicros))
  console.log(`\n## telemetry: W1 drain of ${fmt(f.jobs)} no-op jobs, best settings, ${f.rounds} alternating rounds each`)
  for (const [label, xs] of [["as shipped", f.shipped], ["telemetry off", f.off], ["as shipped (control)", f.control]] as const) {
    console.log(
      `  ${label.padEnd(24)}${fmt(median(rates(xs))).padStart(8)} jobs/s  range ${range(rates(xs))}, ${fmt(cpu(xs), 1)} µs CPU/job`
    )
  }
  const test = mannWhitney(rates(f.shipped), rates(f.off))
  const control = mannWhitney(rates(f.shipped), rates(f.control))
  console.log(
    `  as shipped / telemetry off     ${ratio(median(rates(f.shipped)), median(rates(f.off)))}  ` +
      `(one-sided Mann–Whitney p = ${test.p.toFixed(2)}; CPU ${signed(cpu(f.shipped) - cpu(f.off))} µs/job)`
  )
  console.log(
    `  as shipped / control           ${ratio(median(rates(f.shipped)), median(rates(f.control)))}  ` +
      `(p = ${control.p.toFixed(2)}: the same code against itself)`
  )
  console.log(`  within noise (p >= 0.05): ${test.p >= 0.05 ? "yes" : "no"}`)
}
