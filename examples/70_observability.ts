/**
 * Example 70: observability — export spans and metrics to an OpenTelemetry collector, wait for
 * a job's outcome, and read the output its worker recorded.
 *
 * `OtlpLive` is all it takes to export: `@effect/opentelemetry`'s `NodeSdk.layer` with the
 * OpenTelemetry SDK's OTLP/HTTP exporters (the collector at `OTEL_EXPORTER_OTLP_ENDPOINT`,
 * default `http://localhost:4318`). Provide it to the runner's layer (and to the code that
 * inserts, so the insert span's context travels in the job's metadata). The program below runs
 * without a collector (nothing is exported unless `OTLP=1`): it inserts a job inside a span,
 * waits for its outcome with `client.waitFor`, and returns what the worker recorded with
 * `Worker.recordOutput` and the trace context the insert left in the metadata.
 *
 * Run it: `DATABASE_URL=postgres://... OTLP=1 node examples/70_observability.ts`
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Console, Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Runner, Worker } from "../src/index.ts"

// Spans and metrics to an OTLP collector (traces at /v1/traces, metrics at /v1/metrics).
export const OtlpLive = NodeSdk.layer(() => ({
  resource: { serviceName: "billing-worker" },
  spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()),
  metricReader: new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 })
}))

const schema = "example_observability"

const ResizeImage = JobKind.make("resize_image", {
  args: Schema.Struct({ image: Schema.String, width: Schema.Int })
})

const resizeImage = Worker.make(ResizeImage, (job) =>
  Effect.gen(function*() {
    // Worker logs carry job.id, job.kind, job.queue and job.attempt as annotations.
    yield* Effect.logDebug("resizing")
    // The worker's own spans are children of the attempt span `effect-river.work resize_image`.
    const url = yield* Effect.succeed(`${job.args.image}?w=${job.args.width}`).pipe(Effect.withSpan("resize"))
    // Stored under metadata.output with the outcome (River's RecordOutput), readable by client.get.
    yield* Worker.recordOutput({ url })
  }))

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [resizeImage],
    fetchPollInterval: "100 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const { job } = yield* client.insert(ResizeImage, { image: "https://img.example/cat.png", width: 320 }).pipe(
      Effect.withSpan("POST /images")
    )
    // The final row, whichever process works the job; this runner's own client is woken at once.
    const done = yield* client.waitFor(job.id)
    return {
      state: done.state,
      output: done.metadata[Worker.OutputMetadataKey],
      hasTraceparent: typeof done.metadata[Client.TraceparentMetadataKey] === "string"
    }
  }).pipe(Effect.provide(RunnerLive))
})

if (import.meta.main) {
  program.pipe(
    Effect.tap((result) => Console.log(JSON.stringify(result, null, 2))),
    Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "postgres://localhost:5432/postgres") })),
    Effect.provide(process.env.OTLP === "1" ? OtlpLive : Layer.empty),
    NodeRuntime.runMain
  )
}
