/**
 * The outcome of one attempt (docs/state-machine.md, "The outcome of one attempt") as a table:
 * `decide` reads an attempt's Exit and the reason its interrupt carried, `completionOf` writes the
 * verdict, given the retry policy's time. Pure functions: no database, no clock, no fiber (but the
 * last test, which checks that an interrupt's reason reaches the Exit).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { JobCancel, JobSnooze, UnknownJobKind } from "../../src/Errors.ts"
import type { JobRow } from "../../src/Job.ts"
import {
  completionOf,
  decide,
  interruptAnnotations,
  type InterruptReason,
  interruptReasonOf,
  type Verdict,
  wantsRetryTime
} from "../../src/internal/outcome.ts"

const NOW = Date.parse("2032-01-01T00:00:10.000Z")
const STARTED = NOW - 2_000
const ATTEMPTED = new Date(NOW - 3_000)

const row = (overrides: Partial<JobRow> = {}): JobRow => ({
  id: 7n,
  state: "running",
  attempt: 1,
  maxAttempts: 25,
  attemptedAt: ATTEMPTED,
  attemptedBy: ["me"],
  createdAt: new Date(0),
  finalizedAt: null,
  scheduledAt: new Date(NOW - 4_000),
  priority: 1,
  args: {},
  errors: [],
  kind: "task",
  metadata: {},
  queue: "default",
  tags: [],
  uniqueKey: null,
  uniqueStates: null,
  ...overrides
})

class Boom extends Error {
  override readonly name = "Boom"
}

const interrupted = Exit.failCause(Cause.interrupt())
const failure = (error: unknown) => Exit.fail(error)

interface Case {
  readonly name: string
  readonly exit: Exit.Exit<unknown, unknown>
  readonly reason?: InterruptReason
  readonly row?: Partial<JobRow>
  /** The retry policy's answer (ms after now), when asked. */
  readonly retryIn?: number | "stop"
  readonly expect: {
    readonly kind: string
    readonly state: string
    readonly attempt?: number
    readonly scheduledIn?: number
    readonly finalized: boolean
    readonly error?: string | RegExp
    readonly metadata?: Record<string, unknown>
  }
}

// Rows in the order of docs/state-machine.md's list.
const table: ReadonlyArray<Case> = [
  // 1. cancelled remotely, unless it succeeded first
  { name: "a remote cancel ends a failure cancelled", exit: failure("boom"), reason: "remote-cancel", expect: { kind: "cancelled", state: "cancelled", finalized: true, error: "JobCancelError: job cancelled remotely" } },
  { name: "a remote cancel ends the interrupted attempt cancelled", exit: interrupted, reason: "remote-cancel", expect: { kind: "cancelled", state: "cancelled", finalized: true, error: "JobCancelError: job cancelled remotely" } },
  // 2. success
  { name: "success completes", exit: Exit.succeed(1), expect: { kind: "completed", state: "completed", finalized: true } },
  { name: "success wins over a remote cancel that came after", exit: Exit.succeed(1), reason: "remote-cancel", expect: { kind: "completed", state: "completed", finalized: true } },
  // 3. the runner's stop
  { name: "the runner's stop makes it available at once, attempt given back", exit: interrupted, reason: "shutdown", expect: { kind: "interrupted", state: "available", attempt: 0, scheduledIn: 0, finalized: false } },
  // 4. JobCancel, JobSnooze
  { name: "JobCancel cancels for good, with its reason", exit: failure(JobCancel.of("customer gone")), row: { attempt: 1, maxAttempts: 25 }, expect: { kind: "cancelled", state: "cancelled", finalized: true, error: "JobCancelError: customer gone" } },
  { name: "a snooze of 5 s is available at once with a later time, attempt given back", exit: failure(JobSnooze.of("5 seconds")), row: { attempt: 3, metadata: { snoozes: 2 } }, expect: { kind: "snoozed", state: "available", attempt: 2, scheduledIn: 5_000, finalized: false, metadata: { snoozes: 3 } } },
  { name: "a longer snooze is scheduled", exit: failure(JobSnooze.of(5_001)), expect: { kind: "snoozed", state: "scheduled", attempt: 0, scheduledIn: 5_001, finalized: false, metadata: { snoozes: 1 } } },
  { name: "a negative snooze is a failure", exit: failure(JobSnooze.of(-1)), retryIn: 1_000, expect: { kind: "failed", state: "available", scheduledIn: 1_000, finalized: false, error: /JobSnooze: the delay must be a finite duration >= 0/ } },
  // 5. anything else
  { name: "a failure with attempts left is retried; within 5 s it is available", exit: failure("boom"), retryIn: 5_000, expect: { kind: "failed", state: "available", scheduledIn: 5_000, finalized: false, error: "boom" } },
  { name: "a failure retried later is retryable", exit: failure({ _tag: "Boom", message: "no" }), retryIn: 5_001, expect: { kind: "failed", state: "retryable", scheduledIn: 5_001, finalized: false, error: "Boom: no" } },
  { name: "a failure with no attempt left is discarded", exit: failure("boom"), row: { attempt: 25, maxAttempts: 25 }, expect: { kind: "failed", state: "discarded", finalized: true, error: "boom" } },
  { name: "a failure whose policy stops is discarded", exit: failure("boom"), retryIn: "stop", expect: { kind: "failed", state: "discarded", finalized: true, error: "boom" } },
  { name: "a defect is a failure, named by its class", exit: Exit.die(new Boom("exploded")), retryIn: 1_000, expect: { kind: "failed", state: "available", scheduledIn: 1_000, finalized: false, error: "Boom: exploded" } },
  { name: "a thrown Error is a failure by its message", exit: Exit.die(new Error("thrown")), retryIn: 1_000, expect: { kind: "failed", state: "available", scheduledIn: 1_000, finalized: false, error: "thrown" } },
  { name: "a timeout is a failure", exit: interrupted, reason: "timeout", retryIn: 60_000, expect: { kind: "failed", state: "retryable", scheduledIn: 60_000, finalized: false, error: "job timed out after 1m" } },
  { name: "an interrupt the runner did not send is a failure", exit: interrupted, retryIn: 1_000, expect: { kind: "failed", state: "available", scheduledIn: 1_000, finalized: false, error: "job interrupted" } },
  { name: "an unknown kind is a failure", exit: failure(new UnknownJobKind({ kind: "gone" })), row: { attempt: 1, maxAttempts: 1 }, expect: { kind: "failed", state: "discarded", finalized: true, error: "job kind is not registered in the client's Workers bundle: gone" } },
  { name: "a stop that also failed is a failure, not a stop", exit: Exit.failCause(Cause.combine(Cause.interrupt(), Cause.die(new Error("in a finalizer")))), reason: "shutdown", retryIn: 1_000, expect: { kind: "failed", state: "available", scheduledIn: 1_000, finalized: false, error: "in a finalizer" } }
]

const run = (c: Case) => {
  const job = row(c.row)
  const verdict: Verdict = decide(c.exit, c.reason, { now: NOW, timeout: Duration.minutes(1) })
  const asked = wantsRetryTime(job, verdict)
  const retryAt = c.retryIn === undefined || c.retryIn === "stop" ? undefined : NOW + c.retryIn
  return { job, asked, completion: completionOf(job, verdict, { startedAt: STARTED, finishedAt: NOW }, retryAt) }
}

describe("the outcome of one attempt", () => {
  for (const c of table) {
    it(c.name, () => {
      const { asked, completion, job } = run(c)
      const e = c.expect
      assert.strictEqual(completion.kind, e.kind)
      assert.strictEqual(completion.state, e.state)
      assert.strictEqual(completion.attempt, e.attempt)
      assert.strictEqual(completion.scheduledAt?.getTime(), e.scheduledIn === undefined ? undefined : NOW + e.scheduledIn)
      assert.strictEqual(completion.finalizedAt?.getTime(), e.finalized ? NOW : undefined)
      assert.deepStrictEqual(completion.metadata, e.metadata)
      if (e.error === undefined) {
        assert.isUndefined(completion.error)
      } else {
        assert.strictEqual(completion.error!.attempt, job.attempt)
        assert.strictEqual(completion.error!.at, ATTEMPTED.toISOString(), "River's `at`: when the attempt started")
        if (typeof e.error === "string") assert.strictEqual(completion.error!.error, e.error)
        else assert.match(completion.error!.error, e.error)
      }
      // The retry policy is asked exactly for failures with an attempt left.
      assert.strictEqual(asked, e.kind === "failed" && job.attempt < job.maxAttempts)
      assert.deepStrictEqual([completion.id, completion.startedAt, completion.finishedAt], [job.id, STARTED, NOW])
    })
  }

  it("a defect's stack is the trace; other errors have none", () => {
    const boom = new Boom("exploded")
    assert.strictEqual(run({ name: "", exit: Exit.die(boom), retryIn: 1, expect: {} as never }).completion.error!.trace, boom.stack)
    assert.strictEqual(run({ name: "", exit: failure("x"), retryIn: 1, expect: {} as never }).completion.error!.trace, "")
  })

  it.effect("an interrupt carries its reason to the attempt's Exit (the latest, when several reach it)", () =>
    Effect.gen(function*() {
      for (const reasons of [["timeout"], ["remote-cancel"], ["timeout", "shutdown"]] as const) {
        // The attempt is in uninterruptible code when the interrupts arrive; they land when it leaves it.
        const gate = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(Effect.andThen(Effect.uninterruptible(Deferred.await(gate)), Effect.never))
        yield* Effect.yieldNow
        for (const reason of reasons) fiber.interruptUnsafe(undefined, interruptAnnotations(reason))
        yield* Deferred.succeed(gate, undefined)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(interruptReasonOf((exit as Exit.Failure<never, never>).cause), reasons.at(-1))
      }
      const plain = yield* Effect.forkChild(Effect.never)
      yield* Effect.yieldNow
      yield* Fiber.interrupt(plain)
      const exit = (yield* Fiber.await(plain)) as Exit.Failure<never, never>
      assert.isUndefined(interruptReasonOf(exit.cause))
    }))
})
