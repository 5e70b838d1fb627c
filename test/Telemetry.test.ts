/**
 * Observability through OpenTelemetry: spans and metrics exported with @effect/opentelemetry and
 * the SDK's in-memory exporters. The producer (client) and the worker (runner) each have a tracer
 * provider and exporter of their own, as two processes would: the only thing that carries the
 * trace from one to the other is the job's metadata.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { assert, describe, it } from "@effect/vitest"
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Layer, Logger, References, Schema } from "effect"
import * as JobKind from "../src/JobKind.ts"
import * as Worker from "../src/Worker.ts"
import { JobSnooze } from "../src/Worker.ts"
import { freshDatabase } from "./utils/db.ts"
import { awaitEvent, startRunner } from "./utils/runner.ts"

const Task = JobKind.make("telemetry_task", {
  args: Schema.Struct({ name: Schema.String, mode: Schema.optional(Schema.String) })
})

/** A tracer (and optionally a meter) exporting to memory, as a context to provide. */
const otel = (serviceName: string, options: { readonly metrics?: InMemoryMetricExporter } = {}) =>
  Effect.gen(function*() {
    const spans = new InMemorySpanExporter()
    const reader = options.metrics === undefined ? undefined : new PeriodicExportingMetricReader({
      exporter: options.metrics,
      exportIntervalMillis: 3_600_000
    })
    const context = yield* Layer.build(NodeSdk.layer(() => ({
      resource: { serviceName },
      spanProcessor: new SimpleSpanProcessor(spans),
      ...(reader === undefined ? {} : { metricReader: reader })
    })))
    return { spans, reader, context }
  })

describe("Telemetry (OpenTelemetry in-memory exporters)", () => {
  it.layer(freshDatabase("telemetry"))((it) => {
    it.effect("attempt span: name, attributes, the worker's span under it, linked to the insert's trace via metadata", () =>
      Effect.gen(function*() {
        const producer = yield* otel("producer")
        const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
        const consumer = yield* otel("consumer", { metrics: metricExporter })

        const logged: Array<Record<string, unknown>> = []
        const capture = Logger.make((options) => {
          logged.push({ message: options.message, ...options.fiber.getRef(References.CurrentLogAnnotations) })
        })
        const worker = Worker.make(Task, (job) =>
          Effect.gen(function*() {
            yield* Effect.logInfo("working")
            if (job.args.mode === "snooze" && job.attempt === 1) return yield* JobSnooze.of("1 millis")
            if (job.args.mode === "fail") return yield* Effect.fail(new Error("boom"))
          }).pipe(Effect.withSpan("worker.step")))

        // The runner (the "worker process") is built with the consumer's tracer and meter.
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 2 } }, workers: [worker] }).pipe(
          Effect.provide(Context.merge(consumer.context, Context.make(References.MinimumLogLevel, "Info"))),
          Effect.provide(Logger.layer([capture], { mergeWithExisting: true }))
        )
        // The producer (another tracer provider): an insert inside a request span.
        const inserted = yield* client.insert(Task, { name: "a" }).pipe(
          Effect.withSpan("request"),
          Effect.provide(producer.context)
        )
        const event = yield* awaitEvent(events)
        assert.strictEqual(event.kind, "completed")

        // The insert's trace context is in the job's metadata under "traceparent".
        const row = yield* client.get(inserted.job.id)
        const traceparent = (row.metadata as Record<string, unknown>)["traceparent"]
        assert.match(String(traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)

        const producerSpans = producer.spans.getFinishedSpans()
        const request = producerSpans.find((s) => s.name === "request")!
        const insert = producerSpans.find((s) => s.name === "effect-river.insert")!
        assert.isDefined(request)
        assert.isDefined(insert)
        assert.strictEqual(insert.parentSpanContext?.spanId, request.spanContext().spanId)
        assert.strictEqual(insert.kind, 3 /* PRODUCER */)
        assert.strictEqual(insert.attributes["messaging.system"], "river")
        assert.strictEqual(insert.attributes["kind"], "telemetry_task")
        assert.strictEqual(traceparent, `00-${insert.spanContext().traceId}-${insert.spanContext().spanId}-01`)

        const consumerSpans = consumer.spans.getFinishedSpans()
        const attempt = consumerSpans.find((s) => s.name === "effect-river.work telemetry_task")!
        const step = consumerSpans.find((s) => s.name === "worker.step")!
        assert.isDefined(attempt)
        assert.isDefined(step)
        // The worker's own span is a child of the attempt span.
        assert.strictEqual(step.parentSpanContext?.spanId, attempt.spanContext().spanId)
        assert.strictEqual(step.spanContext().traceId, attempt.spanContext().traceId)
        // The attempt is a new trace, linked to the insert's span (another process, another provider).
        assert.notStrictEqual(attempt.spanContext().traceId, insert.spanContext().traceId)
        assert.strictEqual(attempt.links.length, 1)
        assert.strictEqual(attempt.links[0]!.context.traceId, insert.spanContext().traceId)
        assert.strictEqual(attempt.links[0]!.context.spanId, insert.spanContext().spanId)
        assert.strictEqual(attempt.kind, 4 /* CONSUMER */)
        assert.deepInclude(attempt.attributes, {
          "messaging.system": "river",
          "messaging.operation.name": "work",
          "messaging.operation.type": "process",
          "messaging.destination.name": "default",
          "messaging.message.id": String(inserted.job.id),
          id: Number(inserted.job.id),
          kind: "telemetry_task",
          queue: "default",
          attempt: 1,
          priority: 1,
          outcome: "completed",
          status: "ok"
        })

        // A failing attempt: outcome retryable, the error recorded, error status.
        const failing = yield* client.insert(Task, { name: "b", mode: "fail" }, { maxAttempts: 1 })
        const failed = yield* awaitEvent(events)
        assert.strictEqual(failed.job.id, failing.job.id)
        const failedSpan = consumer.spans.getFinishedSpans().find((s) =>
          s.name === "effect-river.work telemetry_task" && s.attributes["id"] === Number(failing.job.id)
        )!
        assert.strictEqual(failedSpan.attributes["outcome"], "discarded")
        assert.strictEqual(failedSpan.attributes["status"], "error")
        assert.include(String(failedSpan.attributes["error"]), "boom")
        assert.strictEqual(failedSpan.status.code, 2 /* ERROR */)

        // Client operations have spans too.
        yield* client.retry(failing.job.id).pipe(Effect.provide(producer.context))
        yield* client.cancel(failing.job.id).pipe(Effect.provide(producer.context))
        const names = producer.spans.getFinishedSpans().map((s) => s.name)
        assert.includeMembers(names, ["effect-river.retry", "effect-river.cancel"])

        // Every worker log line carries the job's id, kind, queue and attempt.
        const workerLine = logged.find((l) => l["message"] === "working" || (Array.isArray(l["message"]) && l["message"][0] === "working"))!
        assert.isDefined(workerLine)
        assert.strictEqual(workerLine["job.id"], String(inserted.job.id))
        assert.strictEqual(workerLine["job.kind"], "telemetry_task")
        assert.strictEqual(workerLine["job.queue"], "default")
        assert.strictEqual(workerLine["job.attempt"], 1)

        // Metrics, exported through the consumer's meter.
        yield* Effect.promise(() => consumer.reader!.forceFlush())
        const exported = metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
        const series = (name: string) =>
          exported.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as Array<{ attributes: Record<string, unknown>; value: unknown }>)
        const point = (name: string) => series(name).find((p) => p.attributes["kind"] === "telemetry_task" && p.attributes["queue"] === "default")
        assert.isAtLeast(Number(point("effect_river.jobs.completed")?.value), 1)
        assert.isAtLeast(Number(point("effect_river.jobs.failed")?.value), 1)
        assert.isAtLeast(Number(point("effect_river.jobs.discarded")?.value), 1)
        assert.isAtLeast(Number(point("effect_river.jobs.inserted")?.value), 2)
        assert.isDefined(point("effect_river.job.attempt.duration"))
        assert.isDefined(point("effect_river.job.queue_wait"))
        assert.isAbove(series("effect_river.producer.fetch.size").length, 0)
        assert.isAbove(series("effect_river.completer.batch.size").length, 0)
        assert.isAbove(series("effect_river.completer.batch.duration").length, 0)
        assert.isAbove(series("effect_river.jobs.running").length, 0)
      }))

    it.effect("job annotations join the annotations of the context the runner was built with, and the worker's own", () =>
      Effect.gen(function*() {
        const logged: Array<Record<string, unknown>> = []
        const capture = Logger.make((options) => {
          logged.push({ message: options.message, ...options.fiber.getRef(References.CurrentLogAnnotations) })
        })
        const worker = Worker.make(Task, () => Effect.logInfo("annotated").pipe(Effect.annotateLogs({ step: "one" })))
        const { client, events } = yield* startRunner({ queues: { default: { maxWorkers: 1 } }, workers: [worker] }).pipe(
          Effect.annotateLogs({ service: "billing" }),
          Effect.provide(Context.make(References.MinimumLogLevel, "Info")),
          Effect.provide(Logger.layer([capture], { mergeWithExisting: true }))
        )
        const inserted = yield* client.insert(Task, { name: "annotated" })
        assert.strictEqual((yield* awaitEvent(events)).kind, "completed")
        const line = logged.find((l) => Array.isArray(l["message"]) ? l["message"][0] === "annotated" : l["message"] === "annotated")
        assert.deepInclude(line, { service: "billing", step: "one", "job.id": String(inserted.job.id), "job.kind": "telemetry_task" })
      }))

    it.effect("telemetry: false: no attempt span and no job annotations from that runner; a bad value is InvalidOptions", () =>
      Effect.gen(function*() {
        const consumer = yield* otel("quiet")
        const logged: Array<Record<string, unknown>> = []
        const capture = Logger.make((options) => {
          logged.push({ ...options.fiber.getRef(References.CurrentLogAnnotations) })
        })
        const worker = Worker.make(Task, () => Effect.logInfo("quiet work").pipe(Effect.withSpan("worker.step")))
        const { client, events } = yield* startRunner({
          queues: { default: { maxWorkers: 1 } },
          workers: [worker],
          telemetry: false
        }).pipe(
          Effect.provide(Context.merge(consumer.context, Context.make(References.MinimumLogLevel, "Info"))),
          Effect.provide(Logger.layer([capture], { mergeWithExisting: true }))
        )
        yield* client.insert(Task, { name: "q" })
        assert.strictEqual((yield* awaitEvent(events)).kind, "completed")
        const names = consumer.spans.getFinishedSpans().map((s) => s.name)
        assert.notInclude(names, "effect-river.work telemetry_task")
        assert.include(names, "worker.step")
        assert.isTrue(logged.length > 0)
        assert.isTrue(logged.every((l) => l["job.id"] === undefined))
        const bad = yield* Effect.flip(startRunner({ queues: {}, workers: [], telemetry: "yes" as never }))
        assert.strictEqual((bad as { _tag: string })._tag, "InvalidOptions")
      }))
  })
})
