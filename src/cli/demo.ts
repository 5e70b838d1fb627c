/**
 * `effect-river demo`: the runtime at work on a tiny online shop, in a few seconds.
 *
 * Every scenario below is a job kind, its worker and the jobs it inserts; together they show the
 * ways an attempt can end:
 *
 * - `demo_send_confirmation` succeeds;
 * - `demo_charge_card` fails on its first attempt and succeeds when retried a second later;
 * - `demo_generate_invoice` snoozes once (no attempt used), then succeeds;
 * - `demo_ship_order` cancels itself with `JobCancel`;
 * - `demo_export_report` runs for a long time until the client cancels it (`client.cancel`): its
 *   fiber is interrupted, its finalizer closes the file it holds, and it ends `cancelled`
 *   ("job cancelled remotely");
 * - `demo_import_stock` is a resumable pipeline (download → transform → load, each a
 *   `Resumable.step`) whose transform fails on attempt 1: the retry resumes from the checkpoint
 *   and skips the download.
 *
 * Workers note what their rows do not record (a step that ran, a finalizer) in a {@link Journal}
 * the demo provides to the runner: the notes appear in the log and below the summary.
 *
 * The demo migrates its own schema (`effect_river_demo`), empties it, starts a runner, inserts the
 * jobs, prints each outcome as the runner publishes it and the job counts by state (refreshed in
 * place on a terminal), stops the runner gracefully once every job is final, and prints a summary
 * per kind. Without `--database-url` / `DATABASE_URL` it runs on an embedded PostgreSQL kept in
 * `./.demo-pg`, so the second run starts much faster than the first.
 *
 * To add a scenario, define a job kind and its worker and append a {@link Scenario} to
 * `scenarios`: its `start` runs while the runner works, so it can also act on its jobs later
 * (cancel one from the client, wait for something, insert more).
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SqlClient from "effect/sql/SqlClient"
import { resolve } from "node:path"
import type * as Client from "../Client.ts"
import type { JobRow, JobState } from "../Job.ts"
import type { JobEvent } from "../JobEvent.ts"
import * as JobKind from "../JobKind.ts"
import * as Migrator from "../Migrator.ts"
import * as Resumable from "../Resumable.ts"
import * as Runner from "../Runner.ts"
import * as Worker from "../Worker.ts"
import { JobCancel, JobSnooze } from "../Worker.ts"
import * as Command from "effect/cli/Command"
import { startEmbeddedPostgres } from "./embeddedPostgres.ts"
import { CliError, connection } from "./command.ts"

/** The demo's own schema: it never touches River's tables elsewhere in the database. */
const SCHEMA = "effect_river_demo"
/** Where the embedded PostgreSQL keeps its data between runs (git-ignored). */
const DATA_DIR = ".demo-pg"
/** The demo fails if its jobs are not all final by then. */
const DEADLINE = Duration.seconds(45)

// ---------------------------------------------------------------------------------------------
// The journal: what workers do that their rows do not record
// ---------------------------------------------------------------------------------------------

/** A note a worker made during one attempt of a job. */
interface JournalEntry {
  readonly jobId: bigint
  readonly attempt: number
  readonly text: string
}

/**
 * Where workers note what their rows do not record (a step that ran, a finalizer). The demo prints
 * each note in its log as it comes and lists them below the summary. (Workers may need services:
 * the runner's workers get the ones provided around `Runner.make`, as this one is.)
 */
class Journal extends Context.Service<Journal, {
  readonly record: (job: Pick<JobRow, "id" | "kind" | "attempt">, text: string) => Effect.Effect<void>
  readonly entries: Effect.Effect<ReadonlyArray<JournalEntry>>
}>()("effect-river/demo/Journal") {}

/** `attempt 1: download ✓, transform ✗; attempt 2: transform ✓, load ✓`. */
const describeAttempts = (entries: ReadonlyArray<JournalEntry>): string => {
  const attempts = distinct(entries.map((e) => e.attempt))
  return attempts
    .map((attempt) => `attempt ${attempt}: ${entries.filter((e) => e.attempt === attempt).map((e) => e.text).join(", ")}`)
    .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Job kinds and workers
// ---------------------------------------------------------------------------------------------

const OrderArgs = Schema.Struct({ orderId: Schema.Int })

const SendConfirmation = JobKind.make("demo_send_confirmation", { args: OrderArgs })
const ChargeCard = JobKind.make("demo_charge_card", { args: OrderArgs })
const GenerateInvoice = JobKind.make("demo_generate_invoice", { args: OrderArgs })
const ShipOrder = JobKind.make("demo_ship_order", { args: OrderArgs })

/** Sending an email takes a moment, then succeeds. */
const sendConfirmation = Worker.make(SendConfirmation, () => Effect.sleep("300 millis"))

/** A worker's own error: any failure other than `JobCancel` / `JobSnooze` means "retry". */
class PaymentGatewayBusy extends Data.TaggedError("PaymentGatewayBusy")<{ readonly orderId: number }> {
  override get message(): string {
    return `gateway busy while charging order ${this.orderId}`
  }
}

/** The first attempt fails; the retry, one second later, succeeds. */
const chargeCard = Worker.make(
  ChargeCard,
  (job) =>
    Effect.gen(function*() {
      if (job.attempt === 1) return yield* new PaymentGatewayBusy({ orderId: job.args.orderId })
      yield* Effect.sleep("200 millis")
    }),
  // River's default backoff is (errors + 1)^4 seconds; one second keeps the demo short.
  { retryPolicy: () => "1 second" }
)

/** Not ready on the first run: snoozes for a second (the attempt is given back), then succeeds. */
const generateInvoice = Worker.make(GenerateInvoice, (job) =>
  Effect.gen(function*() {
    if (job.metadata.snoozes === undefined) return yield* JobSnooze.of("1 second")
    yield* Effect.sleep("200 millis")
  }))

/** The order was withdrawn: cancels the job for good, whatever attempts remain. */
const shipOrder = Worker.make(ShipOrder, (job) => JobCancel.of(`order ${job.args.orderId} was withdrawn by the customer`))

const ExportReport = JobKind.make("demo_export_report", { args: Schema.Struct({ month: Schema.String }) })

/** A full export writes this many chunks, 100 ms each: far longer than the demo waits for it. */
const EXPORT_CHUNKS = 100

/**
 * A long export, chunk by chunk, holding a file while it runs. When the client cancels the job,
 * the runner interrupts its fiber: `onInterrupt` notes where it stopped, and the file's release
 * runs (as it would however the job ended).
 */
const exportReport = Worker.make(ExportReport, (job) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    yield* Effect.acquireRelease(
      journal.record(job, "export file opened"),
      () => journal.record(job, "cleaned up (export file closed)")
    )
    let written = 0
    yield* Effect.gen(function*() {
      while (written < EXPORT_CHUNKS) {
        yield* Effect.sleep("100 millis")
        written++
      }
    }).pipe(Effect.onInterrupt(() => journal.record(job, `interrupted after ${written} of ${EXPORT_CHUNKS} chunks`)))
  }).pipe(Effect.scoped))

const ImportStock = JobKind.make("demo_import_stock", { args: Schema.Struct({ supplier: Schema.String }) })

class ParserUnavailable extends Data.TaggedError("ParserUnavailable")<{}> {
  override get message(): string {
    return "parser service unavailable"
  }
}

/**
 * A supplier's stock file, imported in three resumable steps. The transform fails on attempt 1;
 * the failed attempt records the last completed step in the job's metadata
 * (`river:resumable_step: "download"`), so the retry skips the download and starts at the
 * transform. (Steps hand nothing to each other across attempts: a real download leaves the file
 * where the transform finds it.)
 */
const importStock = Worker.make(
  ImportStock,
  (job) =>
    Effect.gen(function*() {
      const journal = yield* Journal
      /** A resumable step that notes whether it succeeded (✓) or failed (✗). */
      const step = <E>(name: string, work: Effect.Effect<void, E>) =>
        Resumable.step(name, Effect.onExit(work, (exit) => journal.record(job, `${name} ${Exit.isSuccess(exit) ? "✓" : "✗"}`)))

      yield* step("download", Effect.sleep("100 millis"))
      yield* step(
        "transform",
        Effect.gen(function*() {
          if (job.attempt === 1) return yield* new ParserUnavailable()
          yield* Effect.sleep("100 millis")
        })
      )
      yield* step("load", Effect.sleep("100 millis"))
    }),
  { retryPolicy: () => "1 second" }
)

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/** Polls the job's row until the runner has fetched it. */
const untilRunning = (client: Client.Client["Service"], id: bigint) =>
  Effect.gen(function*() {
    while ((yield* client.get(id)).state !== "running") yield* Effect.sleep("50 millis")
  })

/** What a scenario can use while the runner works. */
interface ScenarioContext {
  readonly client: Client.Client["Service"]
  readonly runner: Runner.Runner["Service"]
  /** Prints a line in the demo's log. */
  readonly note: (text: string) => Effect.Effect<void>
}

/** One thing the demo shows: a kind, its worker, its jobs and the outcome to expect. */
interface Scenario {
  /** The demo's workers need no services but the journal. */
  readonly worker: Worker.Worker<any, any, unknown, Journal>
  /** What the scenario shows, for the log. */
  readonly shows: string
  /** The final state every job of the kind must reach (the demo fails otherwise). */
  readonly expected: JobState
  /** Inserts the scenario's jobs; runs alongside the runner, so it may keep acting on them. */
  readonly start: (context: ScenarioContext) => Effect.Effect<void, { readonly message: string }>
  /**
   * Optional: a line per final job for below the summary, from its row and its journal, and what
   * went wrong beyond its state, if anything (the demo fails then).
   */
  readonly check?: (job: JobRow, journal: ReadonlyArray<JournalEntry>) => {
    readonly line: string
    readonly problem?: string | undefined
  }
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    worker: sendConfirmation,
    shows: "three jobs that succeed",
    expected: "completed",
    start: ({ client }) => client.insertMany([1, 2, 3].map((orderId) => SendConfirmation.of({ orderId })))
  },
  {
    worker: chargeCard,
    shows: "a job that fails, then succeeds on its retry",
    expected: "completed",
    start: ({ client }) => client.insert(ChargeCard, { orderId: 1 })
  },
  {
    worker: generateInvoice,
    shows: "a job that snoozes for a second, then succeeds",
    expected: "completed",
    start: ({ client }) => client.insert(GenerateInvoice, { orderId: 1 })
  },
  {
    worker: shipOrder,
    shows: "a job that cancels itself",
    expected: "cancelled",
    start: ({ client }) => client.insert(ShipOrder, { orderId: 2 })
  },
  {
    worker: exportReport,
    shows: "a running job cancelled from the client",
    expected: "cancelled",
    start: ({ client, note }) =>
      Effect.gen(function*() {
        const { job } = yield* client.insert(ExportReport, { month: "2025-06" })
        // Let the export get going, then cancel it: the job is running, so the cancel only marks
        // it, and River's control notification tells the runner that runs it to interrupt it.
        yield* untilRunning(client, job.id)
        yield* Effect.sleep("500 millis")
        const row = yield* client.cancel(job.id)
        yield* note(`client.cancel(${job.id}) returned: still ${row.state}, cancel requested; the runner interrupts it`)
      }),
    check: (job, journal) => {
      const notes = journal.map((e) => e.text)
      const missing = [
        notes.some((t) => t.startsWith("interrupted")) ? [] : ["was not interrupted"],
        notes.some((t) => t.startsWith("cleaned up")) ? [] : ["its finalizer did not run"],
        job.errors.some((e) => e.error === "JobCancelError: job cancelled remotely") ? [] : ["no remote-cancel error recorded"]
      ].flat()
      return { line: describeAttempts(journal), problem: missing.length === 0 ? undefined : missing.join(", ") }
    }
  },
  {
    worker: importStock,
    shows: "a job resuming after a failure (resumable steps)",
    expected: "completed",
    start: ({ client }) => client.insert(ImportStock, { supplier: "acme" }),
    check: (job, journal) => {
      const downloads = journal.filter((e) => e.text.startsWith("download")).length
      const checkpoint = JSON.stringify(job.metadata[Resumable.STEP_KEY] ?? null)
      return {
        line: `${describeAttempts(journal)}; checkpoint ${Resumable.STEP_KEY} = ${checkpoint}`,
        problem: downloads === 1 ? undefined : `downloaded ${downloads} times (the retry must skip the download)`
      }
    }
  }
]

// ---------------------------------------------------------------------------------------------
// Terminal output
// ---------------------------------------------------------------------------------------------

/**
 * A log plus one live status line. On a terminal the status line is rewritten in place and log
 * lines appear above it; otherwise the status is printed as a plain line whenever it changes.
 */
const makeScreen = (out: NodeJS.WriteStream) => {
  const live = out.isTTY === true
  const clear = "\r\x1b[2K"
  let status = ""
  return {
    line: (text: string) =>
      Effect.sync(() => {
        out.write(live && status !== "" ? `${clear}${text}\n${status}` : `${text}\n`)
      }),
    status: (text: string) =>
      Effect.sync(() => {
        // Cut to the terminal's width: a wrapped line could not be rewritten in place.
        const line = live && out.columns > 1 ? text.slice(0, out.columns - 1) : text
        if (line === status) return
        status = line
        out.write(live ? `${clear}${line}` : `${line}\n`)
      }),
    /** Leaves the status line as it is and moves on. */
    endStatus: Effect.sync(() => {
      if (live && status !== "") out.write("\n")
      status = ""
    })
  }
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`

/** The start of a log line about a job: `  +1.2 s  demo_charge_card #4 `. */
const jobHead = (job: Pick<JobRow, "id" | "kind">, at: number) => `+${seconds(at)}`.padStart(8) + `  ${job.kind} #${job.id}`.padEnd(30)

/** One log line per job event, e.g. `+1.2 s  demo_charge_card #4  failed (attempt 1): …`. */
const describeEvent = (event: JobEvent, at: number): string => {
  const job = event.job
  const head = jobHead(job, at)
  const inAbout = (date: Date) => seconds(Math.max(0, date.getTime() - Date.now()))
  switch (event.kind) {
    case "completed":
      return `${head} completed (attempt ${job.attempt})`
    case "failed":
      return job.state === "discarded"
        ? `${head} failed (attempt ${job.attempt}): ${event.error}; no attempt left, discarded`
        : `${head} failed (attempt ${job.attempt}): ${event.error}; retry in ${inAbout(job.scheduledAt)}`
    case "snoozed":
      return `${head} snoozed; runs again in ${inAbout(job.scheduledAt)} (the attempt is given back)`
    case "cancelled":
      return `${head} cancelled: ${event.error}`
    case "interrupted":
      return `${head} interrupted by the stop; available again`
  }
}

const STATES: ReadonlyArray<JobState> = ["available", "running", "retryable", "scheduled", "completed", "cancelled", "discarded"]
const FINAL: ReadonlySet<string> = new Set(["completed", "cancelled", "discarded"])

/** Job counts by state in the demo schema. */
const countByState = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ state: string; n: number }>(
    `SELECT state::text AS state, count(*)::int AS n FROM "${SCHEMA}".river_job GROUP BY state`
  )
  return new Map(rows.map((r) => [r.state, r.n]))
})

/** `jobs: running 3 · available 2 · completed 1` (states with jobs only). */
const statusLine = (counts: ReadonlyMap<string, number>) => {
  const present = STATES.filter((s) => (counts.get(s) ?? 0) > 0)
  return `jobs: ${present.length === 0 ? "none yet" : present.map((s) => `${s} ${counts.get(s)}`).join(" · ")}`
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/**
 * One row per kind: outcome(s), attempts, snoozes and the errors recorded; then a line per job of
 * the scenarios with a `check` (what its journal says).
 */
const summarize = (jobs: ReadonlyArray<JobRow>, journal: ReadonlyArray<JournalEntry>) => {
  const header = ["kind", "jobs", "outcome", "attempts", "snoozes", "errors"]
  const rows: Array<Array<string>> = []
  const details: Array<string> = []
  const mismatches: Array<string> = []
  for (const scenario of scenarios) {
    const kind = scenario.worker.jobKind.kind
    const ofKind = jobs.filter((j) => j.kind === kind)
    const outcomes = distinct(ofKind.map((j) => j.state))
    const wrong = ofKind.filter((j) => j.state !== scenario.expected)
    if (ofKind.length === 0 || wrong.length > 0) {
      mismatches.push(`${kind}: expected ${scenario.expected}, got ${outcomes.join(", ") || "no job"}`)
    }
    const errors = distinct(ofKind.flatMap((j) => j.errors.map((e) => `attempt ${e.attempt}: ${e.error}`)))
    rows.push([
      kind,
      String(ofKind.length),
      outcomes.join(", "),
      distinct(ofKind.map((j) => String(j.attempt))).join(", "),
      distinct(ofKind.map((j) => String(typeof j.metadata.snoozes === "number" ? j.metadata.snoozes : 0))).join(", "),
      errors.length === 0 ? "-" : errors.join("; ")
    ])
    if (scenario.check === undefined) continue
    for (const job of ofKind) {
      const { line, problem } = scenario.check(job, journal.filter((e) => e.jobId === job.id))
      details.push(`  ${`${kind} #${job.id}`.padEnd(24)}  ${line}`)
      if (problem !== undefined) mismatches.push(`${kind} #${job.id}: ${problem}`)
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const format = (cells: ReadonlyArray<string>) =>
    "  " + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")
  return { lines: [format(header), ...rows.map(format)], details, mismatches }
}

const distinct = <A>(xs: ReadonlyArray<A>): Array<A> => [...new Set(xs)]

// ---------------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------------

const runDemo = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const screen = makeScreen(process.stdout)

  yield* Migrator.up({ schema: SCHEMA })
  // A clean slate on every run (ids start at 1 again).
  yield* sql.unsafe(`TRUNCATE "${SCHEMA}".river_job RESTART IDENTITY`)
  yield* Console.log(`Schema ${SCHEMA} migrated and emptied.\n`)
  for (const s of scenarios) yield* Console.log(`  ${s.worker.jobKind.kind.padEnd(24)}${s.shows}`)
  yield* Console.log("")

  const startedAt = yield* Clock.currentTimeMillis
  const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - startedAt)

  // The workers' journal: each note is printed as it comes and kept for the summary.
  const notes = yield* Ref.make<ReadonlyArray<JournalEntry>>([])
  const journal = Journal.of({
    record: (job, text) =>
      Effect.gen(function*() {
        yield* Ref.update(notes, (all) => [...all, { jobId: job.id, attempt: job.attempt, text }])
        yield* screen.line(`${jobHead(job, yield* elapsed)} attempt ${job.attempt}: ${text}`)
      }),
    entries: Ref.get(notes)
  })

  // The runner lives in a scope of its own: closing it is the graceful stop. (A child of the
  // demo's scope, so Ctrl-C stops the runner gracefully too.)
  const runnerScope = yield* Scope.fork(yield* Scope.Scope)
  const { client, runner } = yield* Runner.make({
    schema: SCHEMA,
    queues: { default: { maxWorkers: 10 } },
    workers: scenarios.map((s) => s.worker),
    // Retries and snoozes due in a second are picked up by polling: poll often.
    fetchPollInterval: "200 millis",
    softStopTimeout: "5 seconds"
  }).pipe(
    // The workers' services, here only the journal.
    Effect.provideService(Journal, journal),
    Scope.provide(runnerScope)
  )

  // Print every outcome as the runner publishes it (after it is written to the database).
  const subscription = yield* runner.subscribe.pipe(Scope.provide(runnerScope))
  yield* Stream.fromSubscription(subscription).pipe(
    Stream.runForEach((event) => Effect.flatMap(elapsed, (at) => screen.line(describeEvent(event, at)))),
    Effect.forkIn(runnerScope)
  )

  // Start every scenario; they run alongside the runner.
  const context: ScenarioContext = { client, runner, note: (text) => screen.line(`          ${text}`) }
  const started = yield* Effect.forEach(scenarios, (s) => Effect.forkIn(s.start(context), runnerScope))

  // Live progress until every scenario is done and every job is final.
  const finished = Effect.gen(function*() {
    while (true) {
      const counts = yield* countByState
      yield* screen.status(statusLine(counts))
      const unfinished = [...counts].filter(([state]) => !FINAL.has(state)).reduce((n, [, c]) => n + c, 0)
      if (unfinished === 0 && started.every((f) => f.pollUnsafe() !== undefined)) return
      for (const fiber of started) {
        const exit = fiber.pollUnsafe()
        if (exit !== undefined && Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
      }
      yield* Effect.sleep("100 millis")
    }
  })
  const done = yield* Effect.timeoutOption(finished, DEADLINE)
  yield* screen.endStatus
  if (done._tag === "None") {
    return yield* new CliError({ message: `the demo's jobs were not all final after ${Duration.format(DEADLINE)}` })
  }

  yield* Console.log(`\nAll jobs final after ${seconds(yield* elapsed)}. Stopping the runner (graceful: no new fetch, running jobs finish)…`)
  const stopAt = yield* Clock.currentTimeMillis
  yield* Scope.close(runnerScope, Exit.void)
  yield* Console.log(`Runner stopped in ${(yield* Clock.currentTimeMillis) - stopAt} ms.\n`)

  const { jobs } = yield* client.list({ limit: 1_000 })
  const summary = summarize(jobs, yield* journal.entries)
  yield* Console.log(`Summary (${jobs.length} jobs):`)
  for (const line of summary.lines) yield* Console.log(line)
  yield* Console.log("\nWhat the workers noted, by attempt:")
  for (const line of summary.details) yield* Console.log(line)
  if (summary.mismatches.length > 0) {
    return yield* new CliError({ message: `unexpected outcomes: ${summary.mismatches.join("; ")}` })
  }
  yield* Console.log("\nEvery outcome as expected.")
})

/** An embedded PostgreSQL in ./.demo-pg for the life of the scope; its URL. */
const embeddedServer = Effect.acquireRelease(
  Effect.gen(function*() {
    const dir = resolve(DATA_DIR)
    yield* Console.log(`No database URL given: starting an embedded PostgreSQL in ${dir} (the first run initialises it)…`)
    return yield* Effect.tryPromise({
      try: () => startEmbeddedPostgres({ dir, persistent: true }),
      // The message says why and what to do (a server an earlier demo left running is stopped first).
      catch: (cause) => new CliError({ message: cause instanceof Error ? cause.message : String(cause) })
    })
  }),
  (server) =>
    Effect.andThen(
      Effect.promise(() => server.stop()),
      Console.log("Embedded PostgreSQL stopped.")
    )
)

/** One line for `effect-river --help`. */
export const summary = "run example workers (success, retry, snooze, cancel, remote cancel, resume) and show their jobs' progress"

/** `effect-river demo`. */
export const demo = Command.make("demo", {}, () =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    if (schema !== undefined) {
      return yield* new CliError({ message: `the demo uses its own schema, ${SCHEMA}; run it without --schema` })
    }
    const given = databaseUrl ?? process.env.DATABASE_URL
    yield* Effect.gen(function*() {
      const url = given !== undefined && given.trim() !== "" ? given : (yield* embeddedServer).url
      // The pool (and the runner inside `demo`) closes before the embedded server stops.
      yield* runDemo.pipe(
        Effect.scoped,
        Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 5 })),
        // The runner's info logs (leader election) would break the live status line.
        Effect.provideService(References.MinimumLogLevel, "Warn")
      )
    }).pipe(Effect.scoped)
  })).pipe(
  Command.withDescription(
    `Runs a runner with six example workers (success, retry after a failure, snooze, cancel, cancel from the client, ` +
      `resume after a failure) on the schema ${SCHEMA}, shows their jobs' progress and prints a summary. Takes a few ` +
      `seconds. Without --database-url or DATABASE_URL, an embedded PostgreSQL is started in ./${DATA_DIR} and kept between runs.`
  )
)
