/**
 * effect-river's side of a scenario, and the shared plumbing: a database per test file on the
 * run's PostgreSQL, a schema per test (migrated by either side), effect-river runners and
 * clients in this process (real runners: LISTEN, producers, leader election, maintenance), and
 * waits on observable conditions with generous deadlines.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Layer, ManagedRuntime, Redacted, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, execFile, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { inject } from "vitest"
import * as Client from "../../../src/Client.ts"
import * as Migrator from "../../../src/Migrator.ts"
import * as Runner from "../../../src/Runner.ts"
import type * as Worker from "../../../src/Worker.ts"
import type { ProcessConfig } from "./effect-runner-process.ts"
import { Recorder, workers } from "./kinds.ts"
import { killAll, Riverside } from "./riverside.ts"

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Now, in fractional milliseconds on the machine's clock (comparable with Go's `time.Now`). */
export const nowMillis = () => performance.timeOrigin + performance.now()

/** Polls `check` until it returns a value other than `undefined`/`false`; fails after `timeoutMs`. */
export const waitFor = async <A>(
  label: string,
  check: () => Promise<A | undefined | false> | A | undefined | false,
  timeoutMs = 60_000,
  everyMs = 50
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      lastError = error
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${lastError === undefined ? "" : `; last error: ${String(lastError)}`}`)
}

type Db = SqlClient.SqlClient | PgClient.PgClient

export interface EffectRunner {
  readonly id: string
  readonly runner: Runner.Runner["Service"]
  readonly client: Client.Client["Service"]
  readonly recorder: Recorder
  /** Graceful stop: resign, stop fetching, let running jobs finish (soft stop), write outcomes. */
  readonly stop: () => Promise<void>
}

export type RunnerOptions = Omit<Runner.RunnerOptions<ReadonlyArray<Worker.Any>>, "workers" | "schema">

/** A database of its own for one test file, with effect-river and River helpers on it. */
export class Scenario {
  private readonly scopes: Array<Scope.Closeable> = []
  private readonly sides: Array<Riverside> = []
  private schemaCount = 0

  readonly url: string
  readonly runtime: ManagedRuntime.ManagedRuntime<Db, unknown>
  private readonly dropDatabase: () => Promise<void>

  private constructor(url: string, runtime: ManagedRuntime.ManagedRuntime<Db, unknown>, dropDatabase: () => Promise<void>) {
    this.url = url
    this.runtime = runtime
    this.dropDatabase = dropDatabase
  }

  static async create(prefix: string): Promise<Scenario> {
    const server = inject("DATABASE_URL")
    const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
    const admin = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(server), maxConnections: 1 }) as Layer.Layer<Db>)
    await admin.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE DATABASE "${name}"`)))
    const url = new URL(server)
    url.pathname = `/${name}`
    const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 20 }) as Layer.Layer<Db>)
    return new Scenario(url.toString(), runtime, async () => {
      await admin.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)))
      await admin.dispose()
    })
  }

  run<A, E>(effect: Effect.Effect<A, E, Db | Scope.Scope>): Promise<A> {
    return this.runtime.runPromise(Effect.scoped(effect))
  }

  q<T extends object = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []): Promise<ReadonlyArray<T>> {
    return this.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<T>(text, params as Array<unknown>)))
  }

  /** A new schema name, unique in this file. */
  schemaName(prefix: string): string {
    return `${prefix}_${++this.schemaCount}`
  }

  /** A new schema migrated to the latest version by effect-river's Migrator. */
  async effectSchema(prefix: string): Promise<string> {
    const schema = this.schemaName(prefix)
    await this.run(Migrator.up({ schema }))
    return schema
  }

  /** A new schema migrated to River's latest version by River's migrator (rivermigrate). */
  async riverSchema(prefix: string): Promise<string> {
    const schema = this.schemaName(prefix)
    await this.q(`CREATE SCHEMA "${schema}"`)
    await riverMigrate(this.url, ["up", "--schema", schema])
    return schema
  }

  /** An effect-river client (insert-only) on `schema`. */
  async client(schema: string): Promise<Client.Client["Service"]> {
    const scope = await this.runtime.runPromise(Scope.make())
    this.scopes.push(scope)
    return this.runtime.runPromise(Client.make({ schema }).pipe(Scope.provide(scope)))
  }

  /** Starts an effect-river runner working every interop kind, reporting to its recorder. */
  async runner(schema: string, options: RunnerOptions & { readonly id: string }): Promise<EffectRunner> {
    const recorder = new Recorder()
    const scope = await this.runtime.runPromise(Scope.make())
    this.scopes.push(scope)
    const { client, runner } = await this.runtime.runPromise(
      Runner.make({
        fetchCooldown: "20 millis",
        fetchPollInterval: "500 millis",
        ...options,
        schema,
        workers: workers(recorder)
      }).pipe(Scope.provide(scope))
    )
    let stopped: Promise<void> | undefined
    return {
      id: options.id,
      runner,
      client,
      recorder,
      stop: () => (stopped ??= this.runtime.runPromise(Scope.close(scope, Exit.void)))
    }
  }

  /** Starts a riverside process (River's client) on `schema`. */
  async river(schema: string, label = "river"): Promise<Riverside> {
    const side = await Riverside.start(this.url, schema, label)
    this.sides.push(side)
    return side
  }

  /** Stops everything this file started (riverside processes first, then runners), then drops the database. */
  async dispose() {
    await Promise.all(this.sides.map((side) => side.close().catch(() => {})))
    await killAll()
    for (const child of children) child.kill("SIGKILL")
    for (const scope of this.scopes.reverse()) {
      await this.runtime.runPromise(Scope.close(scope, Exit.void)).catch(() => {})
    }
    await this.runtime.dispose()
    await this.dropDatabase().catch(() => {})
  }
}

/** An effect-river runner in a child process (test/river/utils/effect-runner-process.ts). */
export interface EffectRunnerProcess {
  readonly id: string
  readonly child: ChildProcess
  /** SIGKILL: no stop, no resign, running jobs left `running`. */
  readonly kill: () => Promise<void>
}

const children = new Set<ChildProcess>()

/** Forks an effect-river runner process on `schema`; resolves once it runs. */
export const forkEffectRunner = (config: Omit<ProcessConfig, "url">, url: string): Promise<EffectRunnerProcess> =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./effect-runner-process.ts", import.meta.url)), [JSON.stringify({ ...config, url })], {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      execArgv: []
    })
    children.add(child)
    const output: Array<string> = []
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
    const exited = new Promise<void>((done) => child.on("exit", () => done()))
    void exited.then(() => {
      children.delete(child)
      reject(new Error(`effect-river runner ${config.id} exited before it was ready:\n${output.join("")}`))
    })
    const timer = setTimeout(() => reject(new Error(`effect-river runner ${config.id} not ready after 60 s:\n${output.join("")}`)), 60_000)
    child.on("message", (message: { type?: string; message?: string }) => {
      clearTimeout(timer)
      if (message.type === "ready") {
        resolve({
          id: config.id,
          child,
          kill: async () => {
            child.kill("SIGKILL")
            await exited
          }
        })
      } else {
        reject(new Error(`effect-river runner ${config.id} failed: ${message.message}`))
      }
    })
  })

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const execute = (file: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<CliResult>((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }))
  })

/** `riverside migrate <args>`: River's migrator (rivermigrate v0.51.2); the parsed JSON output. */
export const riverMigrate = async <T = Record<string, unknown>>(url: string, args: ReadonlyArray<string>): Promise<T> => {
  const result = await execute(inject("RIVERSIDE_BIN"), ["migrate", ...args, "--database-url", url])
  if (result.code !== 0) throw new Error(`riverside migrate ${args.join(" ")} exited ${result.code}: ${result.stdout}${result.stderr}`)
  return JSON.parse(result.stdout) as T
}

/** `riverside migrate <args>` without failing on a non-zero exit. */
export const riverMigrateRaw = (url: string, args: ReadonlyArray<string>) =>
  execute(inject("RIVERSIDE_BIN"), ["migrate", ...args, "--database-url", url])

/** effect-river's CLI (`node src/cli/main.ts migrate …`). */
export const effectMigrate = (url: string, args: ReadonlyArray<string>) =>
  execute(process.execPath, ["src/cli/main.ts", "migrate", ...args, "--database-url", url])
