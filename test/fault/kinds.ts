/**
 * Job kinds of the fault suite, shared by the parent (inserts) and the runner processes (work).
 * Every worker records each execution in `<schema>.fault_executions` so the parent can count how
 * many times each handler ran.
 */
import { Schema } from "effect"
import * as JobKind from "../../src/JobKind.ts"

/** Does nothing but record its execution. */
export const Noop = JobKind.make("fault_noop", { args: Schema.Struct({ n: Schema.Int }) })

/** Records its execution, then sleeps `ms`. */
export const Sleep = JobKind.make("fault_sleep", { args: Schema.Struct({ n: Schema.Int, ms: Schema.Int }) })

/**
 * Two resumable steps. `first` inserts its execution row and commits the step in one transaction;
 * `second` sleeps for a minute on attempt 1 (the runner is killed there), finishes at once after.
 */
export const TwoSteps = JobKind.make("fault_two_steps", { args: Schema.Struct({ label: Schema.String }) })

/**
 * Flow control's kind: records its start and end in `<schema>.flow_log` (autocommit, the
 * database's clock) around a sleep of `ms`.
 */
export const Flow = JobKind.make("flow_job", { args: Schema.Struct({ customer: Schema.String, n: Schema.Int, ms: Schema.Int }) })

export const flowLogDdl = (schema: string) =>
  `CREATE TABLE IF NOT EXISTS ${schema}.flow_log (
    job_id bigint NOT NULL,
    attempt int NOT NULL,
    runner_id text NOT NULL,
    customer text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamptz
  )`

export const executionsDdl = (schema: string) =>
  `CREATE TABLE IF NOT EXISTS ${schema}.fault_executions (
    job_id bigint NOT NULL,
    runner_id text NOT NULL,
    step text NOT NULL DEFAULT 'run',
    attempt int NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`

/** Settings handed to a runner process (JSON in argv[2]). */
export interface RunnerConfig {
  readonly url: string
  readonly schema: string
  readonly id: string
  readonly maxWorkers: number
  readonly maxConnections: number
  /** Durations in milliseconds. */
  readonly jobTimeout: number
  readonly rescueStuckJobsAfter: number
  readonly rescuerInterval: number
  readonly schedulerInterval: number
  readonly fetchPollInterval: number
  readonly softStopTimeout: number
  readonly leadership: { readonly ttl: number; readonly electInterval: number; readonly renewInterval: number }
  /** Timeout of the two-step worker (its rescue waits for it). */
  readonly stepsTimeout: number
  /** Flow-control limits of queue `default` (rate `per` in milliseconds). */
  readonly limits?: {
    readonly globalLimit?: number
    readonly partition?: { readonly byKind?: boolean; readonly byArgs?: ReadonlyArray<string> }
    readonly rateLimit?: { readonly limit: number; readonly per: number }
  }
}

export type ChildMessage =
  | { readonly type: "ready"; readonly id: string; readonly pid: number }
  | { readonly type: "error"; readonly message: string }
