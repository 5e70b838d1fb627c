/**
 * Scenario 3, outcomes read by the other side: a job failed, discarded, snoozed, cancelled from
 * inside or panicked by one side is read by the other's `JobGet` / `client.get` with the same
 * state, attempt, `errors` elements and metadata; a job that failed on one side is retried and
 * finished by the other, which sees the first side's errors. (Rescued jobs: leader.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { JobRow } from "../../src/Job.ts"
import { Behave, behave } from "./utils/kinds.ts"
import { Scenario, waitFor } from "./utils/harness.ts"
import type { RiverJob } from "./utils/riverside.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_outcomes")
})
afterAll(async () => {
  await s?.dispose()
})

/** What both sides must agree on, from effect-river's row. */
const viewOfEffect = (row: JobRow) => ({
  state: row.state,
  attempt: row.attempt,
  maxAttempts: row.maxAttempts,
  finalized: row.finalizedAt === null ? null : row.finalizedAt.getTime(),
  scheduledAt: row.scheduledAt.getTime(),
  errors: row.errors.map((e) => ({ at: new Date(e.at).getTime(), attempt: e.attempt, error: e.error, trace: e.trace })),
  metadata: row.metadata
})

/** The same, from River's row. */
const viewOfRiver = (job: RiverJob) => ({
  state: job.state,
  attempt: job.attempt,
  maxAttempts: job.maxAttempts,
  finalized: job.finalizedAt === null ? null : job.finalizedAt.getTime(),
  scheduledAt: job.scheduledAt.getTime(),
  errors: job.errors.map((e) => ({ at: e.at.getTime(), attempt: e.attempt, error: e.error, trace: e.trace })),
  metadata: job.metadata
})

const HOUR = 3_600_000

const cases = [
  { name: "failed", mode: "fail", maxAttempts: 5, state: "retryable", attempt: 1, errors: 1 },
  { name: "discarded", mode: "fail", maxAttempts: 1, state: "discarded", attempt: 1, errors: 1 },
  { name: "snoozed", mode: "snooze", maxAttempts: 5, state: "scheduled", attempt: 0, errors: 0 },
  { name: "cancelled from inside", mode: "cancel", maxAttempts: 5, state: "cancelled", attempt: 1, errors: 1 },
  { name: "panicked", mode: "panic", maxAttempts: 5, state: "retryable", attempt: 1, errors: 1 }
] as const

describe("outcomes of River's workers, read by effect-river", () => {
  it("failed, discarded, snoozed, cancelled from inside, panicked: the same row on both sides", async () => {
    const schema = await s.effectSchema("river_outcomes")
    const river = await s.river(schema, "river-outcomes")
    await river.start({ id: "river-outcomes", queues: { default: 5 }, retry_delay_ms: HOUR })
    const client = await s.client(schema)
    for (const c of cases) {
      const { job } = await river.insert("interop_behave", behave(c.mode, `go ${c.name}`, HOUR), { max_attempts: c.maxAttempts })
      const eventKind = c.mode === "snooze" ? "job_snoozed" : c.mode === "cancel" ? "job_cancelled" : "job_failed"
      await river.waitForRiverEvent(eventKind, job.id)
      const byRiver = (await river.get(job.id))!
      const byEffect = await s.run(client.get(job.id))
      expect(viewOfEffect(byEffect), c.name).toEqual(viewOfRiver(byRiver))
      expect(byEffect.state, c.name).toBe(c.state)
      expect(byEffect.attempt, c.name).toBe(c.attempt)
      expect(byEffect.errors, c.name).toHaveLength(c.errors)
      if (c.mode === "snooze") expect(byEffect.metadata.snoozes).toBe(1)
      if (c.mode === "panic") expect(byEffect.errors[0]!.trace).not.toBe("")
      if (c.errors > 0) expect(byEffect.errors[0]!.error).toContain(`go ${c.name}`)
      expect(byEffect.finalizedAt === null, c.name).toBe(!["discarded", "cancelled"].includes(c.state))
    }
  })
})

describe("outcomes of effect-river's workers, read by River", () => {
  it("failed, discarded, snoozed, cancelled from inside, panicked: the same row on both sides", async () => {
    const schema = await s.effectSchema("effect_outcomes")
    const runner = await s.runner(schema, {
      id: "effect-outcomes",
      queues: { default: { maxWorkers: 5 } },
      retryPolicy: () => "1 hour"
    })
    const river = await s.river(schema, "river-reader")
    for (const c of cases) {
      const { job } = await s.run(
        runner.client.insert(Behave, behave(c.mode, `ts ${c.name}`, HOUR), { maxAttempts: c.maxAttempts })
      )
      const byEffect = await waitFor(`effect-river finished the ${c.name} attempt`, async () => {
        const row = await s.run(runner.client.get(job.id))
        return row.state === c.state ? row : undefined
      })
      const byRiver = (await river.get(job.id))!
      expect(viewOfRiver(byRiver), c.name).toEqual(viewOfEffect(byEffect))
      expect(byRiver.attempt, c.name).toBe(c.attempt)
      expect(byRiver.errors, c.name).toHaveLength(c.errors)
      if (c.mode === "snooze") expect(byRiver.metadata.snoozes).toBe(1)
      if (c.mode === "panic") expect(byRiver.errors[0]!.trace).not.toBe("")
      if (c.errors > 0) expect(byRiver.errors[0]!.error).toContain(`ts ${c.name}`)
      expect(byRiver.finalizedAt === null, c.name).toBe(!["discarded", "cancelled"].includes(c.state))
    }
    await runner.stop()
  })

  it("the error text of a cancel from inside is River's on both sides", async () => {
    const schema = await s.effectSchema("error_texts")
    const river = await s.river(schema, "river-texts")
    await river.start({ id: "river-texts", queues: { default: 2 }, retry_delay_ms: HOUR })
    const { job: goJob } = await river.insert("interop_behave", behave("cancel", "same words"), { queue: "default" })
    await river.waitForRiverEvent("job_cancelled", goJob.id)
    await river.stop()
    const runner = await s.runner(schema, { id: "effect-texts", queues: { default: { maxWorkers: 2 } } })
    const { job: tsJob } = await s.run(runner.client.insert(Behave, behave("cancel", "same words")))
    const cancelled = await waitFor("effect-river cancelled its job", async () => {
      const row = await s.run(runner.client.get(tsJob.id))
      return row.state === "cancelled" ? row : undefined
    })
    const goRow = (await river.get(goJob.id))!
    expect(cancelled.errors[0]!.error).toBe(goRow.errors[0]!.error)
    await runner.stop()
  })
})

describe("a job failed by one side is finished by the other", () => {
  it("River fails attempt 1, effect-river retries it and completes attempt 2, keeping River's error", async () => {
    const schema = await s.effectSchema("river_then_effect")
    const river = await s.river(schema, "river-first")
    await river.start({ id: "river-first", queues: { default: 2 }, retry_delay_ms: HOUR })
    const { job } = await river.insert("interop_behave", behave("fail_once", "go attempt 1 failed"))
    await river.waitForRiverEvent("job_failed", job.id)
    await river.stop()
    const runner = await s.runner(schema, { id: "effect-second", queues: { default: { maxWorkers: 2 } } })
    const retried = await s.run(runner.client.retry(job.id))
    expect(retried.state).toBe("available")
    const done = await waitFor("effect-river completed attempt 2", async () => {
      const row = await s.run(runner.client.get(job.id))
      return row.state === "completed" ? row : undefined
    })
    expect(done.attempt).toBe(2)
    expect(done.attemptedBy).toEqual(["river-first", "effect-second"])
    expect(done.errors.map((e) => [e.attempt, e.error])).toEqual([[1, "go attempt 1 failed"]])
    expect(runner.recorder.worksOf(job.id).map((w) => w.attempt)).toEqual([2])
    await runner.stop()
  })

  it("effect-river fails attempt 1, River retries it (JobRetry) and completes attempt 2, keeping effect-river's error", async () => {
    const schema = await s.effectSchema("effect_then_river")
    const runner = await s.runner(schema, {
      id: "effect-first",
      queues: { default: { maxWorkers: 2 } },
      retryPolicy: () => "1 hour"
    })
    const { job } = await s.run(runner.client.insert(Behave, behave("fail_once", "ts attempt 1 failed")))
    await waitFor("effect-river failed attempt 1", async () => (await s.run(runner.client.get(job.id))).state === "retryable")
    await runner.stop()
    const river = await s.river(schema, "river-second")
    await river.start({ id: "river-second", queues: { default: 2 } })
    expect((await river.retry(job.id))?.state).toBe("available")
    const done = await river.waitForRiverEvent("job_completed", job.id)
    expect(done.attempt).toBe(2)
    expect(done.attemptedBy).toEqual(["effect-first", "river-second"])
    expect(done.errors.map((e) => e.attempt)).toEqual([1])
    expect(done.errors[0]!.error).toContain("ts attempt 1 failed")
  })
})
