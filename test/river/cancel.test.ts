/**
 * Scenario 4, cancel across languages: River's `JobCancel` interrupts a job running in an
 * effect-river runner (its finalizers run, it ends `cancelled`), and effect-river's
 * `client.cancel` cancels the context of a job running in a River client (it ends
 * `cancelled`). Both go through River's `river_control` notification. Each direction is
 * repeated and its latency recorded (call → interruption seen inside the job, same machine
 * clock): printed, and written to test-artifacts/cancel-latency.json for docs/benchmarks.md.
 * The figures are reported, never asserted.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Behave, behave } from "./utils/kinds.ts"
import { nowMillis, Scenario, waitFor } from "./utils/harness.ts"

const ROUNDS = 15

let s: Scenario
const figures: Record<string, ReturnType<typeof summary>> = {}
beforeAll(async () => {
  s = await Scenario.create("river_cancel")
})
afterAll(async () => {
  await s?.dispose()
  if (Object.keys(figures).length > 0) {
    const dir = join(import.meta.dirname, "..", "..", "test-artifacts")
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "cancel-latency.json"), `${JSON.stringify({ rounds: ROUNDS, at: new Date().toISOString(), figures }, null, 2)}\n`)
  }
})

const summary = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2))
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), max: at(1), min: at(0) }
}

describe("cancel across languages", () => {
  it("River's JobCancel interrupts a job running in effect-river: finalizers run, the job ends cancelled", async () => {
    const schema = await s.effectSchema("go_cancels_ts")
    const runner = await s.runner(schema, { id: "effect-running", queues: { default: { maxWorkers: 2 } } })
    const river = await s.river(schema, "river-canceller")
    const latencies: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      const { job } = await s.run(runner.client.insert(Behave, behave("block")))
      await waitFor(`effect-river runs job ${job.id}`, () => runner.recorder.worksOf(job.id).length === 1)
      const { calledAtMillis, job: returned } = await river.cancel(job.id)
      expect(returned?.state).toBe("running") // marked; the runner running it interrupts it
      expect(returned?.metadata.cancel_attempted_at).toBeTypeOf("string")
      const interrupted = await waitFor("the job's fiber is interrupted", () => runner.recorder.interrupted.get(job.id))
      expect(runner.recorder.finalized.has(job.id)).toBe(true)
      latencies.push(interrupted.atMillis - calledAtMillis)
      const byRiver = await waitFor("River reads the job cancelled", async () => {
        const row = await river.get(job.id)
        return row?.state === "cancelled" ? row : undefined
      })
      expect(byRiver.attempt).toBe(1)
      expect(byRiver.finalizedAt).not.toBeNull()
      expect(byRiver.errors.map((e) => e.error)).toEqual(["JobCancelError: job cancelled remotely"])
    }
    figures["River JobCancel → effect-river job interrupted"] = summary(latencies)
    console.log(`OUTCOME cancel go→ts latency ms: ${JSON.stringify(summary(latencies))}`)
    await runner.stop()
  })

  it("effect-river's client.cancel cancels the context of a job running in River: it ends cancelled", async () => {
    const schema = await s.effectSchema("ts_cancels_go")
    const river = await s.river(schema, "river-running")
    await river.start({ id: "river-running", queues: { default: 2 } })
    const client = await s.client(schema)
    const latencies: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      const { job } = await s.run(client.insert(Behave, behave("block")))
      await river.waitForWork(job.id, 1)
      const from = river.events.length
      const calledAt = nowMillis()
      const marked = await s.run(client.cancel(job.id))
      expect(marked.state).toBe("running")
      const done = await river.waitForEvent(
        (e) => e.event === "ctx_done" && e.id === job.id.toString(),
        `River's context of job ${job.id} ends`,
        60_000,
        from
      )
      latencies.push(Number(BigInt(done.at_unix_ns as string) / 1000n) / 1000 - calledAt)
      const cancelled = await river.waitForRiverEvent("job_cancelled", job.id)
      expect(cancelled.state).toBe("cancelled")
      const byEffect = await s.run(client.get(job.id))
      expect(byEffect.state).toBe("cancelled")
      expect(byEffect.finalizedAt).not.toBeNull()
      expect(byEffect.errors).toHaveLength(1)
    }
    figures["effect-river client.cancel → River job context done"] = summary(latencies)
    console.log(`OUTCOME cancel ts→go latency ms: ${JSON.stringify(summary(latencies))}`)
  })

  it("a job cancelled while running and retried with effect-river's client.retry runs to completion (River's JobRetry clears the cancel request)", async () => {
    const schema = await s.effectSchema("retry_after_cancel_ts")
    // A fast cancel check: a stale cancel request on the retried job would interrupt it at once.
    const runner = await s.runner(schema, { id: "effect-retry", queues: { default: { maxWorkers: 2 } }, cancelCheckInterval: "100 millis" })
    const river = await s.river(schema, "river-retry-cancel")
    const { job } = await s.run(runner.client.insert(Behave, behave("block_then_sleep", "", 1_500)))
    await waitFor("effect-river runs attempt 1", () => runner.recorder.worksOf(job.id).length === 1)
    await river.cancel(job.id)
    await waitFor("the job is cancelled", async () => (await s.run(runner.client.get(job.id))).state === "cancelled")
    const retried = await s.run(runner.client.retry(job.id))
    expect(retried.state).toBe("available")
    expect(retried.metadata.cancel_attempted_at, "River's JobRetry clears cancel_attempted_at").toBeUndefined()
    const done = await waitFor("attempt 2 ends", async () => {
      const row = await s.run(runner.client.get(job.id))
      return row.attempt === 2 && ["completed", "cancelled"].includes(row.state) ? row : undefined
    })
    expect(done.state).toBe("completed")
    await runner.stop()
  })

  it("a job cancelled while running and retried with River's JobRetry runs to completion in effect-river", async () => {
    const schema = await s.effectSchema("retry_after_cancel_go")
    const runner = await s.runner(schema, { id: "effect-retried", queues: { default: { maxWorkers: 2 } }, cancelCheckInterval: "100 millis" })
    const river = await s.river(schema, "river-retrier")
    const { job } = await s.run(runner.client.insert(Behave, behave("block_then_sleep", "", 1_500)))
    await waitFor("effect-river runs attempt 1", () => runner.recorder.worksOf(job.id).length === 1)
    await s.run(runner.client.cancel(job.id))
    await waitFor("the job is cancelled", async () => (await s.run(runner.client.get(job.id))).state === "cancelled")
    const retried = (await river.retry(job.id))!
    expect(retried.state).toBe("available")
    expect(retried.metadata.cancel_attempted_at).toBeUndefined()
    const done = await waitFor("attempt 2 ends", async () => {
      const row = await s.run(runner.client.get(job.id))
      return row.attempt === 2 && ["completed", "cancelled"].includes(row.state) ? row : undefined
    })
    expect(done.state).toBe("completed")
    await runner.stop()
  })

  it("a River job cancelled by effect-river and retried by River runs to completion in River", async () => {
    const schema = await s.effectSchema("retry_after_cancel_river")
    const river = await s.river(schema, "river-retry-worker")
    await river.start({ id: "river-retry-worker", queues: { default: 2 } })
    const client = await s.client(schema)
    const { job } = await s.run(client.insert(Behave, behave("block_then_sleep", "", 1_500)))
    await river.waitForWork(job.id, 1)
    await s.run(client.cancel(job.id))
    await river.waitForRiverEvent("job_cancelled", job.id)
    const retried = (await river.retry(job.id))!
    expect(retried.metadata.cancel_attempted_at).toBeUndefined()
    const done = await river.waitForRiverEvent("job_completed", job.id)
    expect(done.attempt).toBe(2)
  })
})
