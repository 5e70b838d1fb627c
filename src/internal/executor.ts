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

/** Whether a record has an own enumerable key (without building the key list). */
const hasKeys = (record: object): boolean => {
  for (const _ in record) return true
  return false
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
  // A job with a checkpoint must reach its recorded step; one without (the common case) needs
  // no check unless the worker used a step.
  const checked = Effect.flatMap(
    span === undefined ? work : Effect.withParentSpan(work, span),
    (value) => resumable.hasCheckpoint || resumable.loaded() !== undefined
      ? Effect.as(ResumableAttempt.verifyResumed(resumable), value)
      : Effect.succeed(value)
  )
  const annotations = annotate ? Telemetry.jobLogAnnotations(row) : undefined
  // The attempt's service and log annotations in one context switch, with as few additions as
  // possible: past a small depth, each addition copies the fiber's whole context.
  return Effect.updateContext(checked, (context: Context.Context<never>) => {
    let next = Context.add(context, ResumableAttempt.ResumableJob, resumable)
    if (annotations !== undefined) {
      const outer = Context.get(context, References.CurrentLogAnnotations)
      next = Context.add(next, References.CurrentLogAnnotations, hasKeys(outer) ? { ...outer, ...annotations } : annotations)
    }
    return next as Context.Context<any>
  }).pipe(Effect.onExit(onWorkExit))
}

/**
 * Runs one attempt and hands its outcome to `config.complete`. The worker runs interruptibly;
 * deciding and handing over the outcome does not.
 *
 * Written as a few callbacks rather than a generator: this runs once per job, and for a no-op
 * job the runtime's own steps are most of the cost (the clock is read synchronously, the span
 * and the retry time are effects only when there is one to make).
 */
const execute = (config: ExecutorConfig, row: JobRow, annotate: boolean): Effect.Effect<void, never, any> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      const startedAt = clock.currentTimeMillisUnsafe()
      const run = (telemetry: Telemetry.AttemptTelemetry): Effect.Effect<void, never, any> => {
        const span = telemetry.span
        // The work's own exit, captured as it ends: an interrupt that arrives after the work
        // finished (for example in uninterruptible code) must not hide a success.
        let workExit: Exit.Exit<unknown, unknown> | undefined
        const resumable = ResumableAttempt.make({
          jobId: row.id,
          attempt: row.attempt,
          metadata: row.metadata,
          driver: config.driver
        })
        const attempt = workFor(config, row, resumable, span, annotate, (e) =>
          Effect.sync(() => {
            workExit = e
          }))
        return Effect.flatMap(Effect.exit(restore(attempt)), (exit) => {
          const finishedAt = clock.currentTimeMillisUnsafe()
          // A successful work wins over an interruption that came after it; otherwise the exit of
          // the whole attempt (which includes decoding and interruption) decides.
          const decisive = workExit !== undefined && workExit._tag === "Success" ? workExit : exit
          const verdict = decide(decisive, decisive._tag === "Failure" ? interruptReasonOf(decisive.cause) : undefined, {
            now: finishedAt,
            timeout: timeoutOf(config, row.kind)
          })
          const finish = (next: number | undefined) => {
            const completion = completionOf(row, verdict, { startedAt, finishedAt }, next)
            // Every outcome but success keeps the resumable progress (River loses it on panics).
            return completion.kind === "completed"
              ? complete(completion)
              : Effect.flatMap(ResumableAttempt.checkpoint(resumable), (patch) =>
                complete(patch === undefined ? completion : { ...completion, metadata: { ...completion.metadata, ...patch } }))
          }
          const complete = (completion: Completion): Effect.Effect<void> => {
            // River stores recorded output whatever the outcome.
            const output = resumable.output
            if (output.recorded) {
              completion = { ...completion, metadata: { ...completion.metadata, [Output.OutputMetadataKey]: output.value } }
            }
            Telemetry.recordOutcome(telemetry, completion)
            return span === undefined
              ? config.complete(completion)
              : Effect.andThen(Telemetry.endAttemptSpan(span, completion, decisive), config.complete(completion))
          }
          return wantsRetryTime(row, verdict) && verdict._tag === "Failed"
            ? Effect.flatMap(
              retryAt(config.workers.get(row.kind)?.retryPolicy ?? config.retryPolicy, row, verdict.failure, finishedAt),
              finish
            )
            : finish(undefined)
        })
      }
      const started = (telemetry: Telemetry.AttemptTelemetry) =>
        config.onStarted === undefined ? run(telemetry) : Effect.andThen(config.onStarted(row), run(telemetry))
      const telemetry = Telemetry.attemptTelemetry(fiber)
      return telemetry === "span"
        ? Effect.flatMap(Telemetry.startAttemptSpan(row, fiber.context), started)
        : started(telemetry)
    })
  )

/** A job the executor runs. */
interface Running {
  readonly row: JobRow
  /** Attempt deadline (Clock millis), if the job has a timeout and has not been timed out yet. */
  deadline: number | undefined
  fiber: Fiber.Fiber<void> | undefined
  /** An interrupt that arrived before the fiber existed (`undefined` reason: the executor closed). */
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

/**
 * An executor in the current scope; closing it interrupts the jobs still running (without a
 * reason) and waits for them.
 *
 * Each job is a fiber of its own, started at once in the context the executor was made in (the
 * workers' requirements are in the context the runner was built with) and tracked
 * here rather than in a `FiberMap`: the executor already keeps every running job by id, and a
 * second map (with hashing of bigint keys) cost a measurable share of a no-op job.
 */
export const make = Effect.fnUntraced(function*(config: ExecutorConfig) {
  // Decided once: the runner's `telemetry` option holds for every fiber it forks.
  const annotate = yield* Telemetry.Enabled
  // Job fibers run in the context the executor was made in, whoever starts them (the producer's
  // fetch, or the completer's slot hand-over).
  const forkContext = yield* Effect.context<never>()
  const running = new Map<bigint, Running>()
  const onJobDone = config.onJobDone
  /** Callers of `awaitIdle` waiting for the last running job to end. */
  let idleWaiters: Array<() => void> = []

  const interruptRunning = (job: Running, reason: InterruptReason | undefined) => {
    if (job.fiber === undefined) job.pending = reason
    else job.fiber.interruptUnsafe(undefined, reason === undefined ? undefined : interruptAnnotations(reason))
  }

  const ended = (job: Running, fiber: Fiber.Fiber<void>) => {
    if (running.get(job.row.id) !== job) return
    running.delete(job.row.id)
    Telemetry.addRunning(fiber, job.row.queue, -1)
    if (onJobDone !== undefined) onJobDone()
    if (running.size === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters
      idleWaiters = []
      for (const wake of waiters) wake()
    }
  }

  const awaitIdle: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (running.size === 0) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    idleWaiters.push(wake)
    return Effect.sync(() => {
      idleWaiters = idleWaiters.filter((w) => w !== wake)
    })
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
      const fork = Effect.runForkWith(forkContext)
      for (const job of jobs) {
        // Runs at once, up to its first asynchronous step (a no-op job to its end).
        const jobFiber = fork(execute(config, job.row, annotate) as Effect.Effect<void>)
        job.fiber = jobFiber
        jobFiber.addObserver(() => ended(job, jobFiber))
        if (job.pending !== undefined && running.get(job.row.id) === job) interruptRunning(job, job.pending)
      }
      return Effect.void
    })

  // Closing the executor's scope interrupts what still runs, and waits for it.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      for (const job of running.values()) interruptRunning(job, undefined)
      return awaitIdle
    })
  )

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
        return awaitIdle
      }),
    awaitIdle
  } satisfies Executor
}) as (config: ExecutorConfig) => Effect.Effect<Executor, never, Scope.Scope>
