/**
 * The summary of one run: issue 16's table, every figure next to its competitors and its ceiling
 * with the ratio its goal is stated in. Filled by the workloads that ran; rows whose workload did
 * not run are left out.
 */
import type { BacklogFigures, BacklogSkipped } from "./backlog.ts"
import type { BurstFigures } from "./burst.ts"
import { rate } from "./contenders/types.ts"
import type { InsertFigures } from "./insert.ts"
import { mannWhitney, type TelemetryFigures } from "./telemetry.ts"
import { fmt, median, ratio } from "./util.ts"
import type { W1Figures, W1TenFigures } from "./w1.ts"
import type { W2Figures } from "./w2.ts"
import type { W3Figures } from "./w3.ts"

export interface Summary {
  insert?: InsertFigures
  w1?: W1Figures
  w1Ten?: W1TenFigures
  w2?: W2Figures
  w3?: W3Figures
  burst?: BurstFigures
  backlog?: { readonly figures: ReadonlyArray<BacklogFigures>; readonly skipped: ReadonlyArray<BacklogSkipped> }
  telemetry?: TelemetryFigures
}

const ms = (x: number) => `${fmt(x, 1)} ms`
/** A difference against a goal stated in ms: two decimals, so "1.0 ms, not met" cannot happen. */
const diff = (x: number) => `${fmt(x, 2)} ms`
const met = (ok: boolean) => (ok ? "met" : "not met")

/** The table as Markdown lines (printed, and pasted into docs/benchmarks.md). */
export const summaryLines = (s: Summary): ReadonlyArray<string> => {
  const rows: Array<string> = []
  const row = (cells: ReadonlyArray<string>) => rows.push(`| ${cells.join(" | ")} |`)
  if (s.w1Ten !== undefined) {
    const d = s.w1Ten.defaults
    const t = s.w1Ten.tuned
    row([
      "W1 drain, **default settings**, 10 workers (jobs/s)",
      fmt(d.effectRiver.rate),
      fmt(d.graphile.rate),
      `${fmt(d.pgboss.rate, 1)} (polls)`,
      "—",
      `ours / graphile ${ratio(d.effectRiver.rate, d.graphile.rate)}: goal ≥ 1.00, ${met(d.effectRiver.rate >= d.graphile.rate)}`
    ])
    row([
      "W1 drain, 10 workers, tuned (jobs/s)",
      fmt(t.effectRiver.rate),
      fmt(t.graphile.rate),
      fmt(t.pgboss.rate),
      `${fmt(t.minimalCeiling.rate)} (minimal, batch 10)`,
      `ours / graphile ${ratio(t.effectRiver.rate, t.graphile.rate)}, ours / ceiling ${ratio(t.effectRiver.rate, t.minimalCeiling.rate)}`
    ])
  }
  if (s.w1 !== undefined) {
    const f = s.w1
    row([
      "W1 drain, best settings (jobs/s)",
      fmt(f.effectRiver.rate),
      fmt(f.graphile.rate),
      fmt(f.pgboss.rate),
      `${fmt(f.minimalCeiling.rate)} minimal; ${fmt(f.riverCeiling.rate)} River's statements`,
      `ours / graphile ${ratio(f.effectRiver.rate, f.graphile.rate)}: goal ≥ 1.20, ${
        met(f.effectRiver.rate >= 1.2 * f.graphile.rate)
      }; ours / minimal ${ratio(f.effectRiver.rate, f.minimalCeiling.rate)}: goal ≥ 0.80, ${
        met(f.effectRiver.rate >= 0.8 * f.minimalCeiling.rate)
      }`
    ])
  }
  if (s.telemetry !== undefined) {
    const f = s.telemetry
    const rates = (xs: TelemetryFigures["shipped"]) => xs.map(rate)
    const p = mannWhitney(rates(f.shipped), rates(f.off)).p
    row([
      "W1 best settings, telemetry as shipped (no exporter) / off",
      ratio(median(rates(f.shipped)), median(rates(f.off))),
      "",
      "",
      "",
      `one-sided Mann–Whitney p = ${p.toFixed(2)} (${f.rounds} rounds each): issue 15 goal within noise (p ≥ 0.05), ${met(p >= 0.05)}`
    ])
  }
  if (s.insert !== undefined) {
    const f = s.insert
    row([
      "W1 batch insert, batches of 1,000 (jobs/s)",
      `${fmt(f.fast)} (insertManyFast); ${fmt(f.library)} (insertMany)`,
      `${fmt(f.graphile)} (addJobs)`,
      `${fmt(f.pgboss)} (insert)`,
      `${fmt(f.raw)} raw multi-row; ${fmt(f.ceiling)} River's statement`,
      `insertManyFast / raw ${ratio(f.fast, f.raw)}: bulk-path goal ≥ 0.80, ${met(f.fast >= 0.8 * f.raw)}; insertManyFast / addJobs ${
        ratio(f.fast, f.graphile)
      }: goal ≥ 1.00, ${met(f.fast >= f.graphile)}; insertMany / addJobs ${ratio(f.library, f.graphile)}`
    ])
  }
  if (s.w2 !== undefined) {
    const f = s.w2
    const d = f.defaults
    row([
      "W2 insert → handler p50, **default settings**",
      ms(d.effectRiver.latency.p50),
      ms(d.graphile.latency.p50),
      `${ms(d.pgboss.latency.p50)} (polls)`,
      "—",
      `ours − graphile ${diff(d.effectRiver.latency.p50 - d.graphile.latency.p50)}: goal ≤ 1 ms, ${
        met(d.effectRiver.latency.p50 - d.graphile.latency.p50 <= 1)
      }`
    ])
    row([
      "W2 p50 / p99, tuned",
      `${ms(f.library.p50)} / ${ms(f.library.p99)}`,
      "— (default LISTENs)",
      `${ms(f.pgbossTuned.latency.p50)} / ${ms(f.pgbossTuned.latency.p99)} (notify)`,
      `${ms(f.ceiling.p50)} / ${ms(f.ceiling.p99)}`,
      `ours − ceiling ${diff(f.library.p50 - f.ceiling.p50)}: goal ≤ 0.5 ms, ${met(f.library.p50 - f.ceiling.p50 <= 0.5)}`
    ])
  }
  if (s.w3 !== undefined) {
    const f = s.w3
    row([
      "W3 cancel → interrupt p50 / max",
      `${ms(f.library.p50)} / ${ms(f.library.max)}`,
      "impossible",
      `${ms(f.pgboss.latency.p50)} / ${ms(f.pgboss.latency.max)} (heartbeats; never at defaults)`,
      `${ms(f.ceiling.p50)} / ${ms(f.ceiling.max)}`,
      `ours − ceiling ${diff(f.library.p50 - f.ceiling.p50)}: goal ≤ 1 ms, ${
        met(f.library.p50 - f.ceiling.p50 <= 1)
      }; max goal ≤ 15 ms, ${met(f.library.max <= 15)}`
    ])
  }
  if (s.burst !== undefined) {
    for (const r of s.burst.runs) {
      const fetches = r.fetches === undefined ? "fetches n/a" : `${fmt(r.fetches.calls / r.seconds, 1)} fetches/s`
      row([
        `Burst of ${fmt(r.jobs)} single inserts, runner ${r.label}`,
        `${fetches}, ${fmt(r.notifications / r.seconds, 1)} notifications/s`,
        "",
        "",
        "",
        r.label === "defaults" ? "goal: keep both at or below this baseline" : "(for comparison)"
      ])
    }
  }
  if (s.backlog !== undefined) {
    for (const b of s.backlog.figures) {
      const defaults = b.variant.nodeFlags.length === 0
      const heap = defaults
        ? b.variant.memoryLimitGib === undefined
          ? "Node's default heap"
          : `Node's default heap in a ${b.variant.memoryLimitGib} GiB memory cgroup (a container's limit)`
        : "recommended flags"
      row([
        `Memory: ${fmt(b.large.jobs)}-job backlog, peak RSS, ${heap}`,
        `${fmt(b.large.maxRssMb)} MB`,
        "",
        "",
        "",
        defaults ? `goal < 250 MB, ${met(b.large.maxRssMb < 250)}` : `target < 200 MB, ${met(b.large.maxRssMb < 200)}`
      ])
    }
    for (const skipped of s.backlog.skipped) {
      row([`Memory: backlog, ${skipped.variant.label}`, "skipped", "", "", "", skipped.why])
    }
  }
  if (rows.length === 0) return []
  return [
    "| Workload | effect-river | graphile-worker | pg-boss | raw SQL on River's table | ratio and goal (issue 16) |",
    "|---|---|---|---|---|---|",
    ...rows
  ]
}

export const printSummary = (s: Summary, header: string) => {
  const lines = summaryLines(s)
  if (lines.length === 0) return
  console.log(`\n## summary (issue 16), ${header}`)
  for (const l of lines) console.log(l)
}
