/**
 * Plumbing shared by the multi-process suites (fault.test.ts, flow.test.ts): runner processes
 * (runner-process.ts) forked with an IPC channel, a database per scenario with River's schema and
 * the executions table, condition waits with deadlines. Call {@link registerCleanup} once per
 * test file: every child and database is gone after each test and after the file, even on failure.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach } from "vitest"
import * as Client from "../../src/Client.ts"
import type * as JobKind from "../../src/JobKind.ts"
import * as Migrator from "../../src/Migrator.ts"
import { type ChildMessage, executionsDdl, flowLogDdl, type RunnerConfig } from "./kinds.ts"

export const RUNNER = fileURLToPath(new URL("./runner-process.ts", import.meta.url))
export const SCHEMA = "river"


export interface RunnerHandle {
  readonly id: string
  readonly child: ChildProcess
  readonly output: Array<string>
  readonly exited: Promise<number | null>
}

export const alive = new Set<RunnerHandle>()
export const disposers: Array<() => Promise<void>> = []

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const isAlive = (h: RunnerHandle) => h.child.exitCode === null && h.child.signalCode === null

export const startRunner = (config: RunnerConfig): Promise<RunnerHandle> =>
  new Promise((resolve, reject) => {
    const child = fork(RUNNER, [JSON.stringify(config)], { stdio: ["ignore", "pipe", "pipe", "ipc"], execArgv: [] })
    const output: Array<string> = []
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString("utf8"))
      if (output.length > 200) output.shift()
    }
    child.stdout?.on("data", keep)
    child.stderr?.on("data", keep)
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)))
    const handle: RunnerHandle = { id: config.id, child, output, exited }
    alive.add(handle)
    void exited.then(() => alive.delete(handle))
    const timer = setTimeout(() => reject(new Error(`runner ${config.id} not ready after 60 s:\n${output.join("")}`)), 60_000)
    child.on("message", (message: ChildMessage) => {
      if (message.type === "ready") {
        clearTimeout(timer)
        resolve(handle)
      } else if (message.type === "error") {
        clearTimeout(timer)
        reject(new Error(`runner ${config.id} failed: ${message.message}`))
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`runner ${config.id} exited (${code}) before ready:\n${output.join("")}`))
    })
  })

/** SIGTERM (graceful stop), SIGKILL after `graceMs`. Returns the exit codes. */
export const stopRunners = async (handles: Iterable<RunnerHandle>, graceMs = 20_000) =>
  Promise.all([...handles].map(async (h) => {
    if (!isAlive(h)) return h.child.exitCode
    h.child.kill("SIGTERM")
    const code = await Promise.race([h.exited, sleep(graceMs).then(() => "timeout" as const)])
    if (code === "timeout") {
      console.log(`runner ${h.id} did not stop within ${graceMs} ms after SIGTERM; SIGKILL\n${h.output.join("")}`)
      h.child.kill("SIGKILL")
      return await h.exited
    }
    return code
  }))

export const killRunner = async (h: RunnerHandle) => {
  h.child.kill("SIGKILL")
  await h.exited
}

/** Registers the cleanup of every child process and database of the calling test file. */
export const registerCleanup = () => {
  afterEach(async () => {
    for (const h of alive) h.child.kill("SIGKILL")
    await Promise.all([...alive].map((h) => h.exited))
  })

  afterAll(async () => {
    for (const h of alive) h.child.kill("SIGKILL")
    for (const dispose of disposers.reverse()) await dispose().catch(() => {})
  })
}

export interface Db {
  readonly url: string
  readonly q: <T extends object = Record<string, unknown>>(text: string, params?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<T>>
  readonly insert: (requests: ReadonlyArray<JobKind.InsertRequest>) => Promise<ReadonlyArray<bigint>>
  readonly run: <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) => Promise<A>
  readonly dispose: () => Promise<void>
}

export const connect = (url: string): Db => {
  const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 }) as Layer.Layer<SqlClient.SqlClient>)
  const q = <T extends object>(text: string, params: ReadonlyArray<unknown> = []) =>
    runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<T>(text, params as Array<unknown>)))
  const insert = (requests: ReadonlyArray<JobKind.InsertRequest>) =>
    runtime.runPromise(Effect.gen(function*() {
      const client = yield* Client.make({ schema: SCHEMA })
      const ids: Array<bigint> = []
      for (let i = 0; i < requests.length; i += 1000) {
        const results = yield* client.insertMany(requests.slice(i, i + 1000))
        for (const r of results) ids.push(r.job.id)
      }
      return ids
    }).pipe(Effect.scoped))
  return { url, q, insert, run: (effect) => runtime.runPromise(effect), dispose: () => runtime.dispose() }
}

export const withDatabase = (serverUrl: string, name: string) => {
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** A new database on `serverUrl` with River's schema and the executions table. */
export const freshDatabase = async (serverUrl: string, prefix: string): Promise<Db> => {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = connect(serverUrl)
  await admin.q(`CREATE DATABASE "${name}"`)
  const db = connect(withDatabase(serverUrl, name))
  disposers.push(async () => {
    await db.dispose().catch(() => {})
    await admin.q(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await admin.dispose()
  })
  await db.q(`CREATE SCHEMA ${SCHEMA}`)
  await db.run(Migrator.up({ schema: SCHEMA }))
  await db.q(executionsDdl(SCHEMA))
  await db.q(flowLogDdl(SCHEMA))
  return db
}

/** Polls `check` (errors count as "not yet": the database may be down) until it is true. */
export const waitFor = async (label: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 200) => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      lastError = error
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${lastError ? `; last error: ${String(lastError)}` : ""}`)
}

export const count = async (db: Db, where: string, params: ReadonlyArray<unknown> = []) =>
  (await db.q<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.${where}`, params))[0]!.n

export const settings = (url: string, id: string, overrides: Partial<RunnerConfig> = {}): RunnerConfig => ({
  url,
  schema: SCHEMA,
  id,
  maxWorkers: 20,
  maxConnections: 8,
  jobTimeout: 60_000,
  rescueStuckJobsAfter: 120_000,
  rescuerInterval: 1_000,
  schedulerInterval: 500,
  fetchPollInterval: 500,
  softStopTimeout: 5_000,
  leadership: { ttl: 3_000, electInterval: 1_000, renewInterval: 1_000 },
  stepsTimeout: 60_000,
  ...overrides
})

export const startRunners = (configs: ReadonlyArray<RunnerConfig>) => Promise.all(configs.map(startRunner))
