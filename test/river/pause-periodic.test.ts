/**
 * Scenario 8, pause/resume and periodic jobs across languages: River's `QueuePause` stops an
 * effect-river runner's producer for that queue (and only that queue) and `QueueResume` starts
 * it again; effect-river's `pauseQueue` / `resumeQueue` do the same to a River client. Periodic
 * jobs carry the same metadata (`periodic`, `river:periodic_job_id`) on both sides: River's are
 * worked by effect-river, and an effect-river leader counts River's last run of a shared
 * periodic job instead of running it again; effect-river's are read and worked by River.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as PeriodicJob from "../../src/PeriodicJob.ts"
import { Behave, behave, Periodic } from "./utils/kinds.ts"
import { Scenario, waitFor } from "./utils/harness.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_pause")
})
afterAll(async () => {
  await s?.dispose()
})

const state = (schema: string, id: bigint) =>
  s.q<{ state: string }>(`SELECT state::text AS state FROM "${schema}".river_job WHERE id = $1`, [id]).then((r) => r[0]?.state)

describe("pause and resume across languages", () => {
  it("River's QueuePause stops effect-river's producer for that queue; QueueResume starts it", async () => {
    const schema = await s.effectSchema("go_pauses")
    // No polling: the runner fetches only on notifications, which arrive in commit order, so a
    // job inserted after the pause can only be fetched if the pause was not honoured.
    const queue = { maxWorkers: 2, fetchPollInterval: "10 minutes" } as const
    const runner = await s.runner(schema, { id: "effect-paused", queues: { alpha: queue, beta: queue } })
    const river = await s.river(schema, "river-pauser")
    await river.queuePause("alpha")
    expect((await s.q<{ paused_at: Date | null }>(`SELECT paused_at FROM "${schema}".river_queue WHERE name = 'alpha'`))[0]?.paused_at)
      .not.toBeNull()
    const held = (await river.insert("interop_behave", behave("complete"), { queue: "alpha" })).job
    const other = (await river.insert("interop_behave", behave("complete"), { queue: "beta" })).job
    await waitFor("the unpaused queue's job completed", async () => (await state(schema, other.id)) === "completed")
    expect(await state(schema, held.id)).toBe("available")
    expect(runner.recorder.worksOf(held.id)).toEqual([])

    await river.queueResume("alpha")
    await waitFor("the paused queue's job completed after the resume", async () => (await state(schema, held.id)) === "completed")
    await runner.stop()
  })

  it("effect-river's pauseQueue stops River's producer for that queue; resumeQueue starts it", async () => {
    const schema = await s.effectSchema("ts_pauses")
    const river = await s.river(schema, "river-paused")
    await river.start({ id: "river-paused", queues: { alpha: 2, beta: 2 }, fetch_poll_interval_ms: 600_000 })
    const client = await s.client(schema)
    const from = river.events.length
    await s.run(client.pauseQueue("alpha"))
    await river.waitForEvent((e) => e.event === "river" && e.kind === "queue_paused" && e.queue === "alpha", "River's queue_paused", 30_000, from)
    expect((await river.queueGet("alpha")).paused_at).not.toBeNull()
    const held = (await s.run(client.insert(Behave, behave("complete"), { queue: "alpha" }))).job
    const other = (await s.run(client.insert(Behave, behave("complete"), { queue: "beta" }))).job
    await river.waitForRiverEvent("job_completed", other.id)
    expect((await river.get(held.id))?.state).toBe("available")

    await s.run(client.resumeQueue("alpha"))
    await river.waitForEvent((e) => e.event === "river" && e.kind === "queue_resumed" && e.queue === "alpha", "River's queue_resumed", 30_000, from)
    await river.waitForRiverEvent("job_completed", held.id)
    expect((await river.queueGet("alpha")).paused_at).toBeNull()
  })

  it("pausing every queue (\"*\") from either side", async () => {
    const schema = await s.effectSchema("pause_all")
    const queue = { maxWorkers: 1, fetchPollInterval: "10 minutes" } as const
    const runner = await s.runner(schema, { id: "effect-all", queues: { alpha: queue, beta: queue } })
    const river = await s.river(schema, "river-all")
    await river.queuePause("*")
    const a = (await river.insert("interop_behave", behave("complete"), { queue: "alpha" })).job
    const b = (await river.insert("interop_behave", behave("complete"), { queue: "beta" })).job
    // effect-river's own resume of one queue proves the runner processed River's pause in order.
    await s.run(runner.client.resumeQueue("beta"))
    await waitFor("beta's job completed after effect-river resumed beta", async () => (await state(schema, b.id)) === "completed")
    expect(await state(schema, a.id)).toBe("available")
    await s.run(runner.client.resumeQueue("*"))
    await waitFor("alpha's job completed after resuming every queue", async () => (await state(schema, a.id)) === "completed")
    await runner.stop()
  })
})

describe("periodic jobs across languages", () => {
  it("River's periodic job is worked by effect-river, and an effect-river leader counts River's last run", async () => {
    const schema = await s.effectSchema("periodic_go")
    const river = await s.river(schema, "river-periodic")
    await river.start({
      id: "river-periodic",
      queues: { river_only: 1 },
      periodic: [{ id: "shared", interval_ms: 3_600_000, run_on_start: true, args: { source: "go" } }]
    })
    const first = await waitFor("River enqueued its periodic job", async () => {
      const rows = await s.q<{ id: bigint }>(`SELECT id FROM "${schema}".river_job WHERE kind = 'interop_periodic'`)
      return rows[0]
    })
    const goRow = (await river.get(first.id))!
    expect(goRow.metadata).toMatchObject({ periodic: true, "river:periodic_job_id": "shared" })
    await river.stop() // resigns

    const runner = await s.runner(schema, {
      id: "effect-periodic",
      queues: { default: { maxWorkers: 2 } },
      periodicJobs: [
        PeriodicJob.make({ id: "shared", schedule: "1 hour", runOnStart: true, job: () => Periodic.of({ source: "ts" }) }),
        PeriodicJob.make({ id: "marker", schedule: "1 hour", runOnStart: true, job: () => Periodic.of({ source: "marker" }) })
      ]
    })
    // The River job is worked by effect-river, metadata intact.
    const work = await waitFor("effect-river worked River's periodic job", () => runner.recorder.worksOf(first.id)[0])
    expect(work.args).toEqual({ source: "go" })
    expect(work.metadata).toMatchObject({ periodic: true, "river:periodic_job_id": "shared" })
    // Every due run is inserted in one statement: once the marker is there, "shared" was planned
    // too — from River's run an hour ahead, so not again now.
    const marker = await waitFor("effect-river's leader enqueued the marker", async () => {
      const rows = await s.q<{ id: bigint }>(
        `SELECT id FROM "${schema}".river_job WHERE metadata @> '{"river:periodic_job_id": "marker"}'`
      )
      return rows[0]
    })
    const shared = await s.q<{ source: string }>(
      `SELECT args->>'source' AS source FROM "${schema}".river_job WHERE metadata @> '{"river:periodic_job_id": "shared"}'`
    )
    expect(shared.map((r) => r.source)).toEqual(["go"])
    expect(marker.id).toBeGreaterThan(first.id)
    await runner.stop()
  })

  it("effect-river's periodic job carries River's metadata and is worked by River", async () => {
    const schema = await s.effectSchema("periodic_ts")
    const runner = await s.runner(schema, {
      id: "effect-periodic-leader",
      queues: { effect_only: { maxWorkers: 1 } },
      periodicJobs: [
        PeriodicJob.make({
          id: "from_ts",
          schedule: "1 hour",
          runOnStart: true,
          job: () => Periodic.of({ source: "ts" }, { queue: "river_q" })
        })
      ]
    })
    const river = await s.river(schema, "river-periodic-worker")
    await river.start({ id: "river-periodic-worker", queues: { river_q: 1 } })
    const work = await waitFor("River worked effect-river's periodic job", () =>
      river.works().find((w) => w.job.kind === "interop_periodic"))
    expect(JSON.parse(work.decoded)).toEqual({ source: "ts" })
    expect(work.job.metadata).toMatchObject({ periodic: true, "river:periodic_job_id": "from_ts" })
    await river.waitForRiverEvent("job_completed", work.job.id)
    expect(await s.run(runner.runner.isLeader)).toBe(true)
    await runner.stop()
  })
})
