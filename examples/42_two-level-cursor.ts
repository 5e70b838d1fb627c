/**
 * Example 42: a two-level loop with a struct cursor.
 *
 * `reconcile_ledger` walks accounts, and inside each account its entries. The cursor is a struct,
 * `{ lastId, lastSubId }`: the last account and entry done. Its `Schema` stores it as JSON in the
 * job's metadata and decodes it on the retry. The first attempt fails at account 2, entry 3; the
 * retry continues with that entry — the rest of account 2, then account 3 — and no entry is
 * reconciled twice.
 *
 * Run it: `DATABASE_URL=postgres://... node examples/42_two-level-cursor.ts`
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Console, Data, Effect, Option, PubSub, Redacted, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Client, JobKind, Migrator, Resumable, Runner, Worker } from "../src/index.ts"

const schema = "example_two_level_cursor"

const ReconcileLedger = JobKind.make("reconcile_ledger", { args: Schema.Struct({ ledger: Schema.String }) })

/** The last account (`lastId`) and the last entry of that account (`lastSubId`) reconciled. */
const LedgerCursor = Schema.Struct({ lastId: Schema.Int, lastSubId: Schema.Int })

class BankTimeout extends Data.TaggedError("BankTimeout")<{ readonly account: number; readonly entry: number }> {
  override get message(): string {
    return `bank timed out on account ${this.account}, entry ${this.entry}`
  }
}

export const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* Migrator.up({ schema })
  // Account 1 has entries 1–3, account 2 entries 1–4, account 3 entries 1–2.
  yield* sql.unsafe(`CREATE TABLE ${schema}.entries (
    account_id int, entry_id int, reconciled int NOT NULL DEFAULT 0, PRIMARY KEY (account_id, entry_id))`)
  yield* sql.unsafe(`INSERT INTO ${schema}.entries (account_id, entry_id)
    VALUES (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (2, 4), (3, 1), (3, 2)`)

  const starts = yield* Ref.make<ReadonlyArray<string>>([])
  const order = yield* Ref.make<ReadonlyArray<string>>([])

  const reconcileLedger = Worker.make(
    ReconcileLedger,
    (job) =>
      Resumable.stepCursor("reconcile", LedgerCursor, (cursor) =>
        Effect.gen(function*() {
          const { lastId, lastSubId } = Option.getOrElse(cursor, () => ({ lastId: 0, lastSubId: 0 }))
          yield* Ref.update(starts, (xs) => [...xs, `attempt ${job.attempt} starts after ${lastId}/${lastSubId}`])

          const accounts = yield* sql<{ accountId: number }>`
            SELECT DISTINCT account_id AS "accountId" FROM ${sql(schema)}.entries
            WHERE account_id >= ${lastId} ORDER BY 1`
          for (const { accountId } of accounts) {
            // In the account the cursor points into, continue after its last entry.
            const afterEntry = accountId === lastId ? lastSubId : 0
            const entries = yield* sql<{ entryId: number }>`
              SELECT entry_id AS "entryId" FROM ${sql(schema)}.entries
              WHERE account_id = ${accountId} AND entry_id > ${afterEntry} ORDER BY 1`
            for (const { entryId } of entries) {
              if (job.attempt === 1 && accountId === 2 && entryId === 3) {
                return yield* new BankTimeout({ account: accountId, entry: entryId })
              }
              yield* sql`UPDATE ${sql(schema)}.entries SET reconciled = reconciled + 1
                WHERE account_id = ${accountId} AND entry_id = ${entryId}`
              yield* Ref.update(order, (xs) => [...xs, `${accountId}/${entryId}`])
              yield* Resumable.setCursor({ lastId: accountId, lastSubId: entryId })
            }
          }
        })),
    { retryPolicy: () => "50 millis" }
  )

  const RunnerLive = Runner.layer({
    schema,
    queues: { default: { maxWorkers: 10 } },
    workers: [reconcileLedger],
    fetchCooldown: "10 millis",
    fetchPollInterval: "25 millis",
    completerFlushInterval: "10 millis"
  })

  return yield* Effect.gen(function*() {
    const client = yield* Client.Client
    const runner = yield* Runner.Runner
    const events = yield* runner.subscribe

    const { job } = yield* client.insert(ReconcileLedger, { ledger: "2024-q1" })
    const outcomes: Array<{ kind: string; cursors: unknown }> = []
    while (outcomes.at(-1)?.kind !== "completed") {
      const event = yield* PubSub.take(events)
      if (event.job.id === job.id) {
        outcomes.push({ kind: event.kind, cursors: event.job.metadata[Resumable.CURSOR_KEY] ?? null })
      }
    }

    const counts = yield* sql<{ reconciled: number; n: number }>`
      SELECT reconciled, count(*)::int AS n FROM ${sql(schema)}.entries GROUP BY 1 ORDER BY 1`
    const row = yield* client.get(job.id)
    return {
      outcomes,
      starts: yield* Ref.get(starts),
      order: yield* Ref.get(order),
      state: row.state,
      attempt: row.attempt,
      entriesByTimesReconciled: Object.fromEntries(counts.map((c) => [c.reconciled, c.n]))
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
