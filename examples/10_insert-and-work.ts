/**
 * Example 10: insert jobs and work them.
 *
 * A job kind (a name and a `Schema` for its args), a worker that needs a service of its own (a
 * mailer), and a runner that works the `default` queue. The program inserts three jobs, waits
 * for their `completed` events, stops the runner gracefully (by closing its scope), and reads
 * the final rows with an insert-only client.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/10_insert-and-work.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Context, Effect, Layer, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Runner, Worker } from "../src/index.ts"

const schema = "example_insert_and_work"

// A kind is defined once and shared by the services that insert it and the worker that runs it.
const SendWelcomeEmail = JobKind.make("send_welcome_email", {
  args: Schema.Struct({ to: Schema.String, name: Schema.String })
})

// A service the worker needs. Here it only records what it "sent".
class Mailer extends Context.Service<Mailer, {
  readonly send: (to: string, subject: string) => Effect.Effect<void>
  readonly sent: Effect.Effect<ReadonlyArray<string>>
}>()("example/Mailer") {
  static readonly layer = Layer.effect(
    Mailer,
    Effect.gen(function*() {
      const outbox = yield* Ref.make<ReadonlyArray<string>>([])
      return Mailer.of({
        send: (to, subject) => Ref.update(outbox, (sent) => [...sent, `${to}: ${subject}`]),
        sent: Ref.get(outbox)
      })
    })
  )
}

// The worker's requirements (`Mailer`) become the runner layer's requirements.
const sendWelcomeEmail = Worker.make(SendWelcomeEmail, (job) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer
    yield* mailer.send(job.args.to, `Welcome, ${job.args.name}!`)
  }))

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Start from an empty schema so that the example can be run again.
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })

  // Short poll and flush intervals keep this example quick; River's defaults suit production.
  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [sendWelcomeEmail],
    fetchPollInterval: "100 millis",
    completerFlushInterval: "10 millis"
  })

  const worked = yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const mailer = yield* Mailer
    // Subscribe before inserting, so no event can be missed.
    const events = yield* runner.subscribe

    const results = yield* client.insertMany([
      SendWelcomeEmail.of({ to: "ada@example.com", name: "Ada" }),
      SendWelcomeEmail.of({ to: "grace@example.com", name: "Grace" }),
      SendWelcomeEmail.of({ to: "linus@example.com", name: "Linus" }, { priority: 2 })
    ])
    const ids = new Set(results.map((r) => r.job.id))

    // Wait until every inserted job has an outcome.
    const outcomes: Array<string> = []
    while (outcomes.length < ids.size) {
      const event = yield* PubSub.take(events)
      if (ids.has(event.job.id)) outcomes.push(event.kind)
    }
    return { ids: [...ids], outcomes, sent: yield* mailer.sent }
  }).pipe(
    Effect.scoped, // ends the subscription
    Effect.provide(RunnerLive), // builds the runner here; closing it is the graceful stop
    Effect.provide(Mailer.layer)
  )

  // The runner has stopped. An insert-only client (no runner) reads the final rows.
  const rows = yield* Effect.gen(function*() {
    const client = yield* Client.Client
    return yield* Effect.forEach(worked.ids, (id) => client.get(id))
  }).pipe(Effect.provide(Client.layer({ schema })))

  return {
    inserted: worked.ids.length,
    outcomes: worked.outcomes,
    sent: [...worked.sent].sort(),
    finalStates: rows.map((row) => row.state),
    attempts: rows.map((row) => row.attempt)
  }
})

if (import.meta.main) {
  program.pipe(
    Effect.tap((result) => Console.log(JSON.stringify(result, null, 2))),
    Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "postgres://localhost:5432/postgres") })),
    NodeRuntime.runMain
  )
}
