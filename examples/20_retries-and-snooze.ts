/**
 * Example 20: retries and snoozes.
 *
 * - `charge_card` fails on its first two attempts and succeeds on the third. Its retry policy is
 *   a `Schedule` (50 ms, then 100 ms) instead of River's `(errors + 1)^4` seconds, so the example
 *   finishes at once. Each failure is recorded in the row's `errors`.
 * - `generate_invoice` is not ready on its first run and snoozes for 200 ms: the attempt is given
 *   back (`attempt` stays 1 in the end), `metadata.snoozes` counts the snooze, no error is
 *   recorded.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/20_retries-and-snooze.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, PubSub, Redacted, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, JobSnooze, Migrator, Runner, Worker } from "../src/index.ts"

const schema = "example_retries_and_snooze"

const ChargeCard = JobKind.make("charge_card", { args: Schema.Struct({ orderId: Schema.Int }) })
const GenerateInvoice = JobKind.make("generate_invoice", { args: Schema.Struct({ orderId: Schema.Int }) })

// A worker's own error. Any failure other than `JobCancel` / `JobSnooze` means "retry later".
class GatewayBusy extends Data.TaggedError("GatewayBusy")<{ readonly attempt: number }> {
  override get message(): string {
    return `payment gateway busy (attempt ${this.attempt})`
  }
}

const chargeCard = Worker.make(
  ChargeCard,
  (job) => job.attempt <= 2 ? Effect.fail(new GatewayBusy({ attempt: job.attempt })) : Effect.void,
  // The n-th retry waits the schedule's n-th delay: 50 ms, then 100 ms, ...
  { retryPolicy: Schedule.exponential("50 millis") }
)

const generateInvoice = Worker.make(GenerateInvoice, (job) =>
  Effect.gen(function*() {
    // `metadata.snoozes` is set by the runner after the first snooze.
    if (job.metadata.snoozes === undefined) return yield* JobSnooze.of("200 millis")
  }))

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [chargeCard, generateInvoice],
    // Retried and snoozed jobs become due in a few ms: poll often so they start promptly.
    fetchCooldown: "10 millis",
    fetchPollInterval: "25 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const charge = yield* client.insert(ChargeCard, { orderId: 1 }, { maxAttempts: 5 })
    const invoice = yield* client.insert(GenerateInvoice, { orderId: 1 })

    // Every outcome, per job, until both jobs are final.
    const history = new Map<bigint, Array<string>>([[charge.job.id, []], [invoice.job.id, []]])
    let finished = 0
    while (finished < 2) {
      const event = yield* PubSub.take(events)
      history.get(event.job.id)?.push(event.kind)
      if (event.kind === "completed") finished++
    }

    const chargeRow = yield* client.get(charge.job.id)
    const invoiceRow = yield* client.get(invoice.job.id)
    return {
      chargeCard: {
        outcomes: history.get(charge.job.id)!,
        state: chargeRow.state,
        attempt: chargeRow.attempt,
        errors: chargeRow.errors.map((e) => `attempt ${e.attempt}: ${e.error}`)
      },
      generateInvoice: {
        outcomes: history.get(invoice.job.id)!,
        state: invoiceRow.state,
        attempt: invoiceRow.attempt,
        snoozes: invoiceRow.metadata.snoozes,
        errors: invoiceRow.errors.length
      }
    }
  }).pipe(Effect.scoped, Effect.provide(RunnerLive))
})

if (import.meta.main) {
  program.pipe(
    Effect.tap((result) => Console.log(JSON.stringify(result, null, 2))),
    Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "postgres://localhost:5432/postgres") })),
    NodeRuntime.runMain
  )
}
