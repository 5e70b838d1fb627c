/**
 * Scenario 7, one leader for both: River clients and effect-river runners on one schema elect
 * exactly one leader through `river_leader`; resigning (a graceful stop) hands leadership to
 * the other language at once, without waiting for the TTL; and the leader's maintenance serves
 * both: its scheduler promotes the other side's scheduled and retryable jobs, its rescuer
 * rescues the other side's stuck jobs (a process killed mid-job), its cleaner deletes the other
 * side's finished jobs. The rescued jobs are read by the other side (scenario 3's "rescued").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Behave, behave } from "./utils/kinds.ts"
import { forkEffectRunner, Scenario, waitFor } from "./utils/harness.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_leader")
})
afterAll(async () => {
  await s?.dispose()
})

interface LeaderRow {
  readonly leader_id: string
  readonly elected_at: Date
  readonly expires_at: Date
}

const leaders = (schema: string) =>
  s.q<LeaderRow>(`SELECT leader_id, elected_at, expires_at FROM "${schema}".river_leader`)

const leaderIs = (schema: string, id: string, timeoutMs = 60_000) =>
  waitFor(`${id} leads ${schema}`, async () => {
    const rows = await leaders(schema)
    return rows.length === 1 && rows[0]!.leader_id === id ? rows[0]! : undefined
  }, timeoutMs)

/** The schema's jobs and leader, for failure messages. */
const diagnose = async (schema: string) => {
  const jobs = await s.q<{ id: bigint; state: string; attempt: number; scheduled_at: Date; attempted_by: Array<string> | null }>(
    `SELECT id, state::text AS state, attempt, scheduled_at, attempted_by FROM "${schema}".river_job ORDER BY id`
  )
  const now = await s.q<{ now: Date }>("SELECT now() AS now")
  return JSON.stringify({ now: now[0]!.now, leaders: await leaders(schema), jobs }, (_k, v) => (typeof v === "bigint" ? v.toString() : v))
}

/** `waitFor`, with the schema's jobs and leader in the error. */
const waitWithDiagnosis = async <A>(schema: string, label: string, check: () => Promise<A | undefined | false>, timeoutMs = 60_000) => {
  try {
    return await waitFor(label, check, timeoutMs)
  } catch (error) {
    throw new Error(`${String(error)}\n${await diagnose(schema)}`)
  }
}

const state = (schema: string, id: bigint) =>
  s.q<{ state: string }>(`SELECT state::text AS state FROM "${schema}".river_job WHERE id = $1`, [id]).then((r) => r[0]?.state)

describe("one leader for both", { timeout: 240_000 }, () => {
  it("exactly one leader; a resignation hands over to the other language, both ways, before the TTL", async () => {
    const schema = await s.effectSchema("election")
    // Long TTLs: a handover before the old term expires can only come from the resignation.
    const leadership = { ttl: "60 seconds", electInterval: "1 second", renewInterval: "5 seconds" } as const
    const first = await s.runner(schema, { id: "effect-1", queues: { default: { maxWorkers: 1 } }, leadership })
    const firstTerm = await leaderIs(schema, "effect-1")
    expect(await s.run(first.runner.isLeader)).toBe(true)

    const river = await s.river(schema, "river-elector")
    await river.start({ id: "river-1", queues: { default: 1 } })
    // River is a candidate now; effect-river keeps leading (one row, one leader).
    const both = await leaders(schema)
    expect(both.map((r) => r.leader_id)).toEqual(["effect-1"])

    await first.stop() // resigns: River takes over
    const riverTerm = await leaderIs(schema, "river-1", 30_000)
    expect(riverTerm.elected_at.getTime()).toBeLessThan(firstTerm.expires_at.getTime())

    const second = await s.runner(schema, { id: "effect-2", queues: { default: { maxWorkers: 1 } }, leadership })
    expect(await s.run(second.runner.isLeader)).toBe(false)
    expect((await leaders(schema)).map((r) => r.leader_id)).toEqual(["river-1"])
    const riverExpiry = (await leaders(schema))[0]!.expires_at
    await river.stop() // River resigns: effect-river takes over
    const secondTerm = await leaderIs(schema, "effect-2", 30_000)
    expect(secondTerm.elected_at.getTime()).toBeLessThan(riverExpiry.getTime())
    await waitFor("effect-2 knows it leads", () => s.run(second.runner.isLeader))
    await second.stop()
  })

  it("River leads: its scheduler, rescuer and cleaner serve effect-river's jobs", async () => {
    const schema = await s.effectSchema("river_maintains")
    // An effect-river runner process works two jobs, then dies: one discarded, one stuck running.
    const doomed = await forkEffectRunner({
      schema,
      id: "effect-doomed",
      queues: { default: 2 },
      leadership: { ttlMillis: 3_000, electIntervalMillis: 500, renewIntervalMillis: 1_000 }
    }, s.url)
    const client = await s.client(schema)
    const done = (await s.run(client.insert(Behave, behave("fail", "discarded at once"), { maxAttempts: 1 }))).job
    const stuck = (await s.run(client.insert(Behave, behave("block_once")))).job
    await waitFor("effect-river discarded one job and runs the other", async () =>
      (await state(schema, done.id)) === "discarded" && (await state(schema, stuck.id)) === "running")
    await doomed.kill()

    // River starts after the crash: it leads once the dead runner's term expires, and its
    // rescuer and cleaner run as soon as it leads.
    const river = await s.river(schema, "river-maintainer")
    await river.start({
      id: "river-leader",
      queues: { river_only: 1 },
      job_timeout_ms: 1_000,
      rescue_stuck_jobs_after_ms: 2_000,
      retry_delay_ms: 300,
      // Discarded jobs only: completed ones stay, so the scenario can read them.
      discarded_retention_ms: 1_000
    })
    await leaderIs(schema, "river-leader")
    const worker = await s.runner(schema, { id: "effect-worker", queues: { default: { maxWorkers: 4 } } })
    expect(await s.run(worker.runner.isLeader)).toBe(false)

    // Scheduler: a scheduled job and a retry of effect-river's become available through River.
    const scheduled = (await s.run(worker.client.insert(Behave, behave("complete"), { scheduledAt: new Date(Date.now() + 1_000) }))).job
    expect(scheduled.state).toBe("scheduled")
    const retried = (await s.run(worker.client.insert(Behave, behave("fail_once", "first attempt fails")))).job

    // Rescuer: the dead runner's stuck job is rescued by River and finished by effect-river.
    const rescued = await waitWithDiagnosis(schema, "the stuck job is rescued by River and completed by effect-river", async () => {
      const row = await s.run(worker.client.get(stuck.id))
      return row.state === "completed" ? row : undefined
    }, 120_000)
    expect(rescued.attempt).toBe(2)
    expect(rescued.errors.map((e) => [e.attempt, e.error])).toEqual([[1, "Stuck job rescued by JobRescuer"]])
    expect(rescued.metadata["river:rescue_count"]).toBe(1)
    expect(rescued.attemptedBy).toEqual(["effect-doomed", "effect-worker"])
    expect((await river.get(stuck.id))?.errors.map((e) => e.error)).toEqual(["Stuck job rescued by JobRescuer"])

    for (const job of [scheduled, retried]) {
      await waitWithDiagnosis(schema, `job ${job.id} completed through River's scheduler`, async () => (await state(schema, job.id)) === "completed")
    }
    expect(worker.recorder.worksOf(retried.id).map((w) => w.attempt)).toEqual([1, 2])

    // Cleaner: effect-river's discarded job is deleted by River.
    await waitWithDiagnosis(schema, "River's cleaner deleted effect-river's discarded job", async () => (await state(schema, done.id)) === undefined, 120_000)
    expect(await s.run(worker.runner.isLeader)).toBe(false)
    await worker.stop()
  })

  it("effect-river leads: its scheduler, rescuer and cleaner serve River's jobs", async () => {
    const schema = await s.effectSchema("effect_maintains")
    const leader = await s.runner(schema, {
      id: "effect-leader",
      queues: { effect_only: { maxWorkers: 1 } },
      schedulerInterval: "200 millis",
      jobTimeout: "1 second",
      rescueStuckJobsAfter: "2 seconds",
      rescuerInterval: "300 millis",
      retryPolicy: () => "300 millis",
      // Discarded jobs only: completed ones stay, so the scenario can read them.
      retention: { discarded: "1 second" },
      jobCleanerInterval: "300 millis"
    })
    await leaderIs(schema, "effect-leader")

    // A River process works two jobs, then dies: one discarded, one stuck running.
    const doomed = await s.river(schema, "river-doomed")
    await doomed.start({ id: "river-doomed", queues: { default: 2 } })
    const done = (await doomed.insert("interop_behave", behave("fail", "discarded at once"), { max_attempts: 1 })).job
    const stuck = (await doomed.insert("interop_behave", behave("block_once"))).job
    await doomed.waitForRiverEvent("job_failed", done.id)
    await doomed.waitForWork(stuck.id, 1)
    await doomed.kill()

    const river = await s.river(schema, "river-worker")
    await river.start({ id: "river-worker", queues: { default: 4 } })
    const scheduled = (await river.insert("interop_behave", behave("complete"), {
      scheduled_at: new Date(Date.now() + 1_000).toISOString()
    })).job
    expect(scheduled.state).toBe("scheduled")

    const rescued = await river.waitForRiverEvent("job_completed", stuck.id, 120_000)
    expect(rescued.attempt).toBe(2)
    expect(rescued.errors.map((e) => [e.attempt, e.error])).toEqual([[1, "Stuck job rescued by JobRescuer"]])
    expect(rescued.metadata["river:rescue_count"]).toBe(1)
    expect(rescued.attemptedBy).toEqual(["river-doomed", "river-worker"])
    const byEffect = await s.run(leader.client.get(stuck.id))
    expect(byEffect.errors.map((e) => e.error)).toEqual(["Stuck job rescued by JobRescuer"])

    await river.waitForRiverEvent("job_completed", scheduled.id)
    await waitWithDiagnosis(schema, "effect-river's cleaner deleted River's discarded job", async () => (await state(schema, done.id)) === undefined)
    expect(await s.run(leader.runner.isLeader)).toBe(true)
    await leader.stop()
  })
})
