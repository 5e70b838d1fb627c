/**
 * The implementation of the public `Resumable` module, and the executor's side of it: one
 * attempt's progress (read from the job's metadata on first use, kept the way River's resumable
 * middleware keeps it), the per-job service the executor provides to every worker run, the
 * checkpoint written when an attempt fails and the check that a successful run reached the step
 * its checkpoint names. The public module (src/Resumable.ts) re-exports the steps, cursors and
 * commits; everything else here is the executor's.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import { DatabaseError, ResumableError } from "../Errors.ts"
import type { Driver } from "./driver/driver.ts"

/** River's metadata key for the last completed step. */
export const STEP_KEY = "river:resumable_step"

/** River's metadata key for the cursors of unfinished steps. */
export const CURSOR_KEY = "river:resumable_cursor"

interface CurrentStep {
  readonly name: string
  /** The cursor step's JSON codec, when it has a cursor. */
  readonly codec: Schema.Codec<any, any> | undefined
}

/**
 * Progress of the current attempt, kept the way River's resumable middleware keeps it, so both
 * write the same checkpoint for the same run.
 */
interface State {
  /** `river:resumable_step` at fetch: steps up to it are skipped. */
  readonly resumeStep: string | undefined
  seenResume: boolean
  /** Raw JSON cursors by step (the stored map, then this attempt's changes). */
  cursors: Record<string, unknown>
  /**
   * The last step completed (or the resume step once reached) and not yet written by a
   * transactional checkpoint: written as `river:resumable_step` when the attempt fails.
   */
  lastCompleted: string | undefined
  readonly names: Set<string>
  current: CurrentStep | undefined
  /** The cursor map changed since it was last stored (a cursor set, or a cursor step completed). */
  cursorsDirty: boolean
  /**
   * Cursor steps of cursor-only progress (a cursor stored with no step completed) not reached
   * yet: the attempt must reach each through `stepCursor` before it may succeed or checkpoint.
   */
  readonly pendingCursorSteps: Set<string>
}

/**
 * One attempt's progress and how to persist it.
 */
export interface Attempt {
  readonly jobId: bigint
  readonly state: Ref.Ref<State>
  /** Merges a metadata patch into the running job, on the current connection or transaction. */
  readonly persist: (patch: Record<string, unknown>) => Effect.Effect<void, ResumableError | DatabaseError>
}

/**
 * The per-job service the executor provides to every worker run. The checkpoint is read from
 * the job's metadata only when the worker first uses a step, so workers without steps pay
 * nothing for it.
 */
export class ResumableJob extends Context.Service<ResumableJob, {
  readonly jobId: bigint
  /** The attempt's progress, read from the job's metadata on first use. */
  readonly load: Effect.Effect<Attempt, ResumableError>
  /** The attempt's progress if a step has used it. */
  readonly loaded: () => Attempt | undefined
  /** Whether the job's metadata carries a checkpoint (`river:resumable_step` or `river:resumable_cursor`). */
  readonly hasCheckpoint: boolean
  /**
   * What `Worker.recordOutput` recorded in this attempt (see `output.ts`). It rides on this
   * service so that an attempt costs one context change, not one per per-attempt service.
   */
  readonly output: { recorded: boolean; value: unknown }
}>()("effect-river/ResumableJob") {}

const loadAttempt = (options: {
  readonly jobId: bigint
  /** The attempt running: a checkpoint is written only while the row is still at this attempt. */
  readonly attempt: number
  readonly metadata: Readonly<Record<string, unknown>>
  readonly driver: Driver
}): Effect.Effect<Attempt, ResumableError> =>
  Effect.gen(function*() {
    const rawStep = options.metadata[STEP_KEY]
    const rawCursors = options.metadata[CURSOR_KEY]
    if (rawStep !== undefined && rawStep !== null && typeof rawStep !== "string") {
      return yield* new ResumableError({ reason: "InvalidCheckpoint", detail: `${STEP_KEY} must be a string` })
    }
    if (
      rawCursors !== undefined && rawCursors !== null &&
      (typeof rawCursors !== "object" || Array.isArray(rawCursors))
    ) {
      return yield* new ResumableError({ reason: "InvalidCheckpoint", detail: `${CURSOR_KEY} must be an object` })
    }
    const cursors = { ...(rawCursors as Record<string, unknown> | null | undefined ?? {}) }
    const resumeStep = typeof rawStep === "string" && rawStep !== "" ? rawStep : undefined
    const state = yield* Ref.make<State>({
      resumeStep,
      seenResume: false,
      cursors,
      lastCompleted: undefined,
      names: new Set(),
      current: undefined,
      cursorsDirty: false,
      // Without a step marker, every stored cursor is unfinished work of a step not reached yet.
      pendingCursorSteps: new Set(resumeStep === undefined ? Object.keys(cursors) : [])
    })
    const { driver, jobId } = options
    return {
      jobId,
      state,
      persist: (patch) =>
        driver.jobMergeMetadataIfRunning({ id: jobId, attempt: options.attempt, metadata: patch }).pipe(
          Effect.mapError(DatabaseError.fromSqlError("Resumable checkpoint")),
          Effect.flatMap((merged) =>
            merged ? Effect.void : Effect.fail(
              new ResumableError({ reason: "JobNotRunning", detail: `job ${jobId} is no longer running attempt ${options.attempt}; checkpoint not written` })
            )
          )
        )
    } satisfies Attempt
  })

/**
 * The service for one attempt of a job (the executor's). Nothing is read until a step runs.
 */
export const make = (options: {
  readonly jobId: bigint
  /** The attempt running: a checkpoint is written only while the row is still at this attempt. */
  readonly attempt: number
  readonly metadata: Readonly<Record<string, unknown>>
  readonly driver: Driver
}): ResumableJob["Service"] => {
  let attempt: Attempt | undefined
  const load = Effect.suspend(() =>
    attempt !== undefined ? Effect.succeed(attempt) : Effect.tap(loadAttempt(options), (a) => Effect.sync(() => {
      attempt = a
    }))
  )
  const metadata: unknown = options.metadata
  const hasCheckpoint = typeof metadata === "object" && metadata !== null &&
    (Object.hasOwn(metadata, STEP_KEY) || Object.hasOwn(metadata, CURSOR_KEY))
  return ResumableJob.of({
    jobId: options.jobId,
    load,
    loaded: () => attempt,
    hasCheckpoint,
    output: { recorded: false, value: undefined }
  })
}

const currentJob: Effect.Effect<Attempt, ResumableError> = Effect.flatMap(
  Effect.serviceOption(ResumableJob),
  Option.match({
    onNone: () => Effect.fail(new ResumableError({ reason: "NotInJob", detail: "steps can only run inside a worker" })),
    onSome: (service) => service.load
  })
)

type Decision = { readonly run: false } | { readonly run: true; readonly cursor: Option.Option<unknown> }

/** Registers a step and decides whether it runs (River's skip rules). */
const begin = (job: Attempt, name: string, hasCursor: boolean) =>
  Effect.flatMap(Ref.get(job.state), (state): Effect.Effect<Decision, ResumableError> => {
    if (state.current !== undefined) {
      return Effect.fail(
        new ResumableError({ reason: "NestedStep", step: name, detail: `started inside step "${state.current.name}"` })
      )
    }
    if (state.names.has(name)) {
      return Effect.fail(new ResumableError({ reason: "DuplicateStep", step: name, detail: "used twice in one run" }))
    }
    state.names.add(name)
    if (state.pendingCursorSteps.has(name)) {
      if (!hasCursor) {
        return Effect.fail(
          new ResumableError({
            reason: "CursorStepPending",
            step: name,
            detail: "has a saved cursor, so it must run as a cursor step (stepCursor), not a plain step"
          })
        )
      }
      state.pendingCursorSteps.delete(name)
    }
    const saved = Object.hasOwn(state.cursors, name) ? Option.some(state.cursors[name]) : Option.none()
    if (state.resumeStep !== undefined && !state.seenResume) {
      if (name !== state.resumeStep) return Effect.succeed({ run: false }) // completed by an earlier attempt
      state.seenResume = true
      state.lastCompleted = name
      // The recorded step completed, unless it is a cursor step with a saved cursor: then it
      // resumes from that cursor.
      if (!(hasCursor && Option.isSome(saved))) return Effect.succeed({ run: false })
    }
    return Effect.succeed({ run: true, cursor: saved })
  })

const complete = (job: Attempt, name: string) =>
  Ref.update(job.state, (state) => {
    state.current = undefined
    state.lastCompleted = name
    if (Object.hasOwn(state.cursors, name)) {
      delete state.cursors[name]
      state.cursorsDirty = true
    }
    return state
  })

const leave = (job: Attempt) =>
  Ref.update(job.state, (state) => {
    state.current = undefined
    return state
  })

/**
 * Runs `effect` as the step `name`, unless an earlier attempt completed it.
 */
export const step = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<void, E | ResumableError, R> =>
  Effect.gen(function*() {
    const job = yield* currentJob
    const decision = yield* begin(job, name, false)
    if (!decision.run) return
    yield* Ref.update(job.state, (state) => {
      state.current = { name, codec: undefined }
      return state
    })
    yield* Effect.onError(effect, () => leave(job))
    yield* complete(job, name)
  })

/**
 * Runs a step that keeps a cursor: `f` gets the cursor saved by an earlier attempt (`None` on
 * the first run) and records progress with {@link setCursor} (or {@link commitCursor}). The
 * cursor is stored in its schema's canonical JSON form (`Schema.toCodecJson`), so scalars,
 * structs, dates and bigints round-trip exactly. A stored cursor that no longer decodes fails
 * the attempt with `InvalidCursor`.
 */
export const stepCursor = <C, CI, A, E, R>(
  name: string,
  cursor: Schema.Codec<C, CI, never, never>,
  f: (cursor: Option.Option<C>) => Effect.Effect<A, E, R>
): Effect.Effect<void, E | ResumableError, R> =>
  Effect.gen(function*() {
    const job = yield* currentJob
    const decision = yield* begin(job, name, true)
    if (!decision.run) return
    const codec = Schema.toCodecJson(cursor)
    let value = Option.none<C>()
    if (Option.isSome(decision.cursor)) {
      const decoded = Schema.decodeUnknownResult(codec)(decision.cursor.value)
      if (Result.isFailure(decoded)) {
        return yield* new ResumableError({
          reason: "InvalidCursor",
          step: name,
          detail: `the stored cursor no longer decodes: ${decoded.failure.message}`
        })
      }
      value = Option.some(decoded.success as C)
    }
    yield* Ref.update(job.state, (state) => {
      state.current = { name, codec }
      return state
    })
    yield* Effect.onError(f(value), () => leave(job))
    yield* complete(job, name)
  })

const encodeCursor = (step: CurrentStep, value: unknown) => {
  const encoded = Schema.encodeUnknownResult(step.codec!)(value)
  return Result.isFailure(encoded)
    ? Effect.fail(
      new ResumableError({ reason: "InvalidCursor", step: step.name, detail: `cursor does not encode: ${encoded.failure.message}` })
    )
    : Effect.succeed(encoded.success)
}

const currentCursorStep = (job: Attempt, operation: string) =>
  Effect.flatMap(Ref.get(job.state), (state) =>
    state.current?.codec === undefined
      ? Effect.fail(new ResumableError({ reason: "NotInStep", detail: `${operation} must be called inside stepCursor` }))
      : Effect.succeed(state.current))

/**
 * Records the current cursor step's progress in memory; it is written when the attempt fails
 * (or by a later {@link commitCursor} / {@link commitStep}).
 */
export const setCursor = <C>(value: C): Effect.Effect<void, ResumableError> =>
  Effect.gen(function*() {
    const job = yield* currentJob
    const current = yield* currentCursorStep(job, "setCursor")
    const encoded = yield* encodeCursor(current, value)
    yield* Ref.update(job.state, (state) => {
      state.cursors[current.name] = encoded
      state.cursorsDirty = true
      return state
    })
  })

/**
 * Writes the current cursor step's cursor now, as one statement on the current connection — in
 * your transaction when called inside `sql.withTransaction`, so your rows and the cursor commit
 * or roll back together. In-memory progress follows only once the transaction commits.
 */
export const commitCursor = <C>(value: C): Effect.Effect<void, ResumableError | DatabaseError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const job = yield* currentJob
    const current = yield* currentCursorStep(job, "commitCursor")
    const encoded = yield* encodeCursor(current, value)
    yield* persistCheckpoint(job, current, { ...(yield* Ref.get(job.state)).cursors, [current.name]: encoded })
  })

/**
 * Writes River's transactional checkpoint (`ResumableSetStepTx`): the current step as
 * `river:resumable_step` and the whole cursor map (or `null`), and, once the caller's transaction
 * commits, hands that progress to the database: only what happens after it is written again when
 * the attempt fails.
 */
const persistCheckpoint = (job: Attempt, current: CurrentStep, cursors: Record<string, unknown>) =>
  Effect.gen(function*() {
    const state = yield* Ref.get(job.state)
    if (state.pendingCursorSteps.size > 0) {
      const [pending] = state.pendingCursorSteps
      return yield* new ResumableError({
        reason: "CursorStepPending",
        step: pending!,
        detail: "has a saved cursor and must be reached before a checkpoint can be written"
      })
    }
    yield* job.persist({ [STEP_KEY]: current.name, [CURSOR_KEY]: Object.keys(cursors).length === 0 ? null : cursors })
    const sql = yield* SqlClient.SqlClient
    yield* sql.afterCommit(Ref.update(job.state, (s) => {
      s.lastCompleted = undefined
      s.cursors = { ...cursors }
      s.cursorsDirty = false
      return s
    }))
  })

/**
 * Writes a checkpoint at the current step now (River's `ResumableSetStepTx`), as one statement
 * on the current connection — in your transaction when called inside `sql.withTransaction`: once
 * that commits, a retry skips a plain step even if the process died right after, and resumes a
 * cursor step from the cursor set so far. In-memory progress follows only once the transaction
 * commits.
 */
export const commitStep: Effect.Effect<void, ResumableError | DatabaseError, SqlClient.SqlClient> = Effect.gen(function*() {
  const job = yield* currentJob
  const state = yield* Ref.get(job.state)
  const current = state.current
  if (current === undefined) {
    return yield* new ResumableError({ reason: "NotInStep", detail: "commitStep must be called inside a step" })
  }
  yield* persistCheckpoint(job, current, state.cursors)
})

/**
 * The metadata patch that saves an attempt's progress, or `undefined` when there is nothing to
 * save. Used by the executor for every outcome but success.
 */
export const checkpoint = (service: ResumableJob["Service"]): Effect.Effect<Record<string, unknown> | undefined> => {
  const job = service.loaded()
  if (job === undefined) return Effect.succeed(undefined)
  return Effect.map(Ref.get(job.state), (state) => {
    // A cursor-only checkpoint whose step was not reached stays as it is: advancing the step
    // marker now could make that step unreachable (River 0.50).
    if (state.pendingCursorSteps.size > 0) return undefined
    const rewritesStep = state.lastCompleted !== undefined && state.lastCompleted !== state.resumeStep
    if (!rewritesStep && !state.cursorsDirty) return undefined
    return {
      ...(state.lastCompleted === undefined ? {} : { [STEP_KEY]: state.lastCompleted }),
      ...(state.cursorsDirty ? { [CURSOR_KEY]: Object.keys(state.cursors).length > 0 ? state.cursors : null } : {})
    }
  })
}

/**
 * Fails a successful run when the job's checkpoint names a step this run never reached (renamed
 * or removed): the recorded step, or a step whose cursor was saved before any step completed.
 * The attempt fails naming the step instead of silently skipping everything (River does the
 * same, also for workers that run no step at all).
 */
export const verifyResumed = (service: ResumableJob["Service"]): Effect.Effect<void, ResumableError> => {
  const loaded = service.loaded()
  if (loaded === undefined && !service.hasCheckpoint) return Effect.void
  return Effect.gen(function*() {
    const job = loaded ?? (yield* service.load)
    const state = yield* Ref.get(job.state)
    const missing = state.resumeStep !== undefined && !state.seenResume
      ? state.resumeStep
      : [...state.pendingCursorSteps][0]
    if (missing === undefined) return
    return yield* new ResumableError({
      reason: "StepNotFound",
      step: missing,
      detail: `was recorded ${
        missing === state.resumeStep ? "as completed" : "with a saved cursor"
      } but is not a step of this worker (renamed or removed?); steps seen: ${[...state.names].join(", ") || "none"}`
    })
  })
}

/**
 * Insert metadata that starts a job after `step`, as if an earlier attempt had completed it
 * (River's "resume after step" test helper). Pass it as the insert's `metadata`.
 */
export const resumeAfter = (step: string): Record<string, unknown> => ({ [STEP_KEY]: step })

/**
 * Insert metadata that starts a job at `cursor` inside the cursor step `step` (River's "resume
 * at cursor"): earlier steps are skipped and `step` runs with the cursor.
 */
export const resumeAt = <C, CI>(step: string, schema: Schema.Codec<C, CI, never, never>, cursor: C): Record<string, unknown> => ({
  [STEP_KEY]: step,
  [CURSOR_KEY]: { [step]: Schema.encodeSync(Schema.toCodecJson(schema))(cursor) }
})
