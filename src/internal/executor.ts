/**
 * The executor: runs fetched jobs, each in a fiber of its own, and hands each attempt's outcome
 * to `complete` (the completer's queue). The runner's producers and `Testing.work` build it the
 * same way ({@link make}), so a test runs the production path: decoding, the resumable service,
 * timeouts, interruption and the outcome rules.
 *
 * - Timeouts: one sweep per executor interrupts overdue jobs (reason `timeout`), instead of a
 *   timer racing every job; its period is a tenth of the shortest attempt timeout, 10 ms to 1 s.
 * - Interrupts carry their reason (`remote-cancel`, `shutdown`, `timeout`) as an annotation of
 *   the interrupt itself; the outcome reads it from the attempt's `Cause`. An interrupt that
 *   arrives before the job's fiber exists is held and delivered as soon as it does.
 * - The worker runs interruptibly; deciding and handing over the outcome does not, so an
 *   interrupted job still gets one. A success that ends before an interrupt lands wins.
 *
 * The decisions themselves are pure and live in `outcome.ts`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberMap from "effect/FiberMap"
import * as References from "effect/References"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { JobRow } from "../Job.ts"
import { UnknownJobKind } from "../Errors.ts"
import type { RetryPolicy, Worker } from "../Worker.ts"
import type { Driver } from "./driver/driver.ts"
import {
  type Completion,
  completionOf,
  decide,
  interruptAnnotations,
  type InterruptReason,
  interruptReasonOf,
  wantsRetryTime
} from "./outcome.ts"
import * as Output from "./output.ts"
import * as ResumableAttempt from "./resumable.ts"
import { retryAt } from "./retry.ts"
import * as Telemetry from "./telemetry.ts"

/** What the executor needs to run jobs. */
export interface ExecutorConfig {
  readonly driver: Driver
  readonly workers: ReadonlyMap<string, Worker<any, any, any, any>>
  readonly jobTimeout: Duration.Duration | "none"
  readonly retryPolicy: RetryPolicy | undefined
  /** Receives each attempt's outcome (the completer's `enqueue`). */
  readonly complete: (completion: Completion) => Effect.Effect<void>
  /** Called as each attempt starts, before the worker runs (the runner's `started` events). */
  readonly onStarted?: ((row: JobRow) => Effect.Effect<void>) | undefined
  /** Called when a job's fiber has ended (a slot is free). */
  readonly onJobDone?: (() => void) | undefined
}

/** The attempt time limit of a job of `kind`: its worker's, else the runner's. */
export const timeoutOf = (
  config: Pick<ExecutorConfig, "workers" | "jobTimeout">,
  kind: string
): Duration.Duration | "none" => config.workers.get(kind)?.timeout ?? config.jobTimeout

/** A tenth of the shortest attempt timeout, between 10 ms and 1 s: how often overdue jobs are looked for. */
export const sweepInterval = (config: Pick<ExecutorConfig, "workers" | "jobTimeout">): Duration.Duration => {
  const timeouts = [config.jobTimeout, ...[...config.workers.values()].map((w) => w.timeout)]
    .filter((t): t is Duration.Duration => t !== undefined && t !== "none")
    .map(Duration.toMillis)
  return Duration.millis(Math.min(1_000, Math.max(10, Math.min(...timeouts, Number.POSITIVE_INFINITY) / 10)))
}

/**
 * Builds the effect that runs the worker for one row (decoding included). `onWorkExit` sees the
 * worker's own exit as it ends, inside any interruption around it.
 */
const workFor = (
  config: ExecutorConfig,
  row: JobRow,
  resumable: ResumableAttempt.ResumableJob["Service"],
  span: Tracer.Span | undefined,
  annotate: boolean,
  onWorkExit: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
): Effect.Effect<unknown, unknown, any> => {
  const worker = config.workers.get(row.kind)
  if (worker === undefined) return Effect.fail(new UnknownJobKind({ kind: row.kind }))
  const decoded = worker.jobKind.decode(row.args)
  if (Result.isFailure(decoded)) return Effect.fail(decoded.failure)
  const job = { ...row, args: decoded.success, encodedArgs: row.args }
  // Only the worker runs under the attempt span: with OpenTelemetry installed every step under a
  // span enters the OpenTelemetry context, so the runtime's own wrappers stay outside it.
  const work = Effect.suspend(() => worker.work(job))
  const annotations = annotate ? Telemetry.jobLogAnnotations(row) : undefined
  // The attempt's service and log annotations in one context switch, with as few additions as
  // possible: past a small depth, each addition copies the fiber's whole context.
  return Effect.updateContext(
    Effect.tap(span === undefined ? work : Effect.withParentSpan(work, span), () => ResumableAttempt.verifyResumed(resumable)),
    (context: Context.Context<never>) => {
      let next = Context.add(context, ResumableAttempt.ResumableJob, resumable)
      if (annotations !== undefined) {
        next = Context.add(next, References.CurrentLogAnnotations, {
          ...Context.get(context, References.CurrentLogAnnotations),
          ...annotations
        })
      }
      return next as Context.Context<any>
    }
  ).pipe(Effect.onExit(onWorkExit))
}

/**
 * Runs one attempt and hands its outcome to `config.complete`. The worker runs interruptibly;
 * deciding and handing over the outcome does not.
 */
const execute = (config: ExecutorConfig, row: JobRow, annotate: boolean): Effect.Effect<void, never, any> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const telemetry = yield* Telemetry.startAttempt(row)
      const span = telemetry.span
      if (config.onStarted !== undefined) yield* config.onStarted(row)
      // The work's own exit, captured as it ends: an interrupt that arrives after the work
      // finished (for example in uninterruptible code) must not hide a success.
      let workExit: Exit.Exit<unknown, unknown> | undefined
      const resumable = ResumableAttempt.make({
        jobId: row.id,
        attempt: row.attempt,
        metadata: row.metadata,
        driver: config.driver
      })
      const output = resumable.output
      const attempt = workFor(config, row, resumable, span, annotate, (e) =>
        Effect.sync(() => {
          workExit = e
        }))
      const exit = yield* Effect.exit(restore(attempt))
      const finishedAt = yield* Clock.currentTimeMillis
      // A successful work wins over an interruption that came after it; otherwise the exit of
      // the whole attempt (which includes decoding and interruption) decides.
      const decisive = workExit !== undefined && workExit._tag === "Success" ? workExit : exit
      const verdict = decide(decisive, decisive._tag === "Failure" ? interruptReasonOf(decisive.cause) : undefined, {
        now: finishedAt,
        timeout: timeoutOf(config, row.kind)
      })
      const next = wantsRetryTime(row, verdict) && verdict._tag === "Failed"
        ? yield* retryAt(config.workers.get(row.kind)?.retryPolicy ?? config.retryPolicy, row, verdict.failure, finishedAt)
        : undefined
      let completion = completionOf(row, verdict, { startedAt, finishedAt }, next)
      // Every outcome but success keeps the resumable progress (River loses it on panics).
      if (completion.kind !== "completed") {
        const patch = yield* ResumableAttempt.checkpoint(resumable)
        if (patch !== undefined) completion = { ...completion, metadata: { ...completion.metadata, ...patch } }
      }
      // River stores recorded output whatever the outcome.
      if (output.recorded) {
        completion = { ...completion, metadata: { ...completion.metadata, [Output.OutputMetadataKey]: output.value } }
      }
      Telemetry.recordOutcome(telemetry, completion)
      if (span !== undefined) yield* Telemetry.endAttemptSpan(span, completion, decisive)
      yield* config.complete(completion)
    })
  )

/** A job the executor runs. */
interface Running {
  readonly row: JobRow
  /** Attempt deadline (Clock millis), if the job has a timeout and has not been timed out yet. */
  deadline: number | undefined
  fiber: Fiber.Fiber<void> | undefined
  /** An interrupt that arrived before the fiber existed. */
  pending: InterruptReason | undefined
}

/** The executor of one producer (or of one `Testing.work`). */
export interface Executor {
  /**
   * Starts fetched (running) jobs, each in a fiber of its own; `now` is when they were fetched
   * (their attempt deadlines count from it).
   */
  readonly start: (rows: ReadonlyArray<JobRow>, now: number) => Effect.Effect<void>
  /** How many jobs run now. */
  readonly size: () => number
  readonly has: (id: bigint) => boolean
  /** The jobs running now, as they were fetched. */
  readonly rows: () => ReadonlyArray<JobRow>
  /** Interrupts one running job with its reason (without waiting); false if it does not run here. */
  readonly interrupt: (id: bigint, reason: InterruptReason) => boolean
  /** Interrupts every running job and waits until each has handed over its outcome. */
  readonly interruptAll: (reason: InterruptReason) => Effect.Effect<void>
  /** Waits until no job runs. */
  readonly awaitIdle: Effect.Effect<void>
}

/** An executor in the current scope; closing it interrupts the jobs still running (without a reason). */
export const make = Effect.fnUntraced(function*(config: ExecutorConfig) {
  const fibers = yield* FiberMap.make<bigint, void, never>()
  // Decided once: the runner's `telemetry` option holds for every fiber it forks.
  const annotate = yield* Telemetry.Enabled
  const running = new Map<bigint, Running>()
  const onJobDone = config.onJobDone

  const interruptRunning = (job: Running, reason: InterruptReason) => {
    if (job.fiber === undefined) job.pending = reason
    else job.fiber.interruptUnsafe(undefined, interruptAnnotations(reason))
  }

  const done = (id: bigint, queue: string) =>
    Effect.withFiber((fiber) => {
      running.delete(id)
      Telemetry.addRunning(fiber, queue, -1)
      if (onJobDone !== undefined) onJobDone()
      return Effect.void
    })

  const start = (rows: ReadonlyArray<JobRow>, now: number): Effect.Effect<void> =>
    Effect.withFiber((fiber) => {
      // Every job is known before the first one starts: one may be interrupted (or finish) while
      // the others start.
      const jobs = new Array<Running>(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!
        const timeout = timeoutOf(config, row.kind)
        const job: Running = {
          row,
          deadline: timeout === "none" ? undefined : now + Duration.toMillis(timeout),
          fiber: undefined,
          pending: undefined
        }
        jobs[i] = job
        running.set(row.id, job)
        Telemetry.addRunning(fiber, row.queue, 1)
      }
      return Effect.forEach(jobs, (job) =>
        // The workers' requirements are in the context the runner was built with.
        Effect.map(FiberMap.run(fibers, job.row.id, Effect.ensuring(execute(config, job.row, annotate) as Effect.Effect<void>, done(job.row.id, job.row.queue))), (fiber) => {
          job.fiber = fiber
          if (job.pending !== undefined) interruptRunning(job, job.pending)
        }), { discard: true })
    })

  // One sweep per executor interrupts overdue jobs (reason "timeout").
  const interval = sweepInterval(config)
  yield* Effect.forkScoped(Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(interval)
      if (running.size === 0) continue
      const now = yield* Clock.currentTimeMillis
      for (const job of running.values()) {
        if (job.deadline === undefined || job.deadline > now) continue
        job.deadline = undefined
        interruptRunning(job, "timeout")
      }
    }
  }))

  return {
    start,
    size: () => running.size,
    has: (id) => running.has(id),
    rows: () => Array.from(running.values(), (job) => job.row),
    interrupt: (id, reason) => {
      const job = running.get(id)
      if (job === undefined) return false
      interruptRunning(job, reason)
      return true
    },
    interruptAll: (reason) =>
      Effect.suspend(() => {
        for (const job of running.values()) interruptRunning(job, reason)
        return FiberMap.awaitEmpty(fibers)
      }),
    awaitIdle: FiberMap.awaitEmpty(fibers)
  } satisfies Executor
}) as (config: ExecutorConfig) => Effect.Effect<Executor, never, Scope.Scope>
