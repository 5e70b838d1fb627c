/**
 * Runs every example's `program` against a fresh database of its own and checks its result
 * exactly, so a change of behaviour in the library shows up here. The examples run in real time:
 * the database layers are built without the test services, so the tests see the live clock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabase } from "../test/utils/db.ts"
import { program as insertAndWork } from "./10_insert-and-work.ts"
import { program as retriesAndSnooze } from "./20_retries-and-snooze.ts"
import { program as cancelFromInside } from "./30_cancel-from-inside.ts"
import { program as cancelFromClient } from "./31_cancel-from-client.ts"
import { program as resumablePipeline } from "./40_resumable-pipeline.ts"
import { program as cursorLoop } from "./41_cursor-loop.ts"
import { program as twoLevelCursor } from "./42_two-level-cursor.ts"
import { program as transactionalStep } from "./43_transactional-step.ts"
import { program as transactionalEnqueue } from "./50_transactional-enqueue.ts"
import { program as observability } from "./70_observability.ts"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"

const live = { excludeTestServices: true } as const

/** Each example must finish well within this (they take about half a second each). */
const within = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  program.pipe(Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("example timed out")) }))

describe("examples", () => {
  it.layer(freshDatabase("ex10"), live)("10 insert and work", (it) => {
    it.effect("inserts three jobs, works them, stops gracefully", () =>
      Effect.gen(function*() {
        const result = yield* within(insertAndWork)
        assert.deepStrictEqual(result, {
          inserted: 3,
          outcomes: ["completed", "completed", "completed"],
          sent: [
            "ada@example.com: Welcome, Ada!",
            "grace@example.com: Welcome, Grace!",
            "linus@example.com: Welcome, Linus!"
          ],
          finalStates: ["completed", "completed", "completed"],
          attempts: [1, 1, 1]
        })
      }))
  })

  it.layer(freshDatabase("ex20"), live)("20 retries and snooze", (it) => {
    it.effect("fails twice then succeeds; snoozes once without using an attempt", () =>
      Effect.gen(function*() {
        const result = yield* within(retriesAndSnooze)
        assert.deepStrictEqual(result, {
          chargeCard: {
            outcomes: ["failed", "failed", "completed"],
            state: "completed",
            attempt: 3,
            errors: [
              "attempt 1: GatewayBusy: payment gateway busy (attempt 1)",
              "attempt 2: GatewayBusy: payment gateway busy (attempt 2)"
            ]
          },
          generateInvoice: {
            outcomes: ["snoozed", "completed"],
            state: "completed",
            attempt: 1,
            snoozes: 1,
            errors: 0
          }
        })
      }))
  })

  it.layer(freshDatabase("ex30"), live)("30 cancel from inside", (it) => {
    it.effect("JobCancel cancels for good with attempts left, the reason in errors", () =>
      Effect.gen(function*() {
        const result = yield* within(cancelFromInside)
        assert.deepStrictEqual(result, {
          outcome: "cancelled",
          state: "cancelled",
          attempt: 1,
          maxAttempts: 10,
          finalized: true,
          errors: ["JobCancelError: order 42 was withdrawn"],
          runs: 1
        })
      }))
  })

  it.layer(freshDatabase("ex31"), live)("31 cancel from client", (it) => {
    it.effect("client.cancel interrupts the running job, its finalizer runs, it ends cancelled", () =>
      Effect.gen(function*() {
        const result = yield* within(cancelFromClient)
        assert.deepStrictEqual(result, {
          stateWhenCancelReturned: "running",
          cancelRequested: true,
          outcome: "cancelled",
          state: "cancelled",
          errors: ["JobCancelError: job cancelled remotely"],
          log: ["opened export file for report 7", "closed export file"],
          stillRunning: 0
        })
      }))
  })

  it.layer(freshDatabase("ex40"), live)("40 resumable pipeline", (it) => {
    it.effect("the retry resumes after the completed download: one download", () =>
      Effect.gen(function*() {
        const result = yield* within(resumablePipeline)
        assert.deepStrictEqual(result, {
          outcomes: [
            { kind: "failed", checkpoint: "download" },
            { kind: "completed", checkpoint: "download" }
          ],
          state: "completed",
          attempt: 2,
          downloads: 1,
          log: ["download (attempt 1)", "transform (attempt 1)", "transform (attempt 2)", "load (attempt 2)"],
          loaded: ["apple=3", "pear=5", "plum=2"]
        })
      }))
  })

  it.layer(freshDatabase("ex41"), live)("41 cursor loop", (it) => {
    it.effect("fails midway, resumes after the saved cursor, no id processed twice", () =>
      Effect.gen(function*() {
        const result = yield* within(cursorLoop)
        assert.deepStrictEqual(result, {
          outcomes: [
            { kind: "failed", cursors: { resize: 5 } },
            { kind: "completed", cursors: { resize: 5 } }
          ],
          starts: ["attempt 1 starts after 0", "attempt 2 starts after 5"],
          state: "completed",
          attempt: 2,
          resizedOnce: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
          resizedTwiceOrMore: [],
          notResized: []
        })
      }))
  })

  it.layer(freshDatabase("ex42"), live)("42 two-level cursor", (it) => {
    it.effect("a struct cursor resumes inside the account where the first attempt stopped", () =>
      Effect.gen(function*() {
        const result = yield* within(twoLevelCursor)
        assert.deepStrictEqual(result, {
          outcomes: [
            { kind: "failed", cursors: { reconcile: { lastId: 2, lastSubId: 2 } } },
            { kind: "completed", cursors: { reconcile: { lastId: 2, lastSubId: 2 } } }
          ],
          starts: ["attempt 1 starts after 0/0", "attempt 2 starts after 2/2"],
          order: ["1/1", "1/2", "1/3", "2/1", "2/2", "2/3", "2/4", "3/1", "3/2"],
          state: "completed",
          attempt: 2,
          entriesByTimesReconciled: { 1: 9 }
        })
      }))
  })

  it.layer(freshDatabase("ex43"), live)("43 transactional step", (it) => {
    it.effect("a rolled-back batch leaves neither rows nor checkpoint; the retry continues after the last commit", () =>
      Effect.gen(function*() {
        const result = yield* within(transactionalStep)
        assert.deepStrictEqual(result, {
          outcomes: [
            {
              kind: "failed",
              metadata: { "river:resumable_step": "copy_batches", "river:resumable_cursor": { copy_batches: 1 } }
            },
            {
              kind: "completed",
              metadata: { "river:resumable_step": "copy_batches", "river:resumable_cursor": { copy_batches: 3 } }
            }
          ],
          log: [
            "attempt 1: open_import",
            "attempt 1: copy_batches starts after batch 0, 0 orders in the table",
            "attempt 1: batch 1 committed, stored cursor 1",
            "attempt 2: copy_batches starts after batch 1, 2 orders in the table",
            "attempt 2: batch 2 committed, stored cursor 2",
            "attempt 2: batch 3 committed, stored cursor 3"
          ],
          state: "completed",
          attempt: 2,
          errors: ["InvalidBatch: batch 2 failed validation"],
          orders: [101, 102, 103, 104, 105, 106],
          imports: 1
        })
      }))
  })

  it.layer(freshDatabase("ex50"), live)("50 transactional enqueue", (it) => {
    it.effect("rollback leaves neither job nor rows; commit keeps both and the job runs", () =>
      Effect.gen(function*() {
        const result = yield* within(transactionalEnqueue)
        assert.deepStrictEqual(result, {
          rolledBack: { error: "OutOfStock", orders: 0, jobs: 0 },
          committed: { orders: 1, jobs: 1 },
          outcome: "completed",
          receiptsSent: [2]
        })
      }))
  })

  it.layer(freshDatabase("ex70"), live)("70 observability", (it) => {
    it.effect("waitFor returns the final row with the recorded output; the insert left its trace context", () =>
      Effect.gen(function*() {
        const spans = new InMemorySpanExporter()
        // Read the spans before the SDK shuts down (shutting down clears the in-memory exporter).
        const { names, result } = yield* Effect.map(within(observability), (result) => ({
          result,
          names: spans.getFinishedSpans().map((s) => s.name)
        })).pipe(
          Effect.provide(NodeSdk.layer(() => ({ resource: { serviceName: "example" }, spanProcessor: new SimpleSpanProcessor(spans) })))
        )
        assert.deepStrictEqual(result, {
          state: "completed",
          output: { url: "https://img.example/cat.png?w=320" },
          hasTraceparent: true
        })
        assert.includeMembers(names, ["POST /images", "effect-river.insert", "effect-river.work resize_image", "resize"])
      }))
  })
})
