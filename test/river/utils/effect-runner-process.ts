/**
 * An effect-river runner in a process of its own, for scenarios that need to kill one
 * (SIGKILL: a crashed TypeScript service whose running jobs get stuck). Forked by
 * test/river/leader.test.ts with a JSON config argument; sends `{ type: "ready" }` once the
 * runner runs. Works every interop kind (test/river/utils/kinds.ts).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import * as Runner from "../../../src/Runner.ts"
import { Recorder, workers } from "./kinds.ts"

export interface ProcessConfig {
  readonly url: string
  readonly schema: string
  readonly id: string
  readonly queues: Record<string, number>
  readonly leadership?: { readonly ttlMillis: number; readonly electIntervalMillis: number; readonly renewIntervalMillis: number }
}

const raw = process.argv[2]
if (raw === undefined || process.send === undefined) {
  console.error("usage: forked with a ProcessConfig JSON argument")
  process.exit(2)
}
const config = JSON.parse(raw) as ProcessConfig
process.on("disconnect", () => process.exit(1))

const program = Effect.gen(function*() {
  yield* Runner.make({
    id: config.id,
    schema: config.schema,
    queues: Object.fromEntries(Object.entries(config.queues).map(([name, maxWorkers]) => [name, { maxWorkers }])),
    workers: workers(new Recorder()),
    fetchCooldown: "20 millis",
    fetchPollInterval: "300 millis",
    leadership: config.leadership === undefined ? undefined : {
      ttl: config.leadership.ttlMillis,
      electInterval: config.leadership.electIntervalMillis,
      renewInterval: config.leadership.renewIntervalMillis
    }
  })
  process.send?.({ type: "ready" })
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(PgClient.layer({ url: Redacted.make(config.url), maxConnections: 5 }))
)

Effect.runPromise(program).catch((error: unknown) => {
  process.send?.({ type: "error", message: String(error) })
  process.exit(1)
})
