/**
 * Flow control next to River. effect-river keeps its limits in the runner and its rate state in
 * its own migration line: River's migrator accepts a schema that has that line (and leaves it
 * alone), and a River client working a queue that effect-river runs with a global limit keeps
 * working — it does not know the limit, and the `slot_freed` insert notifications effect-river
 * sends are, to River, insert notifications of the queue. The limit counts every running job of
 * the queue, River's included: with effect-river's own jobs holding it, River works everything
 * else and effect-river starts nothing until a slot frees.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Behave, behave } from "./utils/kinds.ts"
import { riverMigrate, Scenario, waitFor } from "./utils/harness.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_flow")
})
afterAll(async () => {
  await s?.dispose()
})

describe("flow control next to River", () => {
  it("River's migrator validates a schema with effect-river's own line and leaves its rows alone", async () => {
    const schema = await s.effectSchema("flow_lines")
    const lines = async () =>
      (await s.q<{ line: string; version: string }>(
        `SELECT line, version::text AS version FROM "${schema}".river_migration ORDER BY line, version`
      )).map((r) => `${r.line}/${r.version}`)
    expect(await lines()).toContain("effect-river/1")
    expect(await riverMigrate(s.url, ["validate", "--schema", schema])).toEqual({ ok: true, messages: [] })
    await riverMigrate(s.url, ["down", "--schema", schema, "--target-version", "6"])
    expect(await lines()).toContain("effect-river/1")
  })

  it("a River client works a queue next to an effect-river runner with a global limit; every job completes once", async () => {
    const schema = await s.effectSchema("flow_shared")
    const runner = await s.runner(schema, { id: "effect-limited", queues: { shared: { maxWorkers: 4, globalLimit: 2 } } })
    const river = await s.river(schema, "river-limited")
    await river.start({ id: "river-limited", queues: { shared: 2 }, fetch_poll_interval_ms: 600_000 })
    const client = await s.client(schema)
    const jobs = await s.run(client.insertMany(Array.from({ length: 40 }, () => Behave.of(behave("complete"), { queue: "shared" }))))
    const ids = jobs.map((r) => r.job.id)
    await waitFor("every job completed", async () =>
      (await s.q<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".river_job WHERE state = 'completed' AND id = ANY($1)`,
        [ids]
      ))[0]!.n === ids.length)
    const attempts = await s.q<{ attempt: number }>(`SELECT attempt FROM "${schema}".river_job WHERE id = ANY($1)`, [ids])
    expect(attempts.every((r) => r.attempt === 1)).toBe(true)
    // Whoever took them (River usually wins the race: it does not wait for the limit), no job ran twice.
    expect(new Set(runner.recorder.works.map((w) => w.id)).size).toBe(runner.recorder.works.length)
    await runner.stop()
  })

  it("effect-river's global limit counts the queue's running jobs while River, which does not know it, works the rest", async () => {
    const schema = await s.effectSchema("flow_saturated")
    const runner = await s.runner(schema, { id: "effect-saturated", queues: { shared: { maxWorkers: 4, globalLimit: 2 } } })
    const client = await s.client(schema)
    // effect-river takes two jobs that run until cancelled: the queue is at its limit.
    const blocking = (await s.run(client.insertMany([0, 1].map(() => Behave.of(behave("block"), { queue: "shared" })))))
      .map((r) => r.job.id)
    await waitFor("effect-river runs both blocking jobs", async () => blocking.every((id) => runner.recorder.worksOf(id).length === 1))
    const river = await s.river(schema, "river-saturated")
    await river.start({ id: "river-saturated", queues: { shared: 2 }, fetch_poll_interval_ms: 600_000 })
    const jobs = (await s.run(client.insertMany(Array.from({ length: 20 }, () => Behave.of(behave("complete"), { queue: "shared" })))))
      .map((r) => r.job.id)
    const completedBy = async () =>
      s.q<{ id: string; attempt: number; attempted_by: Array<string> }>(
        `SELECT id::text AS id, attempt, attempted_by FROM "${schema}".river_job WHERE state = 'completed' AND id = ANY($1)`,
        [jobs]
      )
    await waitFor("River completes every job", async () => (await completedBy()).length === jobs.length)
    // River took them all, once each; effect-river, at its limit, started none of them (its
    // notifications and polls still fetched: the limited fetch found two running and took nothing).
    for (const row of await completedBy()) {
      expect(row.attempt).toBe(1)
      expect(row.attempted_by).toEqual(["river-saturated"])
    }
    expect(runner.recorder.works.map((w) => w.id).filter((id) => jobs.includes(id))).toEqual([])
    // Freed by cancelling (effect-river interrupts them), the slots take the next jobs again.
    for (const id of blocking) await s.run(client.cancel(id))
    await waitFor("both blocking jobs cancelled", async () =>
      (await s.q<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".river_job WHERE state = 'cancelled' AND id = ANY($1)`, [blocking]))[0]!
        .n === 2)
    await river.stop()
    const after = (await s.run(client.insertMany(Array.from({ length: 4 }, () => Behave.of(behave("complete"), { queue: "shared" })))))
      .map((r) => r.job.id)
    await waitFor("effect-river works the next jobs", async () => after.every((id) => runner.recorder.worksOf(id).length === 1))
    await runner.stop()
  })
})
