/**
 * Scenario 6, resumable across languages: a job whose first attempt checkpoints River's
 * `ResumableStep` / `ResumableStepCursor` progress (an int64 cursor, a struct cursor) and fails
 * is resumed by effect-river's `Resumable.step` / `stepCursor` on its retry, and the reverse.
 * The resuming side skips the completed step, starts the cursor step at the saved cursor, and
 * finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type * as JobKind from "../../src/JobKind.ts"
import * as Json from "./utils/json.ts"
import { ResumableInt, ResumableStruct } from "./utils/kinds.ts"
import { Scenario, waitFor } from "./utils/harness.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_resumable")
})
afterAll(async () => {
  await s?.dispose()
})

const HOUR = 3_600_000

/** A value as JSON holds it (safe integers as numbers, larger ones as bigints): how metadata reads. */
const asJson = (value: unknown) => Json.parse(Json.stringify(value))

interface Case {
  readonly name: string
  readonly kind: JobKind.JobKind<{ readonly ids: ReadonlyArray<bigint>; readonly fail_at: bigint }, any>
  readonly ids: ReadonlyArray<bigint>
  /** The cursor after the first attempt (ids before `fail_at` processed), as each side holds it. */
  readonly cursor: (ids: ReadonlyArray<bigint>) => unknown
}

const intCase = (ids: ReadonlyArray<bigint>): Case => ({ name: "int64 cursor", kind: ResumableInt, ids, cursor: (done) => done.at(-1)! })
const structCase = (ids: ReadonlyArray<bigint>): Case => ({
  name: "struct cursor",
  kind: ResumableStruct,
  ids,
  cursor: (done) => ({ last_id: done.at(-1)!, count: done.length, token: `after-${done.at(-1)!}` })
})

/** River attempt 1 (checkpoints, fails at the third id), effect-river attempt 2 (resumes). */
const riverThenEffect = async (c: Case, prefix: string) => {
  const schema = await s.effectSchema(prefix)
  const river = await s.river(schema, `river-${prefix}`)
  await river.start({ id: `river-${prefix}`, queues: { default: 1 }, retry_delay_ms: HOUR })
  const args = { ids: c.ids, fail_at: c.ids[2]! }
  const { job } = await river.insert(c.kind.kind, args)
  const failed = await river.waitForRiverEvent("job_failed", job.id)
  await river.stop()
  const done = c.ids.slice(0, 2)
  expect(failed.metadata["river:resumable_step"]).toBe("prepare")
  expect(failed.metadata["river:resumable_cursor"]).toEqual({ process: asJson(c.cursor(done)) })

  const runner = await s.runner(schema, { id: `effect-${prefix}`, queues: { default: { maxWorkers: 1 } } })
  const read = await s.run(runner.client.get(job.id))
  expect(read.metadata["river:resumable_step"]).toBe("prepare")
  await s.run(runner.client.retry(job.id))
  const completed = await waitFor("effect-river completed attempt 2", async () => {
    const row = await s.run(runner.client.get(job.id))
    return row.state === "completed" ? row : undefined
  })
  expect(completed.attempt).toBe(2)
  const steps = runner.recorder.steps.filter((step) => step.id === job.id).map((step) => [step.step, step.value])
  expect(steps).toEqual([
    ["process:start", c.cursor(done)],
    ["process:item", c.ids[2]],
    ["process:item", c.ids[3]],
    ["finish", undefined]
  ])
  await runner.stop()
}

/** effect-river attempt 1 (checkpoints, fails at the third id), River attempt 2 (resumes). */
const effectThenRiver = async (c: Case, prefix: string) => {
  const schema = await s.effectSchema(prefix)
  const runner = await s.runner(schema, { id: `effect-${prefix}`, queues: { default: { maxWorkers: 1 } }, retryPolicy: () => "1 hour" })
  const { job } = await s.run(runner.client.insert(c.kind, { ids: c.ids, fail_at: c.ids[2]! }))
  await waitFor("effect-river failed attempt 1", async () => (await s.run(runner.client.get(job.id))).state === "retryable")
  await runner.stop()

  const river = await s.river(schema, `river-${prefix}`)
  const done = c.ids.slice(0, 2)
  const stored = (await river.get(job.id))!
  expect(stored.metadata["river:resumable_step"]).toBe("prepare")
  expect(stored.metadata["river:resumable_cursor"]).toEqual({ process: asJson(c.cursor(done)) })
  await river.start({ id: `river-${prefix}`, queues: { default: 1 } })
  await river.retry(job.id)
  const completed = await river.waitForRiverEvent("job_completed", job.id)
  expect(completed.attempt).toBe(2)
  const steps = river.events
    .filter((e) => e.event === "step" && e.id === job.id.toString())
    .map((e) => [e.step, e.value === null || e.value === undefined ? undefined : Json.parse(String(e.value))])
  expect(steps).toEqual([
    ["process:start", asJson(c.cursor(done))],
    ["process:item", asJson(c.ids[2])],
    ["process:item", asJson(c.ids[3])],
    ["finish", undefined]
  ])
}

const small = [10n, 20n, 30n, 40n]
const BIG = 9_007_199_254_740_993n // 2^53 + 1
const big = [BIG, BIG + 2n, BIG + 4n, BIG + 6n]

describe("River checkpoints, effect-river resumes", () => {
  it("int64 cursor", () => riverThenEffect(intCase(small), "go_int"))
  it("struct cursor", () => riverThenEffect(structCase(small), "go_struct"))
  it("int64 cursor beyond 2^53", () => riverThenEffect(intCase(big), "go_int_big"))
})

describe("effect-river checkpoints, River resumes", () => {
  it("int64 cursor", () => effectThenRiver(intCase(small), "ts_int"))
  it("struct cursor", () => effectThenRiver(structCase(small), "ts_struct"))
  it("int64 cursor beyond 2^53", () => effectThenRiver(intCase(big), "ts_int_big"))
})
