/**
 * Resumable jobs: named steps and typed cursors whose progress survives a failed attempt, in
 * River's metadata format, so River and effect-river resume each other's jobs.
 *
 * - `step(name, effect)` runs `effect` unless an earlier attempt completed the step.
 * - `stepCursor(name, schema, (cursor) => effect)` runs with the last saved cursor (or none),
 *   and `setCursor(value)` records progress inside it.
 * - `commitStep` / `commitCursor(value)`, called inside your `sql.withTransaction`, write the
 *   checkpoint in that same transaction: your rows and the checkpoint commit or roll back
 *   together, and a crash after the commit loses nothing.
 *
 * Progress is kept in a `Ref` of a per-job service and written to the job's metadata when the
 * attempt fails in any way — error, defect, thrown exception, timeout, snooze, cancel or runner
 * stop (River loses it on panics) — and never on success. Storage keys: `river:resumable_step`
 * (last completed step) and `river:resumable_cursor` (`{ <step>: <cursor JSON> }`).
 *
 * @example
 * ```ts
 * const ImportWorker = Worker.make(Import, (job) =>
 *   Effect.gen(function*() {
 *     yield* Resumable.step("download", download(job.args.url))
 *     yield* Resumable.stepCursor("load", Schema.Number, (cursor) =>
 *       Effect.gen(function*() {
 *         for (const batch of batchesAfter(Option.getOrElse(cursor, () => 0))) {
 *           yield* sql.withTransaction(Effect.andThen(insertBatch(batch), Resumable.commitCursor(batch.lastId)))
 *         }
 *       }))
 *     yield* Resumable.step("notify", notify(job.args.owner))
 *   }))
 * ```
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as SqlClient from "effect/sql/SqlClient"
import type { DatabaseError, ResumableError } from "./Errors.ts"
import * as internal from "./internal/resumable.ts"

export {
  /**
   * A step was used wrongly, or a checkpoint cannot be used (defined in `Errors`).
   *
   * @since 0.1.0
   * @category errors
   */
  ResumableError
} from "./Errors.ts"

/**
 * River's metadata key for the last completed step.
 *
 * @since 0.1.0
 * @category constants
 */
export const STEP_KEY: "river:resumable_step" = internal.STEP_KEY

/**
 * River's metadata key for the cursors of unfinished steps.
 *
 * @since 0.1.0
 * @category constants
 */
export const CURSOR_KEY: "river:resumable_cursor" = internal.CURSOR_KEY

/**
 * Runs `effect` as the step `name`, unless an earlier attempt completed it.
 *
 * @since 0.1.0
 * @category operations
 */
export const step: <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<void, E | ResumableError, R> =
  internal.step

/**
 * Runs a step that keeps a cursor: `f` gets the cursor saved by an earlier attempt (`None` on
 * the first run) and records progress with {@link setCursor} (or {@link commitCursor}). The
 * cursor is stored in its schema's canonical JSON form (`Schema.toCodecJson`), so scalars,
 * structs, dates and bigints round-trip exactly. A stored cursor that no longer decodes fails
 * the attempt with `InvalidCursor`.
 *
 * @since 0.1.0
 * @category operations
 */
export const stepCursor: <C, CI, A, E, R>(
  name: string,
  cursor: Schema.Codec<C, CI, never, never>,
  f: (cursor: Option.Option<C>) => Effect.Effect<A, E, R>
) => Effect.Effect<void, E | ResumableError, R> = internal.stepCursor

/**
 * Records the current cursor step's progress in memory; it is written when the attempt fails
 * (or by a later {@link commitCursor} / {@link commitStep}).
 *
 * @since 0.1.0
 * @category operations
 */
export const setCursor: <C>(value: C) => Effect.Effect<void, ResumableError> = internal.setCursor

/**
 * Writes the current cursor step's cursor now, as one statement on the current connection — in
 * your transaction when called inside `sql.withTransaction`, so your rows and the cursor commit
 * or roll back together. In-memory progress follows only once the transaction commits.
 *
 * @since 0.1.0
 * @category operations
 */
export const commitCursor: <C>(value: C) => Effect.Effect<void, ResumableError | DatabaseError, SqlClient.SqlClient> =
  internal.commitCursor

/**
 * Writes a checkpoint at the current step now (River's `ResumableSetStepTx`), as one statement
 * on the current connection — in your transaction when called inside `sql.withTransaction`: once
 * that commits, a retry skips a plain step even if the process died right after, and resumes a
 * cursor step from the cursor set so far. In-memory progress follows only once the transaction
 * commits.
 *
 * @since 0.1.0
 * @category operations
 */
export const commitStep: Effect.Effect<void, ResumableError | DatabaseError, SqlClient.SqlClient> = internal.commitStep

/**
 * Insert metadata that starts a job after `step`, as if an earlier attempt had completed it
 * (River's "resume after step" test helper). Pass it as the insert's `metadata`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resumeAfter: (step: string) => Record<string, unknown> = internal.resumeAfter

/**
 * Insert metadata that starts a job at `cursor` inside the cursor step `step` (River's "resume
 * at cursor"): earlier steps are skipped and `step` runs with the cursor.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resumeAt: <C, CI>(step: string, schema: Schema.Codec<C, CI, never, never>, cursor: C) => Record<string, unknown> =
  internal.resumeAt
