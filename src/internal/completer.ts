/**
 * The batch completer: collects job outcomes and writes them with River's batched
 * "set state if still running" statement (`Driver.jobSetStateIfRunningMany`), plain successes
 * (the common case) with the lean completion of the same fence (`Driver.jobCompleteManyIfRunning`,
 * issue 16); a batch holding both sends both.
 *
 * - Outcomes are keyed by job id (a newer outcome for the same id replaces an older one).
 * - A flush happens at once when 100 are pending, otherwise `flushInterval` after the first
 *   pending outcome (50 ms by default; 0 flushes whenever anything is pending, which batches by
 *   itself under load and needs no timer — the testing setup uses it with `TestClock`).
 * - At most 5,000 jobs per statement; a statement that fails with a retryable database error is
 *   retried (1 s, 2 s, 4 s), and a batch that still fails is put back (newer outcomes win).
 * - What `jsonb` cannot store (`\u0000`, lone UTF-16 surrogates in an error text or metadata) is
 *   written as U+FFFD, as Go's `json.Marshal` does for invalid UTF-8.
 * - One row the database refuses (a data or constraint error: SQLSTATE class 22, 23, 54 or P0,
 *   or a parameter the driver cannot encode) never holds up the others: the batch is split in
 *   halves until the row is alone; it is then written without its metadata and with a readable
 *   error saying why, and if even that is refused it is dropped with an error log (the job stays
 *   `running` until the rescuer takes it). Nothing is retried forever.
 * - Backpressure: `enqueue` waits while 10,000 are pending, until fewer than 5,000 are.
 * - `close` flushes everything left (used at the end of a graceful stop), retrying a failing
 *   database for at most `closeTimeout` (5 s): a stop never waits on the database longer than
 *   that, and what is left is logged (those jobs stay `running` until the rescuer takes them).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import type { SqlError } from "effect/sql/SqlError"
import { describeCause } from "../Errors.ts"
import type { AnyJobEvent, JobEvent } from "../JobEvent.ts"
import type { JobRow } from "../Job.ts"
import type { Driver, JobCompleteParams, SetStateResult } from "./driver/driver.ts"
import { attemptError, type Completion } from "./outcome.ts"
import * as Telemetry from "./telemetry.ts"

export type { Completion } from "./outcome.ts"

/** How a completer writes and whom it tells. */
export interface CompleterOptions {
  readonly driver: Driver
  readonly flushInterval: Duration.Duration
  /**
   * Called once per written batch with the rows as written (jobs deleted meanwhile are missing),
   * each with whether its outcome applied, and the batch's outcomes, when `wantsRows` says so at
   * write time. Must not block.
   */
  readonly onCompleted: (
    rows: ReadonlyArray<SetStateResult>,
    batch: ReadonlyArray<Completion>,
    completedAt: number
  ) => Effect.Effect<void>
  /**
   * Whether the next batch's rows are wanted (default: always). When not, the statement returns
   * only ids and `onCompleted` is skipped — the runner without event subscribers.
   */
  readonly wantsRows?: () => boolean
  /**
   * Called after each batch is committed, with its outcomes (whether or not rows are read back)
   * and, per queue, how many jobs the write started in their place ({@link handoff}). Must not
   * fail or block for long (flow control uses it to say that slots are free).
   */
  readonly onWritten?:
    | ((batch: ReadonlyArray<Completion>, handedOver: ReadonlyMap<string, number>) => Effect.Effect<void>)
    | undefined
  /**
   * Flow control's slot hand-over: for a queue it returns a target for, the plain successes of
   * that queue are written with `Driver.jobCompleteManyAndStart`, which starts jobs of the queue
   * in the completed jobs' slots in the same commit; the target reserves local room for them
   * first and runs them once written.
   */
  readonly handoff?: ((queue: string) => HandoffTarget | undefined) | undefined
  /**
   * Outcomes written without waiting for `flushInterval` (flow control: a job of a globally limited
   * queue holds a slot of every runner until its outcome is committed).
   */
  readonly urgent?: ((completion: Completion) => boolean) | undefined
  readonly flushAt?: number
  readonly maxBatch?: number
  readonly backpressureAt?: number
  readonly resumeBelow?: number
  /**
   * How long `close` keeps trying to write what is pending while the database fails; what is
   * still pending then is given up (logged; the rescuer recovers those jobs). Default 5 s.
   */
  readonly closeTimeout?: Duration.Duration
  /** The clock of `close`'s deadline and retries (the runner passes the live one). Default: ambient. */
  readonly closeClock?: Clock.Clock
}

export interface Completer {
  readonly enqueue: (completion: Completion) => Effect.Effect<void>
  readonly pending: Effect.Effect<number>
  /** Flushes everything pending (retrying transient failures) and stops the flush loop. */
  readonly close: Effect.Effect<void>
}

const retrySchedule = Schedule.exponential("1 second", 2).pipe(Schedule.jittered, Schedule.upTo({ times: 3 }))

/** The SQLSTATE in an error's cause chain, if any. */
const sqlState = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * Whether a failed write may be caused by one row's values rather than by the statement or the
 * connection: data exceptions (22), integrity constraints (23), program limits such as an
 * oversized value (54), exceptions raised by triggers (P0), or no SQLSTATE at all (the driver
 * refused to encode a parameter). Such batches are split to find the row.
 */
export const isRowError = (error: SqlError): boolean => {
  if (error.isRetryable) return false
  const state = sqlState(error)
  return state === undefined || /^(?:22|23|54|P0)/.test(state)
}

const MAX_KEPT_ERROR = 2_000

/**
 * What is written for an outcome the database refused: the same state and times, no metadata,
 * and an error saying why (with the attempt's own error, shortened, if it had one).
 */
export const fallbackCompletion = (c: Completion, cause: unknown): Completion => {
  const own = c.error === undefined
    ? ""
    : `; the attempt's error was: ${
      c.error.error.length > MAX_KEPT_ERROR ? `${c.error.error.slice(0, MAX_KEPT_ERROR)}…` : c.error.error
    }`
  const error = attemptError(
    c.job,
    `effect-river: this attempt's outcome could not be stored as decided (${describeCause(cause)}); it was stored without its metadata${own}`
  )
  return { ...c, metadata: undefined, error: c.error === undefined ? error : { ...error, at: c.error.at } }
}

/**
 * An outcome the lean completion writes: a success with nothing but its state and time (no
 * metadata to merge, no error, attempt and schedule kept).
 */
export const isPlainSuccess = (c: Completion): boolean =>
  c.state === "completed" && c.finalizedAt !== undefined && c.metadata === undefined && c.error === undefined &&
  c.attempt === undefined && c.scheduledAt === undefined

export const make = Effect.fnUntraced(function*(options: CompleterOptions) {
  const { driver } = options
  const flushAt = options.flushAt ?? 100
  const maxBatch = options.maxBatch ?? 5_000
  const backpressureAt = options.backpressureAt ?? 10_000
  const resumeBelow = options.resumeBelow ?? 5_000
  const intervalMillis = Duration.toMillis(options.flushInterval)
  const closeTimeout = options.closeTimeout ?? Duration.seconds(5)

  let pending = new Map<bigint, Completion>()
  const wake = yield* Queue.sliding<void>(1)
  const full = yield* Queue.sliding<void>(1)
  const room = yield* Latch.make(true)
  let closed = false
  /** An urgent outcome is pending: the next flush does not wait for the interval. */
  let urgentPending = false
  const urgent = options.urgent

  const enqueue = (completion: Completion): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (pending.size >= backpressureAt) {
        room.closeUnsafe()
        return Effect.andThen(room.await, enqueue(completion))
      }
      pending.set(completion.id, completion)
      if (pending.size === 1) Queue.offerUnsafe(wake, undefined)
      if (pending.size === flushAt) Queue.offerUnsafe(full, undefined)
      if (urgent !== undefined && urgent(completion)) {
        urgentPending = true
        Queue.offerUnsafe(full, undefined)
      }
      return Effect.void
    })

  const wantsRows = options.wantsRows ?? (() => true)

  const handoff = options.handoff

  /**
   * Writes a batch: plain successes with the lean completion (`jobCompleteManyIfRunning`, the
   * common case) — those of a queue with a hand-over target with `jobCompleteManyAndStart`, whose
   * started jobs are delivered at once (a retry of the batch cannot start them again: their
   * completions no longer apply) — and every other outcome with River's statement. Returns the
   * rows as written when they are wanted, and how many jobs each queue's hand-over started.
   */
  const write = (batch: ReadonlyArray<Completion>) =>
    Effect.gen(function*() {
      const startedAt = yield* Clock.currentTimeMillis
      const rowsWanted = wantsRows()
      let plain: Array<JobCompleteParams> | undefined
      let other: Array<Completion> | undefined
      let handoffs: Map<string, { target: HandoffTarget; jobs: Array<JobCompleteParams> }> | undefined
      for (const c of batch) {
        if (!isPlainSuccess(c)) (other ??= []).push(c)
        else {
          const target = handoff?.(c.job.queue)
          if (target === undefined) (plain ??= []).push(c as JobCompleteParams)
          else {
            handoffs ??= new Map()
            let group = handoffs.get(c.job.queue)
            if (group === undefined) handoffs.set(c.job.queue, group = { target, jobs: [] })
            group.jobs.push(c as JobCompleteParams)
          }
        }
      }
      let rows: Array<SetStateResult> | undefined = rowsWanted ? [] : undefined
      const handedOver = new Map<string, number>()
      if (handoffs !== undefined) {
        for (const [queue, { jobs, target }] of handoffs) {
          const reserved = target.reserve(jobs.length)
          if (reserved === 0) {
            ;(plain ??= []).push(...jobs)
            continue
          }
          const now = yield* Clock.currentTimeMillis
          const done = yield* driver.jobCompleteManyAndStart({
            jobs,
            wantRows: rowsWanted,
            queue,
            max: reserved,
            limit: target.limit,
            now: new Date(now),
            clientId: target.clientId
          }).pipe(Effect.onError(() => target.deliver([], reserved, now)))
          yield* target.deliver(done.started, reserved, now)
          if (done.started.length > 0) handedOver.set(queue, done.started.length)
          if (rows !== undefined) for (const job of done.rows) rows.push({ job, applied: true })
        }
      }
      if (plain !== undefined) {
        const done = yield* driver.jobCompleteManyIfRunning({ jobs: plain, wantRows: rowsWanted })
        if (rows !== undefined) for (const job of done.rows) rows.push({ job, applied: true })
      }
      if (other !== undefined) {
        const now = new Date(yield* Clock.currentTimeMillis)
        if (rows === undefined) yield* driver.jobSetStateIfRunningManyIds({ jobs: other, now })
        else {
          const written = yield* driver.jobSetStateIfRunningMany({ jobs: other, now })
          rows = rows.length === 0 ? written as Array<SetStateResult> : rows.concat(written)
        }
      }
      yield* Telemetry.recordCompleterBatch(batch.length, (yield* Clock.currentTimeMillis) - startedAt)
      return { rows, handedOver }
    })

  const writeWithRetry = (batch: ReadonlyArray<Completion>) =>
    write(batch).pipe(
      Effect.retry({ schedule: retrySchedule, while: (e: SqlError) => e.isRetryable })
    )

  const onWritten = options.onWritten
  const report = (
    batch: ReadonlyArray<Completion>,
    written: { readonly rows: ReadonlyArray<SetStateResult> | undefined; readonly handedOver: ReadonlyMap<string, number> }
  ) => {
    const rows = written.rows
    const published = rows === undefined
      ? Effect.void
      : Effect.flatMap(Clock.currentTimeMillis, (completedAt) => options.onCompleted(rows, batch, completedAt))
    return onWritten === undefined ? published : Effect.andThen(published, onWritten(batch, written.handedOver))
  }

  /** Puts outcomes back unless a newer outcome for the same job arrived meanwhile. */
  const putBack = (batch: ReadonlyArray<Completion>) => {
    for (const c of batch) if (!pending.has(c.id)) pending.set(c.id, c)
  }

  /**
   * The last resort for one outcome the database refused: no metadata, a readable error. If that
   * is refused too, the outcome is dropped; if it fails for another reason (the connection), the
   * original outcome is put back for the next flush.
   */
  const writeFallback = (c: Completion, refused: SqlError): Effect.Effect<void, SqlError> =>
    Effect.gen(function*() {
      const fallback = fallbackCompletion(c, refused)
      const exit = yield* Effect.exit(writeWithRetry([fallback]))
      if (exit._tag === "Success") {
        yield* Effect.logWarning(
          `effect-river: the outcome of job ${c.id} could not be stored (${describeCause(refused)}); ` +
            "stored without its metadata, with an error saying why"
        )
        return yield* report([fallback], exit.value)
      }
      const error = Cause.findErrorOption(exit.cause)
      if (!(Option.isSome(error) && isRowError(error.value))) {
        putBack([c])
        return yield* Effect.failCause(exit.cause)
      }
      yield* Effect.logError(
        `effect-river: the outcome of job ${c.id} could not be stored, not even without its metadata; ` +
          "the job stays running until the rescuer takes it",
        Cause.pretty(exit.cause)
      )
    })

  /**
   * Writes one batch. A row-specific failure splits it (halves, down to the one row, which gets
   * {@link writeFallback}); any other failure puts the batch back and fails.
   */
  const flushBatch = (batch: ReadonlyArray<Completion>): Effect.Effect<void, SqlError> =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(writeWithRetry(batch))
      if (exit._tag === "Success") return yield* report(batch, exit.value)
      const error = Cause.findErrorOption(exit.cause)
      if (Option.isSome(error) && isRowError(error.value)) {
        if (batch.length === 1) return yield* writeFallback(batch[0]!, error.value)
        const middle = batch.length >> 1
        const rest = batch.slice(middle)
        const first = yield* Effect.exit(flushBatch(batch.slice(0, middle)))
        if (first._tag === "Failure") {
          putBack(rest)
          return yield* Effect.failCause(first.cause)
        }
        return yield* flushBatch(rest)
      }
      putBack(batch)
      if (!Cause.hasInterruptsOnly(exit.cause)) {
        yield* Effect.logWarning(`effect-river: completing ${batch.length} jobs failed; will retry`, Cause.pretty(exit.cause))
      }
      return yield* Effect.failCause(exit.cause)
    })

  /**
   * Writes everything pending, in batches of at most `maxBatch`. Interruptible: outcomes taken
   * out of `pending` and not written yet are put back when it is interrupted, or when a batch
   * fails (an outcome whose write was in flight may then be written twice, which changes nothing
   * the second time: the completion applies only while the row is still running the same attempt).
   */
  const flushAll = Effect.gen(function*() {
    while (pending.size > 0) {
      // Taking the outcomes and guarding them happen in one uninterruptible step; only the writes
      // can be interrupted, and whatever they did not write goes back.
      yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const all = [...pending.values()]
          pending = new Map()
          let start = 0
          const written = yield* Effect.exit(restore(Effect.gen(function*() {
            for (; start < all.length; start += maxBatch) yield* flushBatch(all.slice(start, start + maxBatch))
          })))
          if (written._tag === "Failure") {
            putBack(all.slice(start))
            return yield* Effect.failCause(written.cause)
          }
        })
      )
      if (pending.size < resumeBelow) room.openUnsafe()
    }
    room.openUnsafe()
  })

  const loop = Effect.gen(function*() {
    while (true) {
      yield* Queue.take(wake)
      if (pending.size === 0) continue
      if (intervalMillis > 0 && pending.size < flushAt && !urgentPending) {
        yield* Queue.poll(full)
        if (!urgentPending) yield* Effect.raceFirst(Effect.sleep(intervalMillis), Queue.take(full))
      }
      urgentPending = false
      yield* flushAll.pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.andThen(Effect.sleep("1 second"), Queue.offer(wake, undefined))
        )
      )
    }
  })

  const fiber = yield* Effect.forkScoped(loop)

  const close = Effect.gen(function*() {
    if (closed) return
    closed = true
    // Interrupting the loop puts back whatever it was writing.
    yield* Fiber.interrupt(fiber)
    // Final flush: keep trying transient failures until the deadline, then give up (bounded, so a
    // stop with the database down ends within softStopTimeout plus this deadline).
    const deadline = flushAll.pipe(Effect.retry(Schedule.spaced("1 second")), Effect.timeoutOption(closeTimeout))
    const flushed = yield* Effect.exit(
      options.closeClock === undefined ? deadline : Effect.provideService(deadline, Clock.Clock, options.closeClock)
    )
    if (flushed._tag === "Failure" || Option.isNone(flushed.value)) {
      yield* Effect.logError(
        `effect-river: ${pending.size} job outcomes could not be written at shutdown within ${
          Duration.format(closeTimeout)
        }; those jobs stay running until the rescuer recovers them`,
        flushed._tag === "Failure" ? Cause.pretty(flushed.cause) : "the database did not accept them in time"
      )
    }
  }).pipe(Effect.uninterruptible)

  return {
    enqueue,
    pending: Effect.sync(() => pending.size),
    close
  } satisfies Completer
})

/**
 * The runner's job events: a sliding hub per subscriber (a slow subscriber loses its oldest
 * events; the runner never waits for it), and whether anyone subscribes (the completer reads rows
 * back and builds events only then).
 */
export interface EventHub {
  /** Subscribes now to outcomes; the subscription ends with the scope. */
  readonly subscribe: Effect.Effect<PubSub.Subscription<JobEvent>, never, Scope.Scope>
  /** Subscribes now to starts and outcomes; the subscription ends with the scope. */
  readonly subscribeAll: Effect.Effect<PubSub.Subscription<AnyJobEvent>, never, Scope.Scope>
  /** Whether anyone wants the written rows now (subscribers or `awaitCompleted` waiters). */
  readonly wanted: () => boolean
  /** Publishes an attempt's start (to `subscribeAll` subscribers only). */
  readonly publishStarted: (row: JobRow) => Effect.Effect<void>
  /**
   * Watches for an outcome of the job written by this runner, from now on: `completed` resolves
   * when one is (the caller reads the row); `release` stops watching.
   */
  readonly watchCompletion: (id: bigint) => CompletionWatch
  /** Publishes one written batch's events. */
  readonly publish: (
    rows: ReadonlyArray<SetStateResult>,
    batch: ReadonlyArray<Completion>,
    completedAt: number
  ) => Effect.Effect<void>
}

/** Where jobs started by a completion's slot hand-over go (a producer). */
export interface HandoffTarget {
  readonly clientId: string
  /** The queue's global limit. */
  readonly limit: number
  /** Reserves room for at most `n` jobs (free workers not promised to a fetch); returns how many. */
  readonly reserve: (n: number) => number
  /** Runs the jobs a hand-over started (at most `reserved`) and gives the reservation back. */
  readonly deliver: (rows: ReadonlyArray<JobRow>, reserved: number, now: number) => Effect.Effect<void>
}

/** One `watchCompletion`. */
export interface CompletionWatch {
  readonly completed: Effect.Effect<void>
  readonly release: () => void
}

/**
 * The events of one written batch: one per outcome that applied, with its timings. The event
 * reports what the database kept: an outcome rewritten by a cancel requested during the attempt
 * (a retry, a snooze, an interrupted job) is a `cancelled` event (River 0.44, PR #1350); an
 * outcome that did not apply because the job had left `running` meanwhile (rescued and worked
 * elsewhere, finished by hand) publishes nothing (River 0.48, PR #1383).
 */
export const eventsOf = (
  rows: ReadonlyArray<SetStateResult>,
  batch: ReadonlyArray<Completion>,
  completedAt: number
): Array<JobEvent> => {
  const byId = new Map<bigint, Completion>()
  for (const completion of batch) byId.set(completion.id, completion)
  const out: Array<JobEvent> = []
  for (const { applied, job } of rows) {
    const completion = byId.get(job.id)
    if (completion === undefined || !applied) continue
    out.push({
      kind: job.state === "cancelled" ? "cancelled" : completion.kind,
      job,
      error: completion.error?.error,
      stats: {
        queueWait: Duration.millis(
          Math.max(0, (completion.job.attemptedAt?.getTime() ?? completion.startedAt) - completion.job.scheduledAt.getTime())
        ),
        run: Duration.millis(Math.max(0, completion.finishedAt - completion.startedAt)),
        complete: Duration.millis(Math.max(0, completedAt - completion.finishedAt))
      }
    })
  }
  return out
}

/** An event hub keeping `buffer` events per subscriber. */
export const makeEventHub = (buffer: number): Effect.Effect<EventHub> =>
  Effect.gen(function*() {
    const outcomes = yield* PubSub.sliding<JobEvent>(buffer)
    const all = yield* PubSub.sliding<AnyJobEvent>(buffer)
    let subscribers = 0
    let allSubscribers = 0
    const waiters = new Map<bigint, Set<Deferred.Deferred<void>>>()
    const counted = <A>(hub: PubSub.PubSub<A>, add: (n: number) => void) =>
      Effect.acquireRelease(Effect.sync(() => add(1)), () => Effect.sync(() => add(-1))).pipe(
        Effect.andThen(PubSub.subscribe(hub))
      )
    const wake = (rows: ReadonlyArray<SetStateResult>) => {
      for (const { applied, job } of rows) {
        if (!applied) continue
        const set = waiters.get(job.id)
        if (set === undefined) continue
        waiters.delete(job.id)
        for (const d of set) Deferred.doneUnsafe(d, Effect.void)
      }
    }
    return {
      subscribe: counted(outcomes, (n) => void (subscribers += n)),
      subscribeAll: counted(all, (n) => void (allSubscribers += n)),
      wanted: () => subscribers > 0 || allSubscribers > 0 || waiters.size > 0,
      publishStarted: (row) =>
        allSubscribers === 0 ? Effect.void : Effect.asVoid(PubSub.publish(all, { kind: "started", job: row })),
      watchCompletion: (id) => {
        const d = Deferred.makeUnsafe<void>()
        let set = waiters.get(id)
        if (set === undefined) waiters.set(id, set = new Set())
        set.add(d)
        return {
          completed: Deferred.await(d),
          release: () => {
            const current = waiters.get(id)
            if (current === undefined) return
            current.delete(d)
            if (current.size === 0) waiters.delete(id)
          }
        }
      },
      publish: (rows, batch, completedAt) => {
        if (waiters.size > 0) wake(rows)
        if (subscribers === 0 && allSubscribers === 0) return Effect.void
        const events = eventsOf(rows, batch, completedAt)
        return Effect.andThen(
          subscribers === 0 ? Effect.void : PubSub.publishAll(outcomes, events),
          allSubscribers === 0 ? Effect.void : PubSub.publishAll(all, events)
        ).pipe(Effect.asVoid)
      }
    } satisfies EventHub
  })
