/**
 * effect-river's twins of riverside's job kinds (interop/river/cmd/riverside/kinds.go): same
 * kind names and JSON shapes, fields in the Go structs' order. Workers report to a `Recorder`.
 */
import { Effect, Option, Schema } from "effect"
import * as JobKind from "../../../src/JobKind.ts"
import * as Resumable from "../../../src/Resumable.ts"
import * as Worker from "../../../src/Worker.ts"
import { JobCancel, JobSnooze } from "../../../src/Worker.ts"

/** A Go `int64` field: effect-river's `JobKind.Int64` (a bigint stored as a bare JSON number). */
export const Int64 = JobKind.Int64

export const Tricky = JobKind.make("interop_tricky", {
  args: Schema.Struct({
    big_id: Int64,
    small: Schema.Number,
    ratio: Schema.Number,
    at: Schema.Date,
    text: Schema.String,
    html: Schema.String,
    flag: Schema.Boolean,
    nested: Schema.Struct({
      name: Schema.String,
      inner: Schema.Struct({ depth: Schema.Number, values: Schema.Array(Int64) })
    }),
    tags: Schema.Array(Schema.String),
    counts: Schema.Record(Schema.String, Int64),
    optional: Schema.NullOr(Schema.String)
  })
})

export const Behave = JobKind.make("interop_behave", {
  args: Schema.Struct({ mode: Schema.String, message: Schema.String, snooze_ms: Schema.Number })
})

export const UniqueAll = JobKind.make("interop_unique_all", {
  args: Schema.Struct({
    customer: Schema.String,
    amount: Int64,
    note: Schema.String,
    nested: Schema.Struct({ zeta: Schema.String, alpha: Schema.Number }),
    labels: Schema.Record(Schema.String, Schema.String),
    items: Schema.Array(Schema.Number)
  })
})

export const UniqueKeys = JobKind.make("interop_unique_keys", {
  args: Schema.Struct({
    customer: Schema.String,
    note: Schema.String,
    address: Schema.Struct({ street: Schema.String, city: Schema.String }),
    meta: Schema.Struct({ region: Schema.String, tier: Schema.Number })
  })
})

export const Periodic = JobKind.make("interop_periodic", { args: Schema.Struct({ source: Schema.String }) })

const ResumableArgs = Schema.Struct({ ids: Schema.Array(Int64), fail_at: Int64 })
export const ResumableInt = JobKind.make("interop_resumable_int", { args: ResumableArgs })
export const ResumableStruct = JobKind.make("interop_resumable_struct", { args: ResumableArgs })
export const StructCursor = Schema.Struct({ last_id: Int64, count: Schema.Number, token: Schema.String })

/** What effect-river's workers saw. */
export interface Work {
  readonly id: bigint
  readonly kind: string
  readonly attempt: number
  readonly args: unknown
  readonly encodedArgs: unknown
  readonly metadata: Readonly<Record<string, unknown>>
  readonly atMillis: number
}

export interface Step {
  readonly id: bigint
  readonly attempt: number
  readonly step: string
  readonly value: unknown
}

/** Collects what effect-river's workers did, for the scenarios to await. */
export class Recorder {
  readonly works: Array<Work> = []
  readonly steps: Array<Step> = []
  /** Job id → when its fiber was interrupted (`onInterrupt`) and when its finalizer ran. */
  readonly interrupted = new Map<bigint, { readonly atMillis: number }>()
  readonly finalized = new Map<bigint, { readonly atMillis: number }>()

  work(job: Worker.Job<unknown>) {
    return Effect.sync(() => {
      this.works.push({
        id: job.id,
        kind: job.kind,
        attempt: job.attempt,
        args: job.args,
        encodedArgs: job.encodedArgs,
        metadata: job.metadata,
        atMillis: performance.timeOrigin + performance.now()
      })
    })
  }

  step(id: bigint, attempt: number, step: string, value?: unknown) {
    return Effect.sync(() => void this.steps.push({ id, attempt, step, value }))
  }

  worksOf(id: bigint): ReadonlyArray<Work> {
    return this.works.filter((w) => w.id === id)
  }
}

/** The effect-river workers of every kind, reporting to `recorder`. */
export const workers = (recorder: Recorder) => {
  const tricky = Worker.make(Tricky, (job) => recorder.work(job))
  const behave = Worker.make(Behave, (job) =>
    Effect.gen(function*() {
      yield* recorder.work(job)
      const { message, mode, snooze_ms } = job.args
      switch (mode) {
        case "complete":
          return
        case "fail":
          return yield* Effect.fail(new Error(message))
        case "fail_once":
          if (job.attempt === 1) return yield* Effect.fail(new Error(message))
          return
        case "snooze":
          return yield* JobSnooze.of(snooze_ms)
        case "snooze_once":
          if (job.metadata.snoozes === undefined) return yield* JobSnooze.of(snooze_ms)
          return
        case "cancel":
          return yield* JobCancel.of(message)
        case "panic":
          return yield* Effect.die(new Error(message))
        case "block_then_sleep":
          if (job.attempt > 1) return yield* Effect.sleep(snooze_ms)
          return yield* Effect.never
        case "block_once":
          if (job.attempt > 1) return
          return yield* Effect.never
        case "block":
          return yield* Effect.acquireRelease(
            Effect.void,
            () => Effect.sync(() => void recorder.finalized.set(job.id, { atMillis: performance.timeOrigin + performance.now() }))
          ).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() =>
              Effect.sync(() => void recorder.interrupted.set(job.id, { atMillis: performance.timeOrigin + performance.now() }))
            ),
            Effect.scoped
          )
        default:
          return yield* Effect.fail(new Error(`unknown mode ${mode}`))
      }
    }))
  const uniqueAll = Worker.make(UniqueAll, (job) => recorder.work(job))
  const uniqueKeys = Worker.make(UniqueKeys, (job) => recorder.work(job))
  const periodic = Worker.make(Periodic, (job) => recorder.work(job))
  const resumableInt = Worker.make(ResumableInt, (job) =>
    Effect.gen(function*() {
      yield* recorder.work(job)
      yield* Resumable.step("prepare", recorder.step(job.id, job.attempt, "prepare"))
      yield* Resumable.stepCursor("process", Int64, (cursor) =>
        Effect.gen(function*() {
          const after = Option.getOrElse(cursor, () => 0n)
          yield* recorder.step(job.id, job.attempt, "process:start", after)
          for (const id of job.args.ids) {
            if (id <= after) continue
            if (id === job.args.fail_at && job.attempt === 1) return yield* Effect.fail(new Error(`failing at ${id} on attempt 1`))
            yield* recorder.step(job.id, job.attempt, "process:item", id)
            yield* Resumable.setCursor(id)
          }
        }))
      yield* Resumable.step("finish", recorder.step(job.id, job.attempt, "finish"))
    }))
  const resumableStruct = Worker.make(ResumableStruct, (job) =>
    Effect.gen(function*() {
      yield* recorder.work(job)
      yield* Resumable.step("prepare", recorder.step(job.id, job.attempt, "prepare"))
      yield* Resumable.stepCursor("process", StructCursor, (cursor) =>
        Effect.gen(function*() {
          let current = Option.getOrElse(cursor, () => ({ last_id: 0n, count: 0, token: "" }))
          yield* recorder.step(job.id, job.attempt, "process:start", current)
          for (const id of job.args.ids) {
            if (id <= current.last_id) continue
            if (id === job.args.fail_at && job.attempt === 1) return yield* Effect.fail(new Error(`failing at ${id} on attempt 1`))
            yield* recorder.step(job.id, job.attempt, "process:item", id)
            current = { last_id: id, count: current.count + 1, token: `after-${id}` }
            yield* Resumable.setCursor(current)
          }
        }))
      yield* Resumable.step("finish", recorder.step(job.id, job.attempt, "finish"))
    }))
  return [tricky, behave, uniqueAll, uniqueKeys, periodic, resumableInt, resumableStruct] as const
}

/** Behave args with every field (Go writes all of them; the schema needs all of them). */
export const behave = (mode: string, message = "", snooze_ms = 0) => ({ mode, message, snooze_ms })
