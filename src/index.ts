/**
 * effect-river: River's PostgreSQL job queue as an Effect v4 runtime.
 *
 * Each module is exported as a namespace: `import { Client, JobKind } from "effect-river"`.
 * Each module's implementation is in `src/internal/` under the same name (camelCase); where every
 * behaviour lives, and how a job, a cancel and a checkpoint travel: docs/architecture.md.
 *
 * @since 0.1.0
 */

/**
 * Insert and manage jobs.
 *
 * @since 0.1.0
 */
export * as Client from "./Client.ts"

/**
 * Typed errors.
 *
 * @since 0.1.0
 */
export * as Errors from "./Errors.ts"

/**
 * Insert options, their rules and precedence.
 *
 * @since 0.1.0
 */
export * as InsertOptions from "./InsertOptions.ts"

/**
 * Job rows and states.
 *
 * @since 0.1.0
 */
export * as Job from "./Job.ts"

/**
 * Job kinds: name, args schema, default options.
 *
 * @since 0.1.0
 */
export * as JobKind from "./JobKind.ts"

/**
 * River's schema migrations (line `main`, versions 1–8).
 *
 * @since 0.1.0
 */
export * as Migrator from "./Migrator.ts"

/**
 * Job outcome events.
 *
 * @since 0.1.0
 */
export * as JobEvent from "./JobEvent.ts"

/**
 * The runner: producers, executor, completer, scheduler.
 *
 * @since 0.1.0
 */
export * as Runner from "./Runner.ts"

/**
 * Workers, and the `JobCancel` / `JobSnooze` failures.
 *
 * @since 0.1.0
 */
export * as Worker from "./Worker.ts"

/**
 * The two failures a worker returns to steer its job: cancel for good, or run again later.
 *
 * @since 0.1.0
 */
export { JobCancel, JobSnooze } from "./Worker.ts"

/**
 * Resumable jobs: steps, typed cursors and transactional checkpoints.
 *
 * @since 0.1.0
 */
export * as Resumable from "./Resumable.ts"

/**
 * Testing kit: work one job in a rolled-back transaction, assert inserted jobs, run a runner
 * under TestClock, isolate database state.
 *
 * @since 0.1.0
 */
export * as Testing from "./Testing.ts"

/**
 * Periodic jobs: inserted by the leader on an interval or a cron schedule.
 *
 * @since 0.1.0
 */
export * as PeriodicJob from "./PeriodicJob.ts"
