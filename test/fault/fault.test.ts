/**
 * Multi-node fault suite: real runner processes (test/fault/runner-process.ts) against one
 * PostgreSQL. Scenarios: a 3-runner drain, SIGKILL of a runner mid-run (rescue + resumable
 * checkpoint), a PostgreSQL stop/restart mid-run, and SIGKILL of the leader.
 *
 * Every wait is on a condition with a generous deadline; every child process and server is
 * killed in afterEach/afterAll, even on failure. Each scenario prints one `OUTCOME` line.
 */
import { describe, expect, inject, it } from "vitest"
import {
  alive,
  connect,
  count,
  type Db,
  disposers,
  freshDatabase,
  isAlive,
  killRunner,
  registerCleanup,
  SCHEMA,
  settings,
  sleep,
  startRunners,
  stopRunners,
  waitFor
} from "./harness.ts"
import { Noop, Sleep, TwoSteps } from "./kinds.ts"
import { type RestartablePostgres, startRestartablePostgres } from "./pg.ts"

registerCleanup()


/** Per job: executions, state, rescue count. */
const jobReport = (db: Db, kind: string) =>
  db.q<{ id: bigint; state: string; rescues: number; runs: number }>(
    `SELECT j.id, j.state::text AS state, coalesce((j.metadata->>'river:rescue_count')::int, 0) AS rescues,
       (SELECT count(*)::int FROM ${SCHEMA}.fault_executions e WHERE e.job_id = j.id) AS runs
     FROM ${SCHEMA}.river_job j WHERE j.kind = $1 ORDER BY j.id`,
    [kind]
  )

const outcome = (scenario: string, fields: Record<string, unknown>) => {
  const line = `OUTCOME ${scenario}: ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(" ")}`
  console.log(line)
}

const runnerIds = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`)

// ---------------------------------------------------------------------------------------------

describe("multi-node faults", () => {
  const serverUrl = inject("DATABASE_URL")

  it("1. three runner processes drain 10,000 jobs, each handler exactly once", async () => {
    const db = await freshDatabase(serverUrl, "fault_drain")
    const runners = await startRunners(runnerIds("drain", 3).map((id) => settings(db.url, id, { maxWorkers: 50 })))
    const total = 10_000
    const started = Date.now()
    const ids = await db.insert(Array.from({ length: total }, (_, n) => Noop.of({ n })))
    expect(ids.length).toBe(total)
    await waitFor("10,000 completed jobs", 120_000, async () => (await count(db, "river_job WHERE state = 'completed'")) === total, 500)
    const drainedMs = Date.now() - started
    const codes = await stopRunners(runners)

    const [stats] = await db.q<{ rows: number; distinct_jobs: number; max_per_job: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT job_id)::int AS distinct_jobs,
         coalesce(max(c), 0)::int AS max_per_job
       FROM ${SCHEMA}.fault_executions, LATERAL (SELECT count(*) AS c FROM ${SCHEMA}.fault_executions e2
         WHERE e2.job_id = fault_executions.job_id) x`
    )
    const perRunner = await db.q<{ runner_id: string; n: number }>(
      `SELECT runner_id, count(*)::int AS n FROM ${SCHEMA}.fault_executions GROUP BY runner_id ORDER BY runner_id`
    )
    const notCompleted = await count(db, "river_job WHERE state <> 'completed'")
    outcome("drain", {
      jobs: total,
      kills: 0,
      lost: total - stats!.distinct_jobs + notCompleted,
      duplicated: stats!.rows - stats!.distinct_jobs,
      drain_ms: drainedMs,
      per_runner: perRunner.map((r) => `${r.runner_id}:${r.n}`).join(","),
      exit_codes: codes.join(",")
    })
    expect(stats!.rows).toBe(total)
    expect(stats!.distinct_jobs).toBe(total)
    expect(notCompleted).toBe(0)
    expect(codes).toEqual([0, 0, 0])
  }, 180_000)

  it("2. SIGKILL of a runner mid-run: its jobs are rescued and finished, a resumable job resumes after its checkpoint", async () => {
    const db = await freshDatabase(serverUrl, "fault_kill")
    const timings = { jobTimeout: 2_000, rescueStuckJobsAfter: 3_000, rescuerInterval: 500, stepsTimeout: 3_000, maxWorkers: 10 }
    const runners = await startRunners(runnerIds("kill", 3).map((id) => settings(db.url, id, timings)))
    const total = 600
    await db.insert(Array.from({ length: total }, (_, n) => Sleep.of({ n, ms: 200 }, { priority: 2 })))
    await waitFor("60 executions", 60_000, async () => (await count(db, "fault_executions")) >= 60, 100)
    const [stepsJob] = await db.insert([TwoSteps.of({ label: "resumable" }, { priority: 1 })])
    let victimId = ""
    await waitFor("the two-step job's first step", 30_000, async () => {
      const rows = await db.q<{ runner_id: string }>(
        `SELECT runner_id FROM ${SCHEMA}.fault_executions WHERE job_id = $1 AND step = 'first'`,
        [stepsJob]
      )
      victimId = rows[0]?.runner_id ?? ""
      return victimId !== ""
    }, 50)
    // Wait until the second step started (the checkpoint is committed), then kill its runner.
    await waitFor("the two-step job's second step", 10_000, async () =>
      (await count(db, "fault_executions WHERE job_id = $1 AND step = 'second'", [stepsJob])) === 1, 20)
    const victim = runners.find((r) => r.id === victimId)!
    await killRunner(victim)
    const killedAt = Date.now()
    // A statement the victim sent before it died (a completion batch) still runs to its commit:
    // only once its backends are gone is the set of jobs it left running final.
    await waitFor("the victim's connections to close", 30_000, async () =>
      (await db.q<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [victimId]))[0]!.n === 0, 50)
    const orphaned = await db.q<{ id: bigint }>(
      `SELECT id FROM ${SCHEMA}.river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`,
      [victimId]
    )
    const doneAtKill = await count(db, "river_job WHERE state = 'completed'")

    await waitFor("every job completed", 90_000, async () => (await count(db, "river_job WHERE state = 'completed'")) === total + 1, 250)
    const recoveredMs = Date.now() - killedAt
    const survivors = runners.filter((r) => r !== victim)
    const codes = await stopRunners(survivors)

    const jobs = await jobReport(db, "fault_sleep")
    const orphanIds = new Set(orphaned.map((r) => r.id))
    const rescued = jobs.filter((j) => j.rescues > 0)
    const lost = jobs.filter((j) => j.state !== "completed" || j.runs === 0)
    const reruns = jobs.filter((j) => j.runs > 1)
    const unexplainedReruns = reruns.filter((j) => j.rescues === 0)
    const steps = await db.q<{ step: string; runner_id: string; attempt: number }>(
      `SELECT step, runner_id, attempt FROM ${SCHEMA}.fault_executions WHERE job_id = $1 ORDER BY at`,
      [stepsJob]
    )
    const [stepsRow] = await db.q<{ state: string; rescues: number; last_step: string | null; attempt: number }>(
      `SELECT state::text AS state, coalesce((metadata->>'river:rescue_count')::int, 0) AS rescues,
         metadata->>'river:resumable_step' AS last_step, attempt FROM ${SCHEMA}.river_job WHERE id = $1`,
      [stepsJob]
    )
    outcome("kill-runner", {
      jobs: total + 1,
      kills: 1,
      victim: victimId,
      completed_at_kill: doneAtKill,
      running_on_victim_at_kill: orphaned.length,
      rescued: rescued.length,
      rescued_from_victim: rescued.filter((j) => orphanIds.has(j.id)).length,
      lost: lost.length,
      reruns: reruns.length,
      reruns_without_rescue: unexplainedReruns.length,
      time_to_recover_ms: recoveredMs,
      resumable: steps.map((s) => `${s.step}@${s.runner_id}#${s.attempt}`).join(","),
      exit_codes: codes.join(",")
    })
    expect(lost).toEqual([])
    expect(unexplainedReruns).toEqual([])
    expect(reruns.every((j) => j.runs <= 2)).toBe(true)
    // Every job that was running on the victim when it died was rescued (or had completed before).
    expect(orphaned.length).toBeGreaterThan(0)
    expect(rescued.filter((j) => orphanIds.has(j.id)).length).toBe(orphanIds.size - 1) // minus the two-step job
    // The resumable job: first step once (on the victim), resumed after the checkpoint elsewhere.
    expect(stepsRow!.state).toBe("completed")
    expect(stepsRow!.rescues).toBeGreaterThanOrEqual(1)
    expect(steps.filter((s) => s.step === "first").map((s) => s.runner_id)).toEqual([victimId])
    const resumed = steps.filter((s) => s.step === "second" && s.attempt > 1)
    expect(resumed.length).toBe(1)
    expect(resumed[0]!.runner_id).not.toBe(victimId)
    expect(codes).toEqual([0, 0])
  }, 180_000)

  it("3. PostgreSQL stopped and restarted mid-run: runners reconnect, no job lost", async () => {
    let server: RestartablePostgres | undefined
    disposers.push(async () => {
      for (const h of alive) h.child.kill("SIGKILL")
      await server?.destroy()
    })
    server = await startRestartablePostgres()
    const db = await freshDatabase(server.url, "fault_restart")
    const timings = { jobTimeout: 2_000, rescueStuckJobsAfter: 3_000, rescuerInterval: 500, maxWorkers: 10 }
    const runners = await startRunners(runnerIds("restart", 3).map((id) => settings(db.url, id, timings)))
    const total = 1_500
    await db.insert(Array.from({ length: total }, (_, n) => Sleep.of({ n, ms: 100 })))
    await waitFor("300 executions", 60_000, async () => (await count(db, "fault_executions")) >= 300, 100)
    const beforeStop = await count(db, "river_job WHERE state = 'completed'")
    const stoppedAt = Date.now()
    await server.stop()
    await sleep(3_000)
    await server.start()
    const restartedAt = Date.now()
    // Recovered: some execution recorded after the restart.
    await waitFor("an execution after the restart", 60_000, async () =>
      (await count(db, "fault_executions WHERE at > $1", [new Date(restartedAt)])) > 0, 100)
    const firstRunAfterMs = Date.now() - restartedAt
    await waitFor("every job completed", 120_000, async () => (await count(db, "river_job WHERE state = 'completed'")) === total, 250)
    const drainedAfterMs = Date.now() - restartedAt
    const stillAlive = runners.filter(isAlive).length
    const codes = await stopRunners(runners)

    const jobs = await jobReport(db, "fault_sleep")
    const lost = jobs.filter((j) => j.state !== "completed" || j.runs === 0)
    const reruns = jobs.filter((j) => j.runs > 1)
    const rescued = jobs.filter((j) => j.rescues > 0)
    const [errors] = await db.q<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${SCHEMA}.river_job WHERE kind = 'fault_sleep' AND cardinality(errors) > 0`
    )
    // Evidence on the re-runs: when their first execution started relative to the stop, their errors.
    const rerunEvidence = await db.q<{ first_ms: number; errors: string }>(
      `SELECT (extract(epoch FROM min(e.at)) * 1000 - $1::double precision)::int AS first_ms,
         (SELECT string_agg(DISTINCT left(x->>'error', 60), ' | ') FROM jsonb_array_elements(to_jsonb(j.errors)) x) AS errors
       FROM ${SCHEMA}.river_job j JOIN ${SCHEMA}.fault_executions e ON e.job_id = j.id
       WHERE j.kind = 'fault_sleep' GROUP BY j.id HAVING count(*) > 1`,
      [stoppedAt]
    )
    const firsts = rerunEvidence.map((r) => r.first_ms)
    const errorKinds = [...new Set(rerunEvidence.map((r) => r.errors))]
    outcome("pg-restart", {
      jobs: total,
      kills: "postgres stop 3s",
      completed_before_stop: beforeStop,
      down_ms: restartedAt - stoppedAt,
      lost: lost.length,
      reruns: reruns.length,
      rescued: rescued.length,
      jobs_with_errors: errors!.n,
      rerun_first_exec_vs_stop_ms: firsts.length === 0 ? "-" : `${Math.min(...firsts)}..${Math.max(...firsts)}`,
      rerun_errors: JSON.stringify(errorKinds),
      first_run_after_restart_ms: firstRunAfterMs,
      drained_after_restart_ms: drainedAfterMs,
      runners_alive: stillAlive,
      exit_codes: codes.join(",")
    })
    expect(lost).toEqual([])
    expect(stillAlive).toBe(3)
    expect(codes).toEqual([0, 0, 0])
  }, 180_000)

  it("5. graceful stop with PostgreSQL down: the runner exits within softStopTimeout plus the flush deadline", async () => {
    let server: RestartablePostgres | undefined
    disposers.push(async () => {
      for (const h of alive) h.child.kill("SIGKILL")
      await server?.destroy()
    })
    server = await startRestartablePostgres()
    const db = await freshDatabase(server.url, "fault_stop_down")
    const [runner] = await startRunners([settings(db.url, "stop-down", { softStopTimeout: 1_000, maxWorkers: 10 })])
    await db.insert(Array.from({ length: 5 }, (_, n) => Sleep.of({ n, ms: 600_000 })))
    await waitFor("5 running jobs", 30_000, async () => (await count(db, "fault_executions")) === 5, 100)
    await waitFor("a leader", 30_000, async () => (await db.q(`SELECT 1 FROM ${SCHEMA}.river_leader`)).length === 1)
    await db.dispose()
    await server.stop()
    const stoppingAt = Date.now()
    const [code] = await stopRunners([runner!], 60_000)
    const stopMs = Date.now() - stoppingAt
    outcome("stop-with-db-down", { jobs: 5, soft_stop_ms: 1_000, stop_ms: stopMs, exit_code: code })
    // softStopTimeout (1 s) + the completer's final-flush deadline (5 s) + leader resign (at most
    // 2 s), with room for a loaded machine; before the deadline the stop took ~48 s.
    expect(stopMs).toBeLessThan(15_000)
    expect(code).toBe(0)
    // What could not be written is left to the rescuer: the jobs are still running in the database.
    await server.start()
    const after = connect(db.url)
    disposers.push(() => after.dispose())
    expect(await count(after, "river_job WHERE state = 'running'")).toBe(5)
  }, 180_000)

  it("4. SIGKILL of the leader: another runner leads within the TTL and rescues a stuck job", async () => {
    const db = await freshDatabase(serverUrl, "fault_leader")
    const timings = { jobTimeout: 1_000, rescueStuckJobsAfter: 2_000, rescuerInterval: 500 }
    const runners = await startRunners(runnerIds("leader", 3).map((id) => settings(db.url, id, timings)))
    let leaderId = ""
    await waitFor("a leader", 30_000, async () => {
      const rows = await db.q<{ leader_id: string }>(`SELECT leader_id FROM ${SCHEMA}.river_leader`)
      leaderId = rows[0]?.leader_id ?? ""
      return leaderId !== ""
    })
    const leader = runners.find((r) => r.id === leaderId)!
    expect(leader).toBeDefined()
    await killRunner(leader)
    const killedAt = Date.now()
    // A job stuck `running` on a runner that no longer exists: only a new leader can rescue it.
    const [stuck] = await db.insert([Noop.of({ n: 0 }, { scheduledAt: new Date(Date.now() + 3_600_000) })])
    await db.q(
      `UPDATE ${SCHEMA}.river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '1 hour',
         attempted_by = ARRAY['ghost-runner'], scheduled_at = now() - interval '1 hour' WHERE id = $1`,
      [stuck]
    )
    let newLeader = ""
    await waitFor("a new leader", 30_000, async () => {
      const rows = await db.q<{ leader_id: string }>(`SELECT leader_id FROM ${SCHEMA}.river_leader WHERE expires_at > now()`)
      newLeader = rows[0]?.leader_id ?? ""
      return newLeader !== "" && newLeader !== leaderId
    }, 100)
    const electedMs = Date.now() - killedAt
    await waitFor("the stuck job completed", 30_000, async () => (await count(db, "river_job WHERE id = $1 AND state = 'completed'", [stuck])) === 1, 100)
    const rescuedMs = Date.now() - killedAt
    const survivors = runners.filter((r) => r !== leader)
    const codes = await stopRunners(survivors)
    const [row] = await jobReport(db, "fault_noop")
    outcome("kill-leader", {
      jobs: 1,
      kills: 1,
      old_leader: leaderId,
      new_leader: newLeader,
      time_to_new_leader_ms: electedMs,
      time_to_rescue_and_complete_ms: rescuedMs,
      rescues: row!.rescues,
      runs: row!.runs,
      lost: row!.state === "completed" ? 0 : 1,
      exit_codes: codes.join(",")
    })
    expect(survivors.map((r) => r.id)).toContain(newLeader)
    // TTL 3 s + elect interval 1 s + up to 1 s jitter; generous slack for a loaded machine.
    expect(electedMs).toBeLessThan(15_000)
    expect(row!.state).toBe("completed")
    expect(row!.rescues).toBe(1)
    expect(row!.runs).toBe(1)
    expect(codes).toEqual([0, 0])
  }, 120_000)
})
