/**
 * effect-river and the raw-SQL ceilings on River's table, as drain (W1) contenders on one
 * migrated database, through the public modules only (`Client`, `JobKind`, `Runner`, `Worker`).
 *
 * - **effect-river**: `Runner.make` with one queue and the given settings, a worker that does
 *   nothing. The clock runs from just before `Runner.make` to the last `completed` event of
 *   `runner.subscribe` (published after the completer's write committed); a windowed round counts
 *   the events until the window closes. A full drain then checks in SQL that every row is
 *   `completed`. (The worker first awaits a latch opened right after subscribing, so no event can
 *   precede the subscription.)
 * - **River ceiling**: River's locking fetch (`LIMIT batch`) and River's batched completion, the
 *   statements the runtime sends, straight through the driver (`PgClient.unsafe`, prebuilt
 *   parameter arrays, rows not decoded), pipelined on two connections: fetch batch N+1 while
 *   batch N is completed, until a fetch comes back empty.
 * - **minimal ceiling** (issue 16): the same pipeline with the minimal statements of `sql.ts`: a
 *   fetch returning only what the executor needs, and a completion setting `state`/`finalized_at`
 *   for an id array, returning nothing.
 */
import { PgClient } from "@effect/sql-pg"
import type { SqlClient } from "effect/sql"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { type Duration, Effect, Exit, Latch, Layer, ManagedRuntime, Option, PubSub, References, Schema, Scope } from "effect"
import * as Client from "../../src/Client.ts"
import * as JobKind from "../../src/JobKind.ts"
import * as Runner from "../../src/Runner.ts"
import * as Worker from "../../src/Worker.ts"
import { BenchTimeout } from "../guard.ts"
import * as Sql from "../sql.ts"
import { benchDatabase, fmt } from "../util.ts"
import type { DrainRound, DrainSpec } from "./types.ts"

/** An OpenTelemetry SDK with in-memory exporters, as a context for the runner (see `RiverSettings.telemetry`). */
const otelContext = Effect.gen(function*() {
  const spans = new InMemorySpanExporter()
  const processor = new BatchSpanProcessor(spans, { maxQueueSize: 65_536, maxExportBatchSize: 2_048, scheduledDelayMillis: 200 })
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 1_000 })
  const context = yield* Layer.build(NodeSdk.layer(() => ({
    resource: { serviceName: "bench" },
    spanProcessor: processor,
    metricReader: reader
  })))
  return { context, spans, metrics, flush: () => Promise.all([processor.forceFlush(), reader.forceFlush()]) }
})

export const Noop = JobKind.make("bench_noop", {
  args: Schema.Struct({ n: Schema.Int })
})

/** Runner settings of a drain (effect-river's names); unset = the runtime's default. */
export interface RiverSettings {
  readonly maxWorkers: number
  readonly fetchCooldown?: Duration.Input & string
  readonly fetchPollInterval?: Duration.Input & string
  readonly completerFlushInterval?: Duration.Input & string
  readonly jobTimeout?: "none"
  /**
   * `"otel"`: the runner runs with an OpenTelemetry SDK installed through @effect/opentelemetry
   * (spans through a BatchSpanProcessor into an in-memory exporter, metrics read every second
   * into an in-memory exporter): what tracing and metrics cost once exported. Unset: as shipped,
   * no exporter (Effect's native tracer; metrics only in Effect's registry). `"off"`: the
   * runner's `telemetry: false` (no metrics, spans or log annotations): the baseline.
   */
  readonly telemetry?: "otel" | "off"
}

export const describeRiver = (s: RiverSettings): string =>
  [
    `maxWorkers ${fmt(s.maxWorkers)}`,
    s.fetchCooldown === undefined ? undefined : `fetchCooldown ${s.fetchCooldown}`,
    s.fetchPollInterval === undefined ? undefined : `fetchPollInterval ${s.fetchPollInterval}`,
    s.completerFlushInterval === undefined ? undefined : `completerFlushInterval ${s.completerFlushInterval}`,
    s.jobTimeout === undefined ? undefined : `jobTimeout ${s.jobTimeout}`,
    s.telemetry === undefined
      ? undefined
      : s.telemetry === "off"
      ? "telemetry: false"
      : "OpenTelemetry exporter installed (in-memory)"
  ].filter((x) => x !== undefined).join(", ")

type Db = PgClient.PgClient | SqlClient.SqlClient

export type CeilingKind = "river" | "minimal"

export interface RiverBench {
  /** Empty table, `jobs` jobs inserted with `Client.insertMany` in batches, CHECKPOINT; jobs/s. */
  readonly prepare: (jobs: number, batch: number) => Promise<number>
  readonly drain: (settings: RiverSettings, spec: DrainSpec) => Promise<DrainRound>
  /** One ceiling round (after `prepare`): fetch/complete pipelined in batches of `batch`. */
  readonly ceiling: (kind: CeilingKind, batch: number, spec: DrainSpec) => Promise<DrainRound>
  readonly run: <A, E>(effect: Effect.Effect<A, E, Db>) => Promise<A>
  readonly close: () => Promise<void>
}

export const makeRiver = async (serverUrl: string, database: string): Promise<RiverBench> => {
  const { layer } = await benchDatabase(serverUrl, database, 10)
  const runtime = ManagedRuntime.make(layer)
  const run = <A, E>(effect: Effect.Effect<A, E, Db>): Promise<A> =>
    runtime.runPromise(effect.pipe(Effect.provideService(References.MinimumLogLevel, "Warn")))

  const completedRows = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM river_job WHERE state = 'completed'`
    return rows[0]!.n
  })

  const verify = (expected: number, exact: boolean) =>
    Effect.flatMap(completedRows, (n) =>
      (exact ? n === expected : n >= expected)
        ? Effect.void
        : Effect.die(new Error(`expected ${exact ? "" : "at least "}${expected} completed jobs, found ${n}`)))

  const prepare = (jobs: number, batch: number) =>
    run(Effect.scoped(Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const client = yield* Client.make({})
      yield* sql`TRUNCATE river_job`
      const t0 = performance.now()
      for (let start = 0; start < jobs; start += batch) {
        const n = Math.min(batch, jobs - start)
        yield* client.insertMany(Array.from({ length: n }, (_, i) => Noop.of({ n: start + i })))
      }
      const rate = jobs / ((performance.now() - t0) / 1000)
      yield* sql`CHECKPOINT`
      return rate
    })))

  const drain = (s: RiverSettings, spec: DrainSpec) =>
    run(Effect.gen(function*() {
      const window = spec.windowMillis ?? Number.POSITIVE_INFINITY
      // The worker waits for `go` (opened right after subscribing) so that no completion can be
      // published before the subscription exists; once open, it returns at once.
      const go = yield* Latch.make(false)
      const worker = Worker.make(Noop, () => go.await)
      const scope = yield* Scope.make()
      const otel = s.telemetry === "otel" ? yield* Scope.provide(otelContext, scope) : undefined
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let completed = 0
      const round = yield* Effect.gen(function*() {
        const { runner } = yield* Runner.make({
          queues: { default: { maxWorkers: s.maxWorkers } },
          workers: [worker],
          ...(s.fetchCooldown === undefined ? {} : { fetchCooldown: s.fetchCooldown }),
          ...(s.fetchPollInterval === undefined ? {} : { fetchPollInterval: s.fetchPollInterval }),
          ...(s.completerFlushInterval === undefined ? {} : { completerFlushInterval: s.completerFlushInterval }),
          ...(s.jobTimeout === undefined ? {} : { jobTimeout: s.jobTimeout }),
          ...(s.telemetry === "off" ? { telemetry: false } : {}),
          // Room for every event: a sliding buffer would drop the oldest.
          eventBuffer: spec.jobs * 2
        }).pipe(Scope.provide(scope), otel === undefined ? (e) => e : Effect.provide(otel.context))
        const events = yield* runner.subscribe.pipe(Scope.provide(scope))
        yield* go.open
        while (completed < spec.jobs) {
          const elapsed = performance.now() - t0
          if (elapsed >= window) break
          if (elapsed >= spec.timeoutMillis) {
            return yield* Effect.die(
              new BenchTimeout(
                `effect-river drain (${describeRiver(s)}) did not finish within ${spec.timeoutMillis / 1000} s: ` +
                  `${fmt(completed)} of ${fmt(spec.jobs)} jobs completed`
              )
            )
          }
          const wait = Math.max(1, Math.min(window, spec.timeoutMillis) - elapsed)
          const taken = yield* PubSub.takeAll(events).pipe(Effect.timeoutOption(wait))
          if (Option.isSome(taken)) for (const event of taken.value) if (event.kind === "completed") completed++
        }
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        if (otel !== undefined) {
          // What was exported must be there (otherwise this round measured nothing).
          yield* Effect.promise(() => otel.flush())
          const spans = otel.spans.getFinishedSpans().length
          if (spans < completed) return yield* Effect.die(new Error(`expected ${completed} exported spans, got ${spans}`))
          otel.spans.reset()
          otel.metrics.reset()
        }
        return { completed, seconds, cpuMicros: (cpu.user + cpu.system) / Math.max(1, completed) } satisfies DrainRound
      }).pipe(Effect.ensuring(Scope.close(scope, Exit.void)))
      yield* verify(round.completed, round.completed === spec.jobs)
      return round
    }))

  const clientId = "bench_ceiling"
  const ceiling = (kind: CeilingKind, batch: number, spec: DrainSpec) =>
    run(Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const fetch = (limit: number) =>
        sql.unsafe<{ id: bigint; attempt: number }>(kind === "river" ? Sql.jobGetAvailable : Sql.minimalFetch, [
          "default",
          limit,
          new Date(),
          clientId
        ])
      const complete = (rows: ReadonlyArray<{ id: bigint; attempt: number }>): Effect.Effect<unknown, unknown> => {
        const n = rows.length
        const now = new Date()
        const ids = new Array<bigint>(n)
        for (let i = 0; i < n; i++) ids[i] = rows[i]!.id
        if (kind === "minimal") return sql.unsafe(Sql.minimalComplete, [ids, now])
        return sql.unsafe(Sql.jobSetStateIfRunningMany, [
          ids,
          Array<string>(n).fill("completed"),
          Array<boolean>(n).fill(false),
          Array<number>(n).fill(0),
          Array<boolean>(n).fill(false),
          Array<string>(n).fill("{}"),
          Array<boolean>(n).fill(true),
          Array<Date>(n).fill(now),
          Array<boolean>(n).fill(false),
          Array<string>(n).fill("{}"),
          Array<boolean>(n).fill(false),
          Array<Date>(n).fill(now),
          now,
          rows.map((r) => r.attempt),
          Array<string>(n).fill("")
        ])
      }
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let completed = 0
      let rows = yield* fetch(batch)
      while (rows.length > 0) {
        if (performance.now() - t0 > spec.timeoutMillis) {
          return yield* Effect.die(
            new BenchTimeout(`${kind} ceiling (batch ${batch}) did not finish within ${spec.timeoutMillis / 1000} s`)
          )
        }
        const [next] = yield* Effect.all([fetch(batch), complete(rows)], { concurrency: 2 })
        completed += rows.length
        rows = next
      }
      const seconds = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      yield* verify(spec.jobs, true)
      return { completed, seconds, cpuMicros: (cpu.user + cpu.system) / Math.max(1, completed) } satisfies DrainRound
    }))

  return { prepare, drain, ceiling, run, close: () => runtime.dispose() }
}
