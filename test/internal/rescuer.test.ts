/**
 * The rescuer's rules for one stuck job (River's `JobRescuer`, docs/state-machine.md, "Who moves
 * a job") as a table: `decide` picks what to do, `rescueOf` writes it, given the retry policy's
 * time. Pure functions: no database, no clock. The statement that applies rescues is covered by
 * the driver's conformance suite; a whole pass by test/Maintenance.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import type { JobRow } from "../../src/Job.ts"
import * as JobKind from "../../src/JobKind.ts"
import { decide, type Decision, RESCUE_ERROR, rescueOf } from "../../src/internal/maintenance/rescuer.ts"
import * as Worker from "../../src/Worker.ts"

const NOW = Date.parse("2033-01-01T00:00:00.000Z")
const HOUR = 3_600_000
const Task = JobKind.make("task", { args: Schema.Struct({ n: Schema.Number }) })
const Patient = JobKind.make("patient", { args: Schema.Struct({}) })
const workerPolicy = () => Duration.seconds(10)
const runnerPolicy = () => Duration.seconds(20)
const config = {
  workers: new Map<string, Worker.Any>([
    ["task", Worker.make(Task, () => Effect.void, { retryPolicy: workerPolicy })],
    ["patient", Worker.make(Patient, () => Effect.void, { timeout: "none" })]
  ]),
  jobTimeout: Duration.minutes(1),
  retryPolicy: runnerPolicy
}

const stuck = (overrides: Partial<JobRow> = {}): JobRow => ({
  id: 1n,
  state: "running",
  attempt: 1,
  maxAttempts: 25,
  attemptedAt: new Date(NOW - 2 * HOUR),
  attemptedBy: ["dead"],
  createdAt: new Date(0),
  finalizedAt: null,
  scheduledAt: new Date(NOW - 3 * HOUR),
  priority: 1,
  args: { n: 1 },
  errors: [],
  kind: "task",
  metadata: {},
  queue: "default",
  tags: [],
  uniqueKey: null,
  uniqueStates: null,
  ...overrides
})

const table: ReadonlyArray<readonly [string, Partial<JobRow>, Decision]> = [
  ["a cancel requested during the attempt: cancelled", { metadata: { cancel_attempted_at: new Date(NOW - HOUR).toISOString() } }, { _tag: "Finalize", state: "cancelled" }],
  ["a cancel request it cannot read counts: cancelled", { metadata: { cancel_attempted_at: "yesterday-ish" } }, { _tag: "Finalize", state: "cancelled" }],
  ["a cancel requested before this attempt does not count", { metadata: { cancel_attempted_at: new Date(NOW - 3 * HOUR).toISOString() } }, { _tag: "Retry", policy: workerPolicy }],
  ["no worker for its kind: discarded", { kind: "gone" }, { _tag: "Finalize", state: "discarded" }],
  ["args that no longer decode: River's backoff", { args: { n: "one" } }, { _tag: "Retry", policy: undefined }],
  ["no timeout: left alone", { kind: "patient", args: {} }, { _tag: "Leave" }],
  ["its timeout has not elapsed: left alone", { attemptedAt: new Date(NOW - 30_000) }, { _tag: "Leave" }],
  ["its timeout elapsed: retried by the worker's policy", {}, { _tag: "Retry", policy: workerPolicy }]
]

describe("the rescuer's decision", () => {
  for (const [name, overrides, expected] of table) {
    it(name, () => {
      assert.deepStrictEqual(decide(config, stuck(overrides), NOW), expected)
    })
  }

  it("a worker without a policy is retried by the runner's", () => {
    const plain = { ...config, workers: new Map<string, Worker.Any>([["task", Worker.make(Task, () => Effect.void)]]) }
    assert.deepStrictEqual(decide(plain, stuck(), NOW), { _tag: "Retry", policy: runnerPolicy })
  })

  it("writes each decision with River's error, at the rescue's time", () => {
    const job = stuck({ id: 9n, attempt: 3 })
    const error = { at: new Date(NOW).toISOString(), attempt: 3, error: RESCUE_ERROR, trace: "" }
    assert.isUndefined(rescueOf(job, { _tag: "Leave" }, NOW))
    assert.deepStrictEqual(rescueOf(job, { _tag: "Finalize", state: "cancelled" }, NOW), {
      id: 9n,
      attempt: 3,
      error,
      state: "cancelled",
      finalizedAt: new Date(NOW)
    })
    assert.deepStrictEqual(rescueOf(job, { _tag: "Retry", policy: undefined }, NOW, NOW + 10_000), {
      id: 9n,
      attempt: 3,
      error,
      state: "retryable",
      scheduledAt: new Date(NOW + 10_000)
    })
    assert.strictEqual(rescueOf(job, { _tag: "Retry", policy: undefined }, NOW, undefined)!.state, "discarded", "the policy stopped")
    const last = stuck({ attempt: 25, maxAttempts: 25 })
    assert.deepStrictEqual(rescueOf(last, { _tag: "Retry", policy: undefined }, NOW, NOW + 1_000), {
      id: 1n,
      attempt: 25,
      error: { ...error, attempt: 25 },
      state: "discarded",
      finalizedAt: new Date(NOW)
    })
  })
})
