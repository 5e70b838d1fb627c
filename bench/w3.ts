/**
 * W3, cancellation latency: how long after `client.cancel(id)` is called does a job running in
 * another process get interrupted?
 *
 * - **effect-river**: a `Runner` in a child process (bench/w3-runner.ts: own connection pool,
 *   one queue, maxWorkers 50, job timeout none) works a kind whose job is `Effect.never` with an
 *   `onInterrupt` that reports `performance.timeOrigin + performance.now()` over IPC. The parent
 *   (own pool) inserts 20 such jobs, waits until all 20 have started, then cancels them one at a
 *   time with `client.cancel(id)`. One sample: from just before the cancel call to the time the
 *   child took in `onInterrupt`. The path: River's cancel statement (`jobCancel`: row lock,
 *   `metadata.cancel_attempted_at`, `pg_notify` on `river_control`) → commit → the runner's LISTEN
 *   connection → control parsing → producer interrupt → job fiber interrupted → `onInterrupt`.
 * - **raw ceiling**: the same process split with nothing around it: a child
 *   (bench/w3-ceiling-child.ts) LISTENs on a channel (`PgClient.listen`) and, for a notification
 *   naming one of its 20 "jobs" (fibers running `Effect.never`), interrupts that fiber from the
 *   LISTEN fiber; the parent sends one statement per cancel straight through the driver
 *   (`PgClient.unsafe`): `UPDATE river_job SET metadata = jsonb_set(…)` on a running row +
 *   `pg_notify` of the same payload shape.
 *
 * Both children run side by side; after 5 warm-up cancels each, the 20 samples of each alternate
 * (library, ceiling, ceiling, library, …). The next cancel waits for the previous interruption
 * and, for the library, for the runner's `cancelled` event (the completion write committed), so
 * no sample overlaps another commit of the benchmark. Also reported: the cancel call alone
 * (statement + commit) and the clock offset between the processes (IPC ping, best of 30): times
 * from two processes are compared, so the children's times are moved onto the parent's clock by
 * that offset before any difference is taken.
 *
 * Competitors (issue 16), after the samples above, on their own databases:
 *
 * - **pg-boss**: its workers abort a running job's `signal` when a heartbeat finds the job no
 *   longer active, and a queue has no heartbeat by default, so at its defaults a cancel never
 *   reaches a running job. Tuned: queue `heartbeatSeconds` 10 (the minimum) and workers'
 *   `heartbeatRefreshSeconds` 0.25; the worker runs in this process, a second instance (own pool)
 *   cancels; one sample runs from just before `cancel` to the abort event.
 * - **graphile-worker** cannot cancel a running job (it has no cancel API; removing a locked job
 *   does not reach its task): printed as impossible.
 *
 * With `diagnose: true` both children also report when the notification's bytes reached their
 * process (a probe on socket `data` events, before the driver parses them), which splits each
 * sample into "delivery" (statement, commit, notification) and "the child's own path".
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Schema } from "effect"
import { type ChildProcess, fork } from "node:child_process"
import { Socket } from "node:net"
import { fileURLToPath } from "node:url"
import * as Client from "../src/Client.ts"
import * as JobKind from "../src/JobKind.ts"
import { makePgBoss } from "./contenders/pgboss.ts"
import { step, track } from "./guard.ts"
import { benchDatabase, fmt, percentile } from "./util.ts"

/** The job kind the runner child works: a job that runs until it is interrupted. */
export const W3Job = JobKind.make("bench_w3_forever", {
  args: Schema.Struct({ i: Schema.Int })
})

export const W3_RUNNER_SETTINGS = { maxWorkers: 50, maxConnections: 10 } as const

const SCHEMA = "public"
const CEILING_QUEUE = "w3_ceiling"
const CEILING_CHANNEL = "w3_ceiling_control"

/** Wall-clock time in ms with sub-ms resolution, comparable across processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now()

/**
 * Diagnostics for a child process: reports when a cancel notification's bytes reach the process,
 * before the driver or any fiber sees them. Every socket `data` event is checked for a
 * NotificationResponse (`A`) naming a `job_id`; called once, before the PgClient connects.
 */
export const installNotificationProbe = (report: (id: string, at: number) => void): void => {
  const emit = Socket.prototype.emit as (this: Socket, event: string | symbol, ...args: Array<any>) => boolean
  Socket.prototype.emit = function(this: Socket, event: string | symbol, ...args: Array<any>) {
    if (event === "data" && Buffer.isBuffer(args[0]) && args[0].includes(0x41)) {
      const at = now()
      const text = args[0].toString("latin1")
      for (const match of text.matchAll(/"job_id"\s*:\s*(\d+)/g)) report(match[1]!, at)
    }
    return emit.call(this, event, ...args)
  } as typeof Socket.prototype.emit
}

export type ChildMessage =
  | { readonly type: "ready"; readonly pid: number }
  | { readonly type: "started"; readonly id: string; readonly at: number }
  | { readonly type: "interrupted"; readonly id: string; readonly at: number }
  | { readonly type: "completed"; readonly id: string; readonly kind: string; readonly at: number }
  | { readonly type: "notified"; readonly id: string; readonly at: number }
  | { readonly type: "armed"; readonly ids: ReadonlyArray<string> }
  | { readonly type: "pong"; readonly seq: number; readonly at: number }

export type ParentMessage =
  | { readonly type: "ping"; readonly seq: number }
  | { readonly type: "arm"; readonly ids: ReadonlyArray<string> }
  | { readonly type: "stop" }

type Of<T extends ChildMessage["type"]> = Extract<ChildMessage, { readonly type: T }>

interface Waiter {
  readonly match: (m: ChildMessage) => boolean
  readonly resolve: (m: ChildMessage) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

/** A forked child and its messages (buffered until asked for). */
class Child {
  readonly proc: ChildProcess
  private readonly inbox: Array<ChildMessage> = []
  private readonly waiters = new Set<Waiter>()
  private exit: Error | undefined
  private readonly exited: Promise<void>
  readonly name: string

  constructor(name: string, script: string, args: ReadonlyArray<string>) {
    this.name = name
    this.proc = track(fork(fileURLToPath(new URL(script, import.meta.url)), [...args], {
      execPath: process.execPath,
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    }))
    this.proc.on("message", (m: ChildMessage) => {
      for (const w of this.waiters) {
        if (w.match(m)) {
          this.waiters.delete(w)
          clearTimeout(w.timer)
          w.resolve(m)
          return
        }
      }
      this.inbox.push(m)
    })
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exit = new Error(`${name} exited (code ${code}, signal ${signal})`)
        for (const w of this.waiters) {
          clearTimeout(w.timer)
          w.reject(this.exit)
        }
        this.waiters.clear()
        resolve()
      })
    })
  }

  /** The next message of a type (and matching `pred`), buffered or yet to come. */
  next<T extends ChildMessage["type"]>(
    type: T,
    pred: (m: Of<T>) => boolean = () => true,
    timeoutMillis = 10_000
  ): Promise<Of<T>> {
    const match = (m: ChildMessage) => m.type === type && pred(m as Of<T>)
    const i = this.inbox.findIndex(match)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Of<T>)
    if (this.exit !== undefined) return Promise.reject(this.exit)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (m) => resolve(m as Of<T>),
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter)
          reject(new Error(`${this.name}: no "${type}" message within ${timeoutMillis} ms`))
        }, timeoutMillis)
      }
      this.waiters.add(waiter)
    })
  }

  send(message: ParentMessage): void {
    this.proc.send(message)
  }

  async stop(): Promise<void> {
    if (this.exit !== undefined) return
    try {
      this.send({ type: "stop" })
    } catch {
      // channel already closed
    }
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** Offset of the child's clock against ours (child − parent), from the fastest of `n` IPC pings. */
const clockOffset = async (child: Child, n = 30): Promise<{ offset: number; rtt: number }> => {
  let best = { offset: 0, rtt: Number.POSITIVE_INFINITY }
  for (let seq = 0; seq < n; seq++) {
    const t0 = now()
    child.send({ type: "ping", seq })
    const pong = await child.next("pong", (m) => m.seq === seq)
    const t1 = now()
    if (t1 - t0 < best.rtt) best = { offset: pong.at - (t0 + t1) / 2, rtt: t1 - t0 }
  }
  return best
}

export interface Percentiles {
  readonly p50: number
  readonly p95: number
  readonly max: number
}

const summarize = (xs: ReadonlyArray<number>): Percentiles => ({
  p50: percentile(xs, 50),
  p95: percentile(xs, 95),
  max: Math.max(...xs)
})

export interface W3Options {
  readonly samples?: number
  readonly warmup?: number
  /** Also time the notification's arrival in the runner process (second LISTEN connection). */
  readonly diagnose?: boolean
}

export interface Diagnosis {
  /** Cancel call start → notification bytes read in the child. */
  readonly notified: Percentiles
  /** Notification bytes read → `onInterrupt` ran (the child's own path). */
  readonly notifiedToInterrupted: Percentiles
  /** Cancel call returned → notification bytes read (negative: the child had it first). */
  readonly callReturnToNotified: Percentiles
}

export interface W3Figures {
  readonly samples: number
  readonly warmup: number
  readonly settings: string
  readonly library: Percentiles
  readonly ceiling: Percentiles
  /** The cancel call alone (until it returned). */
  readonly libraryCall: Percentiles
  readonly ceilingCall: Percentiles
  /** Cancel call returned → onInterrupt (negative: the child was interrupted before the call returned). */
  readonly libraryAfterCall: Percentiles
  readonly ceilingAfterCall: Percentiles
  /** Child clock − parent clock, ms, and the round trip of the ping that measured it. */
  readonly clock: {
    readonly runner: { offset: number; rtt: number }
    readonly ceiling: { offset: number; rtt: number }
  }
  /** With `diagnose`: cancel call → notification bytes in the child process → onInterrupt. */
  readonly diagnosis?: { readonly library: Diagnosis; readonly ceiling: Diagnosis }
  /** pg-boss, tuned (heartbeats); at its defaults a running job is never told. */
  readonly pgboss: { readonly settings: string; readonly samples: number; readonly latency: Percentiles }
  /** Raw samples (ms), in cancel order. */
  readonly raw: { readonly library: ReadonlyArray<number>; readonly ceiling: ReadonlyArray<number> }
}

/** The ceiling's one statement: River's metadata mark plus a control-shaped notification. */
const ceilingSql = `WITH updated AS (
  UPDATE "${SCHEMA}".river_job SET metadata = jsonb_set(metadata, '{cancel_attempted_at}', to_jsonb($2::text))
  WHERE id = $1 RETURNING id, queue
)
SELECT pg_notify($3, json_build_object('action', 'cancel', 'job_id', id, 'queue', queue)::text) FROM updated`

export const runW3 = async (serverUrl: string, options: W3Options = {}): Promise<W3Figures> => {
  const samples = options.samples ?? 20
  const warmup = options.warmup ?? 5
  const diagnose = options.diagnose ?? false
  const { url, layer } = await benchDatabase(serverUrl, "bench_w3", 4)

  const diag = diagnose ? ["diag"] : []
  step("w3: starting the runner and ceiling children")
  const runner = new Child("w3-runner", "./w3-runner.ts", [url, SCHEMA, ...diag])
  const ceiling = new Child("w3-ceiling-child", "./w3-ceiling-child.ts", [url, CEILING_CHANNEL, ...diag])
  try {
    await Promise.all([runner.next("ready", undefined, 30_000), ceiling.next("ready", undefined, 30_000)])
    const clock = { runner: await clockOffset(runner), ceiling: await clockOffset(ceiling) }
    // A child's timestamps on this process's clock. The processes' clocks (time origin + monotonic
    // time) can disagree by milliseconds (20.7 ms in one run), which every sample would carry.
    const onOurClock = (offset: { readonly offset: number }) => (at: number) => at - offset.offset
    const fromRunner = onOurClock(clock.runner)
    const fromCeiling = onOurClock(clock.ceiling)

    const program = Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const client = yield* Client.make({ schema: SCHEMA })
      const wait = <A>(p: () => Promise<A>) => Effect.promise(p)

      /** Inserts `n` forever-jobs for the runner and waits until every one has started. */
      const startLibraryJobs = (n: number, from: number) =>
        Effect.gen(function*() {
          const results = yield* client.insertMany(Array.from({ length: n }, (_, i) => W3Job.of({ i: from + i })))
          const ids = results.map((r) => r.job.id)
          yield* wait(() => Promise.all(ids.map((id) => runner.next("started", (m) => m.id === String(id)))))
          return ids
        })

      /** Inserts `n` rows marked running for the ceiling and arms one fiber per row in its child. */
      const startCeilingJobs = (n: number, from: number) =>
        Effect.gen(function*() {
          const results = yield* client.insertMany(
            Array.from({ length: n }, (_, i) => W3Job.of({ i: from + i }, { queue: CEILING_QUEUE }))
          )
          const ids = results.map((r) => r.job.id)
          yield* sql`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now(),
            attempted_by = ARRAY['w3-ceiling'] WHERE id = ANY(${ids})`
          ceiling.send({ type: "arm", ids: ids.map(String) })
          yield* wait(() => ceiling.next("armed"))
          yield* wait(() => Promise.all(ids.map((id) => ceiling.next("started", (m) => m.id === String(id)))))
          return ids
        })

      const cancelLibrary = (id: bigint) =>
        Effect.gen(function*() {
          const key = String(id)
          const t0 = now()
          const row = yield* client.cancel(id)
          const t1 = now()
          const interrupted = { at: fromRunner((yield* wait(() => runner.next("interrupted", (m) => m.id === key))).at) }
          const notified = diagnose
            ? { at: fromRunner((yield* wait(() => runner.next("notified", (m) => m.id === key))).at) }
            : undefined
          const completed = yield* wait(() => runner.next("completed", (m) => m.id === key))
          if (row.state !== "running" || completed.kind !== "cancelled") {
            return yield* Effect.die(new Error(`w3: job ${key}: state ${row.state} at cancel, outcome ${completed.kind}`))
          }
          return {
            latency: interrupted.at - t0,
            call: t1 - t0,
            afterCall: interrupted.at - t1,
            notified: notified === undefined ? undefined : notified.at - t0,
            returnToNotified: notified === undefined ? undefined : notified.at - t1,
            notifiedToInterrupted: notified === undefined ? undefined : interrupted.at - notified.at
          }
        })

      const cancelCeiling = (id: bigint) =>
        Effect.gen(function*() {
          const key = String(id)
          const t0 = now()
          const rows = yield* sql.unsafe(ceilingSql, [id, new Date().toISOString(), CEILING_CHANNEL])
          const t1 = now()
          const interrupted = { at: fromCeiling((yield* wait(() => ceiling.next("interrupted", (m) => m.id === key))).at) }
          const notified = diagnose
            ? { at: fromCeiling((yield* wait(() => ceiling.next("notified", (m) => m.id === key))).at) }
            : undefined
          if (rows.length !== 1) return yield* Effect.die(new Error(`w3: ceiling row ${key} not updated`))
          return {
            latency: interrupted.at - t0,
            call: t1 - t0,
            afterCall: interrupted.at - t1,
            notified: notified === undefined ? undefined : notified.at - t0,
            returnToNotified: notified === undefined ? undefined : notified.at - t1,
            notifiedToInterrupted: notified === undefined ? undefined : interrupted.at - notified.at
          }
        })

      const pause = Effect.sleep("20 millis")

      // Warm-up: prepared statements, JIT, the runner's control path.
      step("w3: warm-up cancels")
      for (const id of yield* startLibraryJobs(warmup, 0)) {
        yield* cancelLibrary(id)
        yield* pause
      }
      for (const id of yield* startCeilingJobs(warmup, 0)) {
        yield* cancelCeiling(id)
        yield* pause
      }

      const libraryIds = yield* startLibraryJobs(samples, warmup)
      const ceilingIds = yield* startCeilingJobs(samples, warmup)
      yield* Effect.sleep("200 millis") // let the start-up writes settle
      step("w3: samples")
      const libSamples: Array<{
        latency: number
        call: number
        afterCall: number
        notified: number | undefined
        returnToNotified: number | undefined
        notifiedToInterrupted: number | undefined
      }> = []
      const rawSamples: typeof libSamples = []
      for (let i = 0; i < samples; i++) {
        if (i % 2 === 0) {
          libSamples.push(yield* cancelLibrary(libraryIds[i]!))
          yield* pause
          rawSamples.push(yield* cancelCeiling(ceilingIds[i]!))
          yield* pause
        } else {
          rawSamples.push(yield* cancelCeiling(ceilingIds[i]!))
          yield* pause
          libSamples.push(yield* cancelLibrary(libraryIds[i]!))
          yield* pause
        }
      }

      const [{ n }] = (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM river_job
        WHERE kind = ${W3Job.kind} AND queue = 'default' AND state = 'cancelled'`) as [{ n: number }]
      if (n !== samples + warmup) return yield* Effect.die(new Error(`w3: expected ${samples + warmup} cancelled jobs, found ${n}`))

      const diagnose_ = (xs: typeof libSamples) => ({
        notified: summarize(xs.map((s) => s.notified!)),
        notifiedToInterrupted: summarize(xs.map((s) => s.notifiedToInterrupted!)),
        callReturnToNotified: summarize(xs.map((s) => s.returnToNotified!))
      })
      const diagnosis = diagnose ? { library: diagnose_(libSamples), ceiling: diagnose_(rawSamples) } : undefined
      return {
        samples,
        warmup,
        settings: `runner process: one queue, maxWorkers ${W3_RUNNER_SETTINGS.maxWorkers}, jobTimeout none, ` +
          `pool ${W3_RUNNER_SETTINGS.maxConnections}, other settings default (cancelCheckInterval 5 s); ` +
          `parent: Client (schema ${SCHEMA}), pool 4; ${warmup} warm-up cancels each, samples alternate`,
        library: summarize(libSamples.map((s) => s.latency)),
        ceiling: summarize(rawSamples.map((s) => s.latency)),
        libraryCall: summarize(libSamples.map((s) => s.call)),
        ceilingCall: summarize(rawSamples.map((s) => s.call)),
        libraryAfterCall: summarize(libSamples.map((s) => s.afterCall)),
        ceilingAfterCall: summarize(rawSamples.map((s) => s.afterCall)),
        clock,
        ...(diagnosis === undefined ? {} : { diagnosis }),
        raw: { library: libSamples.map((s) => s.latency), ceiling: rawSamples.map((s) => s.latency) }
      } satisfies Omit<W3Figures, "pgboss">
    })

    const figures = await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer)))
    await Promise.all([runner.stop(), ceiling.stop()])
    step("w3: pg-boss cancels")
    const pgboss = await makePgBoss(serverUrl, "bench_w3_pgboss")
    try {
      const heartbeatRefreshSeconds = 0.25
      await pgboss.cancel({ n: warmup, heartbeatRefreshSeconds })
      const xs = await pgboss.cancel({ n: samples, heartbeatRefreshSeconds })
      return {
        ...figures,
        pgboss: {
          settings: `queue heartbeatSeconds 10, work heartbeatRefreshSeconds ${heartbeatRefreshSeconds}, localConcurrency ${samples}`,
          samples: xs.length,
          latency: summarize(xs)
        }
      }
    } finally {
      await pgboss.close()
    }
  } finally {
    await Promise.all([runner.stop(), ceiling.stop()])
  }
}

export const printW3 = (f: W3Figures) => {
  const row = (label: string, p: Percentiles) =>
    `  ${label.padEnd(34)}${[p.p50, p.p95, p.max].map((x) => fmt(x, 2).padStart(8)).join("")}  ms`
  console.log(`\n## w3: cancel a running job in another process, ${f.samples} cancels one at a time; cancel call -> onInterrupt`)
  console.log(`  settings: ${f.settings}`)
  console.log(`  ${"".padEnd(34)}${["p50", "p95", "max"].map((h) => h.padStart(8)).join("")}`)
  console.log(row("effect-river (client.cancel)", f.library))
  console.log(row("raw ceiling (UPDATE+pg_notify)", f.ceiling))
  console.log(row("  cancel call, effect-river", f.libraryCall))
  console.log(row("  cancel call, ceiling", f.ceilingCall))
  console.log(row("  call returned -> onInterrupt, ours", f.libraryAfterCall))
  console.log(row("  call returned -> onInterrupt, ceil.", f.ceilingAfterCall))
  if (f.diagnosis !== undefined) {
    for (const [label, d] of [["effect-river", f.diagnosis.library], ["ceiling", f.diagnosis.ceiling]] as const) {
      console.log(row(`  ${label}: call -> notif. bytes`, d.notified))
      console.log(row(`  ${label}: call ret. -> bytes`, d.callReturnToNotified))
      console.log(row(`  ${label}: bytes -> onInterrupt`, d.notifiedToInterrupted))
    }
  }
  console.log(
    `  ${"p50 difference".padEnd(34)}${fmt(f.library.p50 - f.ceiling.p50, 2).padStart(8)}  ms  ` +
      `(issue 16 goal <= 1 ms; max goal <= 15 ms: ${f.library.max <= 15 ? "met" : "missed"})`
  )
  console.log(row("pg-boss, tuned (heartbeats)", f.pgboss.latency) + `   [${f.pgboss.settings}]`)
  console.log(`  ${"pg-boss, defaults".padEnd(34)}   never  (no heartbeat by default: a running job is not told)`)
  console.log(`  ${"graphile-worker".padEnd(34)}impossible  (no way to cancel a running job)`)
  console.log(`  ${"pg-boss / effect-river, p50".padEnd(34)}${(f.pgboss.latency.p50 / f.library.p50).toFixed(1).padStart(8)}×`)
  console.log(
    `  clock offset child - parent: runner ${fmt(f.clock.runner.offset, 3)} ms (ping rtt ${fmt(f.clock.runner.rtt, 3)}), ` +
      `ceiling ${fmt(f.clock.ceiling.offset, 3)} ms (rtt ${fmt(f.clock.ceiling.rtt, 3)})`
  )
}
