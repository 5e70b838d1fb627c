/**
 * Telemetry: every span, metric and log annotation the runtime emits, defined in one place so
 * the call sites (executor, completer, client, producer, elector) stay one line each.
 *
 * Built on Effect's own `Tracer`, `Metric` and logger; `@effect/opentelemetry` only exports them.
 *
 * - Spans are created only when a tracer other than Effect's native one is installed (and
 *   tracing is enabled): without an exporter nobody could see them, and an attempt then pays no
 *   span, no attribute building and no metadata bytes.
 * - The insert span's W3C `traceparent` is written into the job's metadata under
 *   {@link TraceparentMetadataKey} (a caller's own `traceparent` wins); the attempt span is a new root
 *   span *linked* to it (OpenTelemetry's messaging conventions: a consumer span links to the
 *   creation context; an attempt may run hours later, and a retried job has many attempts).
 * - Metrics update Effect's `MetricRegistry` (a map write), cached per kind and queue.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type { JobRow } from "../Job.ts"
import type { Completion } from "./outcome.ts"

/** The metadata key holding the insert span's W3C trace context (`00-<trace>-<span>-<flags>`). */
export const TraceparentMetadataKey = "traceparent" as const

/**
 * Whether a runner emits telemetry (spans, metrics, log annotations): `false` under a runner
 * built with `telemetry: false`, for every fiber it forks.
 */
export const Enabled = Context.Reference<boolean>("effect-river/Telemetry", { defaultValue: () => true })

/** Whether spans would reach anyone: a tracer other than the native one, with tracing enabled. */
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer && fiber.getRef(References.TracerEnabled) &&
  fiber.getRef(Enabled)

/** The W3C `traceparent` of a span. */
export const traceparentOf = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The producer's span recorded in a job's metadata, if any (malformed values are ignored). */
export const parentFromMetadata = (metadata: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof metadata !== "object" || metadata === null) return undefined
  const value = (metadata as Record<string, unknown>)[TraceparentMetadataKey]
  if (typeof value !== "string") return undefined
  const match = TRACEPARENT.exec(value)
  if (match === null) return undefined
  return Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (parseInt(match[3]!, 16) & 1) === 1 })
}

/** `metadataJson` (JSON object text) with the span's traceparent first (a key the caller set wins). */
export const withTraceparent = (metadataJson: string, span: Tracer.AnySpan): string => {
  const entry = `"${TraceparentMetadataKey}":"${traceparentOf(span)}"`
  const body = metadataJson.trim()
  if (body === "{}") return `{${entry}}`
  if (!body.startsWith("{")) return metadataJson
  return `{${entry},${body.slice(1)}`
}

/** OpenTelemetry messaging attributes plus otelriver's names. */
const BASE = { "messaging.system": "river" } as const

const idAttribute = (id: bigint): number | string => id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : String(id)

/**
 * Runs `f` inside a span named `name` when tracing, else runs `f(undefined)` as is. The span is
 * passed to `f` (e.g. for its traceparent).
 */
export const traced = <A, E, R>(
  name: string,
  options: { readonly kind: Tracer.SpanKind; readonly attributes: () => Record<string, unknown> },
  f: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    isTracing(fiber)
      ? Effect.useSpan(name, { kind: options.kind, attributes: { ...BASE, ...options.attributes() } }, (span) => f(span))
      : f(undefined)
  )

/** Attributes of a client operation on one job (`cancel`, `retry`). */
export const jobOperationAttributes = (operation: string, id: bigint) => () => ({
  "messaging.operation.name": operation,
  "messaging.message.id": String(id),
  id: idAttribute(id)
})

/** What the attempt span's `outcome` attribute says. */
export type SpanOutcome = "completed" | "retryable" | "snoozed" | "cancelled" | "discarded" | "interrupted"

export const outcomeOf = (completion: Completion): SpanOutcome => {
  switch (completion.kind) {
    case "completed":
      return "completed"
    case "failed":
      return completion.state === "discarded" ? "discarded" : "retryable"
    default:
      return completion.kind
  }
}

/** The attempt span: a root span linked to the insert's trace (the caller checked `isTracing`). */
const makeAttemptSpan = (row: JobRow): Effect.Effect<Tracer.Span> => {
  const producer = parentFromMetadata(row.metadata)
  return Effect.makeSpan(`effect-river.work ${row.kind}`, {
    kind: "consumer",
    root: true,
    links: producer === undefined ? [] : [{ span: producer, attributes: { "messaging.operation.name": "insert" } }],
    attributes: {
      ...BASE,
      "messaging.operation.name": "work",
      "messaging.operation.type": "process",
      "messaging.destination.name": row.queue,
      "messaging.message.id": String(row.id),
      id: idAttribute(row.id),
      kind: row.kind,
      queue: row.queue,
      attempt: row.attempt,
      priority: row.priority,
      tag: row.tags
    }
  })
}

/** Ends the attempt span with the outcome; failures and cancels carry the worker's exit (error status). */
export const endAttemptSpan = (
  span: Tracer.Span,
  completion: Completion,
  exit: Exit.Exit<unknown, unknown>
): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeNanos, (now) =>
    Effect.sync(() => {
      const outcome = outcomeOf(completion)
      span.attribute("outcome", outcome)
      const ok = outcome === "completed" || outcome === "snoozed"
      span.attribute("status", ok ? "ok" : "error")
      if (completion.error !== undefined) span.attribute("error", completion.error.error)
      span.end(now, ok || Exit.isSuccess(exit) ? Exit.void : exit)
    }))

// ---------------------------------------------------------------------------------------------
// Metrics

/** Every metric name (documented in the README's table). */
export const metricNames = {
  inserted: "effect_river.jobs.inserted",
  completed: "effect_river.jobs.completed",
  failed: "effect_river.jobs.failed",
  retried: "effect_river.jobs.retried",
  snoozed: "effect_river.jobs.snoozed",
  cancelled: "effect_river.jobs.cancelled",
  discarded: "effect_river.jobs.discarded",
  attemptDuration: "effect_river.job.attempt.duration",
  queueWait: "effect_river.job.queue_wait",
  running: "effect_river.jobs.running",
  fetchSize: "effect_river.producer.fetch.size",
  completerBatchSize: "effect_river.completer.batch.size",
  completerBatchDuration: "effect_river.completer.batch.duration",
  leader: "effect_river.leader"
} as const

const millisBoundaries = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000]
const sizeBoundaries = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000]

/**
 * A counter kept as a plain number and read by Effect's registry when it takes a snapshot
 * (`Metric.registerUnsafe`): an update through the registry costs ~1 µs (series key and registry
 * lookups), which a job would pay several times.
 */
class CounterCell {
  count = 0
  readonly state = () => ({ count: this.count })
}

/** A histogram kept in plain numbers, read the same way (Effect's bucket format: cumulative). */
class HistogramCell {
  readonly values: Uint32Array
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  readonly boundaries: ReadonlyArray<number>
  constructor(boundaries: ReadonlyArray<number>) {
    this.boundaries = boundaries
    this.values = new Uint32Array(boundaries.length + 1)
  }
  record(value: number): void {
    const b = this.boundaries
    let i = 0
    while (i < b.length && value > b[i]!) i++
    this.values[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  readonly state = () => {
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < this.boundaries.length; i++) {
      cumulated += this.values[i]!
      buckets.push([this.boundaries[i]!, cumulated])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

const noop = () => {}

/** Registers a cell as the series of `metric` in the registry of `context`. */
const register = (metric: Metric.Metric<any, any>, context: Context.Context<never>, state: () => unknown) =>
  Metric.registerUnsafe(metric, context, { get: state as never, update: noop, modify: noop })

/** The metrics of one kind and queue: registered once, in the registry of the first context that records. */
class JobMetrics {
  readonly inserted = new CounterCell()
  readonly completed = new CounterCell()
  readonly failed = new CounterCell()
  readonly retried = new CounterCell()
  readonly snoozed = new CounterCell()
  readonly cancelled = new CounterCell()
  readonly discarded = new CounterCell()
  readonly attemptDuration = new HistogramCell(millisBoundaries)
  readonly queueWait = new HistogramCell(millisBoundaries)
  private registered = false
  readonly kind: string
  readonly queue: string
  constructor(kind: string, queue: string) {
    this.kind = kind
    this.queue = queue
  }
  in(context: Context.Context<never>): this {
    if (this.registered) return this
    this.registered = true
    const attributes = { kind: this.kind, queue: this.queue }
    const counter = (name: string, description: string, cell: CounterCell) =>
      register(Metric.counter(name, { description, attributes, incremental: true }), context, cell.state)
    counter(metricNames.inserted, "Jobs inserted", this.inserted)
    counter(metricNames.completed, "Attempts that completed", this.completed)
    counter(metricNames.failed, "Attempts that failed (retried or discarded)", this.failed)
    counter(metricNames.retried, "Failed attempts that will be retried", this.retried)
    counter(metricNames.snoozed, "Attempts that snoozed", this.snoozed)
    counter(metricNames.cancelled, "Attempts that ended cancelled", this.cancelled)
    counter(metricNames.discarded, "Failed attempts with no attempt left (discarded)", this.discarded)
    register(
      Metric.histogram(metricNames.attemptDuration, {
        description: "How long an attempt ran, in milliseconds",
        attributes,
        boundaries: millisBoundaries
      }),
      context,
      this.attemptDuration.state
    )
    register(
      Metric.histogram(metricNames.queueWait, {
        description: "From scheduled_at until the job was fetched, in milliseconds",
        attributes,
        boundaries: millisBoundaries
      }),
      context,
      this.queueWait.state
    )
    return this
  }
}

const jobMetricsByKind = new Map<string, Map<string, JobMetrics>>()
const jobMetrics = (kind: string, queue: string, context: Context.Context<never>): JobMetrics => {
  let byQueue = jobMetricsByKind.get(kind)
  if (byQueue === undefined) jobMetricsByKind.set(kind, byQueue = new Map())
  let metrics = byQueue.get(queue)
  if (metrics === undefined) byQueue.set(queue, metrics = new JobMetrics(kind, queue))
  return metrics.in(context)
}

/** Jobs running per queue in this process, read by the gauge's registered series. */
const runningByQueue = new Map<string, { value: number; registered: boolean }>()

/** The metrics of one queue, built once. */
const perQueue = <M>(make: (queue: string) => M) => {
  const cache = new Map<string, M>()
  return (queue: string): M => {
    let m = cache.get(queue)
    if (m === undefined) cache.set(queue, m = make(queue))
    return m
  }
}

const fetchSize = perQueue((queue) =>
  Metric.histogram(metricNames.fetchSize, { description: "Jobs per fetch", attributes: { queue }, boundaries: sizeBoundaries })
)
const completerBatchSize = Metric.histogram(metricNames.completerBatchSize, {
  description: "Outcomes per completer write",
  boundaries: sizeBoundaries
})
const completerBatchDuration = Metric.histogram(metricNames.completerBatchDuration, {
  description: "How long one completer write took, in milliseconds",
  boundaries: millisBoundaries
})
const leader = Metric.gauge(metricNames.leader, { description: "1 while this runner is the leader, else 0" })

/**
 * The inserted-jobs counter for a bulk insert that returns no rows (`insertManyFast`): every job
 * of `jobs()` (kind, queue) was inserted. `jobs` is read only when metrics are on.
 */
export const recordInsertedJobs = (jobs: () => ReadonlyArray<readonly [kind: string, queue: string]>): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!fiber.getRef(Enabled)) return Effect.void
    for (const [kind, queue] of jobs()) jobMetrics(kind, queue, fiber.context).inserted.count++
    return Effect.void
  })

/** Counts inserted jobs (after the insert statement succeeded). */
export const recordInserted = (
  rows: ReadonlyArray<{ readonly job: JobRow; readonly skippedAsDuplicate: boolean }>
): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!fiber.getRef(Enabled)) return Effect.void
    for (const { job, skippedAsDuplicate } of rows) {
      if (!skippedAsDuplicate) jobMetrics(job.kind, job.queue, fiber.context).inserted.count++
    }
    return Effect.void
  })

/**
 * What an attempt needs from its fiber, read once as it starts: the metric context (or
 * `undefined` with telemetry off) and its span (or `undefined` when not tracing).
 */
export interface AttemptTelemetry {
  readonly context: Context.Context<never> | undefined
  readonly span: Tracer.Span | undefined
}

const OFF: AttemptTelemetry = { context: undefined, span: undefined }

/**
 * An attempt's telemetry as it starts, read synchronously from its fiber: `"span"` when an attempt
 * span must be made first ({@link startAttemptSpan}), else the metric context (or none with
 * telemetry off).
 */
export const attemptTelemetry = (fiber: Fiber.Fiber<unknown, unknown>): AttemptTelemetry | "span" => {
  if (!fiber.getRef(Enabled)) return OFF
  return isTracing(fiber) ? "span" : { context: fiber.context, span: undefined }
}

/** Starts an attempt span (a root span linked to the insert's trace) for a tracing fiber. */
export const startAttemptSpan = (row: JobRow, context: Context.Context<never>): Effect.Effect<AttemptTelemetry> =>
  Effect.map(makeAttemptSpan(row), (span) => ({ context, span }))

/** Counts one attempt's outcome and records its duration and queue wait (synchronous). */
export const recordOutcome = (telemetry: AttemptTelemetry, completion: Completion): void => {
  const context = telemetry.context
  if (context === undefined) return
  const { job } = completion
  const m = jobMetrics(job.kind, job.queue, context)
  switch (outcomeOf(completion)) {
    case "completed":
      m.completed.count++
      break
    case "retryable":
      m.failed.count++
      m.retried.count++
      break
    case "discarded":
      m.failed.count++
      m.discarded.count++
      break
    case "snoozed":
      m.snoozed.count++
      break
    case "cancelled":
      m.cancelled.count++
      break
    case "interrupted":
      break
  }
  m.attemptDuration.record(Math.max(0, completion.finishedAt - completion.startedAt))
  const fetched = job.attemptedAt?.getTime() ?? completion.startedAt
  m.queueWait.record(Math.max(0, fetched - job.scheduledAt.getTime()))
}

/** Adds `delta` to the jobs running in a queue (the gauge reads the sum when sampled). */
export const addRunning = (fiber: Fiber.Fiber<unknown, unknown>, queue: string, delta: number): void => {
  if (!fiber.getRef(Enabled)) return
  let cell = runningByQueue.get(queue)
  if (cell === undefined) runningByQueue.set(queue, cell = { value: 0, registered: false })
  cell.value += delta
  if (!cell.registered) {
    cell.registered = true
    const read = cell
    register(
      Metric.gauge(metricNames.running, { description: "Jobs running now", attributes: { queue } }),
      fiber.context,
      () => ({ value: read.value })
    )
  }
}

/** Records one fetch's size. */
export const recordFetch = (queue: string, size: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (fiber.getRef(Enabled)) fetchSize(queue).updateUnsafe(size, fiber.context)
    return Effect.void
  })

/** Records one completer write: its size and how long it took. */
export const recordCompleterBatch = (size: number, millis: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!fiber.getRef(Enabled)) return Effect.void
    completerBatchSize.updateUnsafe(size, fiber.context)
    completerBatchDuration.updateUnsafe(millis, fiber.context)
    return Effect.void
  })

/** Sets the leader gauge. */
export const recordLeader = (isLeader: boolean): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (fiber.getRef(Enabled)) leader.updateUnsafe(isLeader ? 1 : 0, fiber.context)
    return Effect.void
  })

// ---------------------------------------------------------------------------------------------
// Logs

/** The annotations every log line of a worker carries. */
export const jobLogAnnotations = (row: JobRow): Record<string, unknown> => ({
  "job.id": String(row.id),
  "job.kind": row.kind,
  "job.queue": row.queue,
  "job.attempt": row.attempt
})
