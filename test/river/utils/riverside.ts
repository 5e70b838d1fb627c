/**
 * River's side of a scenario: a `riverside serve` process (interop/river/cmd/riverside), a real
 * River v0.51.2 client on the scenario's database, driven by line-delimited JSON over
 * stdin/stdout. Requests get responses by id; events (Go workers' reports, River's own
 * subscription events) are collected in order and can be awaited.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { inject } from "vitest"
import * as Json from "./json.ts"

/** A River job row as riverside reports it (River's `rivertype.JobRow`). */
export interface RiverJob {
  readonly id: bigint
  readonly state: string
  readonly attempt: number
  readonly maxAttempts: number
  readonly attemptedAt: Date | null
  readonly attemptedBy: ReadonlyArray<string> | null
  readonly createdAt: Date
  readonly finalizedAt: Date | null
  readonly scheduledAt: Date
  readonly priority: number
  readonly kind: string
  readonly queue: string
  readonly tags: ReadonlyArray<string>
  /** The args exactly as stored (River's encoded JSON). */
  readonly argsText: string
  /** The metadata as stored, parsed without precision loss. */
  readonly metadata: Record<string, unknown>
  readonly errors: ReadonlyArray<{ readonly at: Date; readonly attempt: number; readonly error: string; readonly trace: string }>
  /** Hex of `unique_key`, or null. */
  readonly uniqueKey: string | null
  readonly uniqueStates: ReadonlyArray<string> | null
}

export interface RiverEvent {
  readonly event: string
  readonly [key: string]: unknown
}

/** A `work` event: a Go worker started an attempt. */
export interface WorkEvent {
  readonly job: RiverJob
  /** The args as the Go struct holds them, re-encoded by Go (`json.Marshal`). */
  readonly decoded: string
  readonly facts: Record<string, unknown> | null
  readonly atMillis: number
}

/** River's insert options, in riverside's wire names. */
export interface RiverInsertOpts {
  readonly queue?: string
  readonly priority?: number
  readonly max_attempts?: number
  readonly scheduled_at?: string
  readonly tags?: ReadonlyArray<string>
  readonly metadata?: Record<string, unknown>
  readonly pending?: boolean
  readonly unique?: {
    readonly by_args?: boolean
    readonly by_period_ms?: number
    readonly by_queue?: boolean
    readonly by_state?: ReadonlyArray<string>
    readonly exclude_kind?: boolean
  }
}

export interface RiverInsert {
  readonly kind: string
  /** Args as a value (bigints written as JSON numbers) or as JSON text. */
  readonly args: unknown
  readonly opts?: RiverInsertOpts
}

/** Settings of River's working client (`river.Config`). */
export interface RiverStartOptions {
  readonly id: string
  readonly queues: Record<string, number>
  readonly fetch_cooldown_ms?: number
  readonly fetch_poll_interval_ms?: number
  readonly job_timeout_ms?: number
  readonly rescue_stuck_jobs_after_ms?: number
  readonly retry_delay_ms?: number
  readonly completed_retention_ms?: number
  readonly discarded_retention_ms?: number
  readonly leader_election_disabled?: boolean
  readonly periodic?: ReadonlyArray<
    { readonly id: string; readonly interval_ms: number; readonly run_on_start?: boolean; readonly args: unknown; readonly queue?: string }
  >
}

const date = (value: unknown): Date => new Date(value as string)
const dateOrNull = (value: unknown): Date | null => (value === null || value === undefined ? null : date(value))

export const toRiverJob = (raw: Record<string, unknown>): RiverJob => ({
  id: BigInt(raw.id as string),
  state: raw.state as string,
  attempt: raw.attempt as number,
  maxAttempts: raw.max_attempts as number,
  attemptedAt: dateOrNull(raw.attempted_at),
  attemptedBy: raw.attempted_by as ReadonlyArray<string> | null,
  createdAt: date(raw.created_at),
  finalizedAt: dateOrNull(raw.finalized_at),
  scheduledAt: date(raw.scheduled_at),
  priority: raw.priority as number,
  kind: raw.kind as string,
  queue: raw.queue as string,
  tags: raw.tags as ReadonlyArray<string>,
  argsText: raw.args as string,
  metadata: Json.parse(raw.metadata as string) as Record<string, unknown>,
  errors: (raw.errors as ReadonlyArray<Record<string, unknown>>).map((e) => ({
    at: date(e.at),
    attempt: e.attempt as number,
    error: e.error as string,
    trace: e.trace as string
  })),
  uniqueKey: (raw.unique_key as string | null) ?? null,
  uniqueStates: (raw.unique_states as ReadonlyArray<string> | null) ?? null
})

const argsValue = (args: unknown): unknown => (typeof args === "string" ? Json.parse(args) : args)

export class Riverside {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; cmd: string }>()
  private readonly waiters = new Set<() => void>()
  /** Every event received, in order. */
  readonly events: Array<RiverEvent> = []
  readonly stderr: Array<string> = []
  readonly exited: Promise<number | null>

  readonly child: ChildProcessWithoutNullStreams
  readonly label: string

  private constructor(child: ChildProcessWithoutNullStreams, label: string) {
    this.child = child
    this.label = label
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)))
    void this.exited.then(() => {
      for (const [, p] of this.pending) p.reject(new Error(`riverside ${label} exited; stderr:\n${this.stderr.join("").slice(-3000)}`))
      this.pending.clear()
      this.wake()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr.push(chunk.toString("utf8"))
      if (this.stderr.length > 500) this.stderr.shift()
    })
    createInterface({ input: child.stdout }).on("line", (line) => this.onLine(line))
  }

  /** Starts `riverside serve` on a database and schema; resolves once it serves. */
  static async start(url: string, schema: string, label = "river"): Promise<Riverside> {
    const child = spawn(inject("RIVERSIDE_BIN"), ["serve", "--database-url", url, "--schema", schema], {
      stdio: ["pipe", "pipe", "pipe"]
    })
    const side = new Riverside(child, label)
    all.add(side)
    void side.exited.then(() => all.delete(side))
    await side.waitForEvent((e) => e.event === "ready", "ready", 30_000)
    return side
  }

  private wake() {
    for (const waiter of this.waiters) waiter()
  }

  private onLine(line: string) {
    let message: Record<string, unknown>
    try {
      message = Json.parse(line) as Record<string, unknown>
    } catch {
      this.stderr.push(`(unparsable stdout line) ${line}\n`)
      return
    }
    if (typeof message.id === "number" && "ok" in message) {
      const waiter = this.pending.get(message.id)
      this.pending.delete(message.id)
      if (waiter === undefined) return
      if (message.ok === true) waiter.resolve(message.result)
      else waiter.reject(new Error(`riverside ${this.label} ${waiter.cmd}: ${String(message.error)}`))
      return
    }
    this.events.push(message as RiverEvent)
    this.wake()
  }

  /** Sends a command; resolves with its result, rejects with River's error. */
  call<T = Record<string, unknown>>(cmd: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, cmd })
      this.child.stdin.write(`${Json.stringify({ id, cmd, params })}\n`)
    })
  }

  /** Waits for an event at or after index `from` matching `predicate`. */
  waitForEvent(predicate: (event: RiverEvent) => boolean, label: string, timeoutMs = 60_000, from = 0): Promise<RiverEvent> {
    return new Promise((resolve, reject) => {
      let seen = from
      const check = () => {
        for (; seen < this.events.length; seen++) {
          const event = this.events[seen]!
          if (predicate(event)) {
            done()
            resolve(event)
            return
          }
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done()
          reject(new Error(`riverside ${this.label} exited while waiting for ${label}; stderr:\n${this.stderr.join("").slice(-3000)}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for River event: ${label}; stderr:\n${this.stderr.join("").slice(-3000)}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Waits for a Go worker to start an attempt of job `id` (attempt number optional). */
  async waitForWork(id: bigint, attempt?: number, timeoutMs = 60_000): Promise<WorkEvent> {
    const event = await this.waitForEvent(
      (e) =>
        e.event === "work" && (e.job as Record<string, unknown>).id === id.toString() &&
        (attempt === undefined || (e.job as Record<string, unknown>).attempt === attempt),
      `work on job ${id}${attempt === undefined ? "" : ` attempt ${attempt}`}`,
      timeoutMs
    )
    return toWork(event)
  }

  /** Every `work` event so far. */
  works(): ReadonlyArray<WorkEvent> {
    return this.events.filter((e) => e.event === "work").map(toWork)
  }

  /** Waits for River's own subscription event (`job_completed`, …) about job `id`. */
  async waitForRiverEvent(kind: string, id: bigint, timeoutMs = 60_000): Promise<RiverJob> {
    const event = await this.waitForEvent(
      (e) => e.event === "river" && e.kind === kind && (e.job as Record<string, unknown> | null)?.id === id.toString(),
      `${kind} of job ${id}`,
      timeoutMs
    )
    return toRiverJob(event.job as Record<string, unknown>)
  }

  async insert(kind: string, args: unknown, opts?: RiverInsertOpts, tx?: { readonly rollback?: boolean }) {
    const result = await this.call<{ job: Record<string, unknown>; skipped_as_duplicate: boolean }>("insert", {
      kind,
      args: argsValue(args),
      ...(opts === undefined ? {} : { opts }),
      ...(tx === undefined ? {} : { tx: true, rollback: tx.rollback === true })
    })
    return { job: toRiverJob(result.job), skippedAsDuplicate: result.skipped_as_duplicate }
  }

  async insertMany(jobs: ReadonlyArray<RiverInsert>, options: { readonly tx?: boolean } = {}) {
    const result = await this.call<{ results: ReadonlyArray<{ job: Record<string, unknown>; skipped_as_duplicate: boolean }> }>(
      "insert_many",
      { jobs: jobs.map((j) => ({ ...j, args: argsValue(j.args) })), tx: options.tx === true }
    )
    return result.results.map((r) => ({ job: toRiverJob(r.job), skippedAsDuplicate: r.skipped_as_duplicate }))
  }

  /** InsertManyFast (COPY): returns only the count, like River. */
  async insertManyFast(jobs: ReadonlyArray<RiverInsert>, options: { readonly tx?: boolean } = {}) {
    const result = await this.call<{ count: number }>("insert_many", {
      jobs: jobs.map((j) => ({ ...j, args: argsValue(j.args) })),
      fast: true,
      tx: options.tx === true
    })
    return result.count
  }

  private async jobCommand(cmd: string, id: bigint) {
    const result = await this.call<{ job?: Record<string, unknown>; not_found?: boolean; called_at_unix_ns?: string }>(cmd, {
      id: id.toString()
    })
    if (result.not_found === true) return { job: undefined, calledAtMillis: Number.NaN }
    return { job: toRiverJob(result.job!), calledAtMillis: Number(BigInt(result.called_at_unix_ns!) / 1000n) / 1000 }
  }

  /** `JobGet`; undefined when River says not found. */
  async get(id: bigint) {
    return (await this.jobCommand("get", id)).job
  }

  /** `JobCancel`, with the time River was called (ms, fractional). */
  cancel(id: bigint) {
    return this.jobCommand("cancel", id)
  }

  async retry(id: bigint) {
    return (await this.jobCommand("retry", id)).job
  }

  /** Starts River's working client (queues, workers, leader election, maintenance). */
  start(options: RiverStartOptions) {
    return this.call<{ id: string }>("start", { fetch_cooldown_ms: 20, fetch_poll_interval_ms: 500, ...options })
  }

  /** `Client.Stop` (or `StopAndCancel`): a graceful stop that resigns leadership. */
  stop(options: { readonly cancel?: boolean; readonly timeout_ms?: number } = {}) {
    return this.call("stop", options)
  }

  queuePause(queue: string) {
    return this.call("queue_pause", { queue })
  }

  queueResume(queue: string) {
    return this.call("queue_resume", { queue })
  }

  queueGet(queue: string) {
    return this.call<{ name: string; paused_at: string | null; metadata: string }>("queue_get", { queue })
  }

  /** Ends the process at once (no stop, no resign): a crashed Go service. */
  async kill() {
    this.child.kill("SIGKILL")
    await this.exited
  }

  /** Closes stdin (riverside stops its client) and waits; SIGKILL after 15 s. */
  async close() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.stdin.end()
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000)
    await this.exited
    clearTimeout(timer)
  }
}

const toWork = (event: RiverEvent): WorkEvent => ({
  job: toRiverJob(event.job as Record<string, unknown>),
  decoded: event.decoded as string,
  facts: (event.facts as Record<string, unknown> | null) ?? null,
  atMillis: Number(BigInt(event.at_unix_ns as string) / 1000n) / 1000
})

const all = new Set<Riverside>()

/** Kills every riverside process still running (afterAll of each file). */
export const killAll = async () => {
  await Promise.all([...all].map((side) => side.kill()))
}
