/**
 * `effect-river jobs list|get|cancel|retry|delete` and `effect-river queues list|pause|resume`:
 * the operator's commands, each one `Client` call, parsed with Effect's CLI module
 * (`effect/cli`).
 *
 * Every command takes `--database-url` (default `$DATABASE_URL`) and `--schema`, as `migrate`
 * does, before or after the subcommand. Output is a table for people, or JSON with `--json` for
 * scripts (ids as strings: they are 64-bit). Bad input (an unknown state, a non-numeric id, no
 * database URL, an unknown job) is one line on stderr and exit code 1, found before any SQL that
 * changes something.
 *
 * Part of the `effect-river` command line (`src/cli/`), an application of the library, not its API.
 */
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Client from "../Client.ts"
import { type JobRow, JobStates } from "../Job.ts"
import { CliError, connection, withDatabase } from "./command.ts"

const json = Flag.Boolean("json").pipe(Flag.withDescription("Print JSON (for scripts)"), Flag.withDefault(false))

/** Runs `f` with a client on the database and schema the shared flags name. */
const withClient = <A, E>(f: (client: Client.Client["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const { databaseUrl, schema } = yield* connection
    return yield* Effect.scoped(Effect.flatMap(Client.make({ schema }), f)).pipe(withDatabase(databaseUrl))
  })

const INT64_MAX = 2n ** 63n - 1n

/** A job id as typed: a positive 64-bit integer, or a one-line error before any SQL. */
const parseId = (text: string): Effect.Effect<bigint, CliError> => {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed) && BigInt(trimmed) > 0n && BigInt(trimmed) <= INT64_MAX) return Effect.succeed(BigInt(trimmed))
  return Effect.fail(new CliError({ message: `job id must be a positive 64-bit integer (got ${JSON.stringify(text)})` }))
}

/** A job as JSON: ids and the unique key as text, dates as ISO strings. */
const jobJson = (job: JobRow) => ({
  ...job,
  id: job.id.toString(),
  uniqueKey: job.uniqueKey === null ? null : Buffer.from(job.uniqueKey).toString("hex")
})

const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const iso = (date: Date | null) => (date === null ? "-" : date.toISOString())

/** Rows as aligned columns, the first row the header. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n")
}

const jobTable = (jobs: ReadonlyArray<JobRow>) =>
  table([
    ["id", "state", "kind", "queue", "attempt", "priority", "scheduled at", "tags"],
    ...jobs.map((j) => [
      j.id.toString(),
      j.state,
      j.kind,
      j.queue,
      `${j.attempt}/${j.maxAttempts}`,
      String(j.priority),
      iso(j.scheduledAt),
      j.tags.join(",")
    ])
  ])

const jobDetail = (job: JobRow) => {
  const lines: Array<readonly [string, string]> = [
    ["id", job.id.toString()],
    ["state", job.state],
    ["kind", job.kind],
    ["queue", job.queue],
    ["attempt", `${job.attempt} of ${job.maxAttempts}`],
    ["priority", String(job.priority)],
    ["created at", iso(job.createdAt)],
    ["scheduled at", iso(job.scheduledAt)],
    ["attempted at", iso(job.attemptedAt)],
    ["finalized at", iso(job.finalizedAt)],
    ["attempted by", job.attemptedBy.join(", ") || "-"],
    ["tags", job.tags.join(", ") || "-"],
    ["args", JSON.stringify(job.args)],
    ["metadata", JSON.stringify(job.metadata)],
    ...job.errors.map((e) => [`error ${e.attempt}`, `${e.at}: ${e.error}`] as const)
  ]
  const width = Math.max(...lines.map(([k]) => k.length))
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n")
}

const list = Command.make("list", {
  state: Flag.Literals("state", JobStates).pipe(Flag.withDescription("Only jobs in this state (repeatable)"), Flag.atLeast(0)),
  kind: Flag.String("kind").pipe(Flag.withDescription("Only jobs of this kind (repeatable)"), Flag.atLeast(0)),
  queue: Flag.String("queue").pipe(Flag.withDescription("Only jobs in this queue (repeatable)"), Flag.atLeast(0)),
  tag: Flag.String("tag").pipe(Flag.withDescription("Only jobs with this tag (repeatable: any of them)"), Flag.atLeast(0)),
  limit: Flag.Int("limit").pipe(Flag.withDescription("At most this many jobs, 1 to 10000 (default 100)"), Flag.optional),
  json
}, (input) =>
  withClient((client) =>
    client.list({
      states: input.state.length === 0 ? undefined : input.state,
      kinds: input.kind.length === 0 ? undefined : input.kind,
      queues: input.queue.length === 0 ? undefined : input.queue,
      tagsAny: input.tag.length === 0 ? undefined : input.tag,
      limit: Option.getOrUndefined(input.limit)
    })
  ).pipe(Effect.flatMap(({ jobs, next }) =>
    input.json
      ? printJson({ jobs: jobs.map(jobJson), next: next ?? null })
      : Console.log(jobs.length === 0 ? "no jobs" : `${jobTable(jobs)}${next === undefined ? "" : "\n(more: raise --limit)"}`)
  ))).pipe(Command.withDescription("List jobs (filters as client.list: state, kind, queue, tag)"))

const idArgument = Argument.String("id").pipe(Argument.withDescription("The job's id"))

/** A command on one job: parses the id first, then runs one client call. */
const onJob = (
  name: string,
  description: string,
  call: (client: Client.Client["Service"], id: bigint) => Effect.Effect<JobRow, { readonly message: string }>,
  done: (job: JobRow) => string
) =>
  Command.make(name, { id: idArgument, json }, (input) =>
    Effect.gen(function*() {
      const id = yield* parseId(input.id)
      const job = yield* withClient((client) => call(client, id))
      yield* input.json ? printJson(jobJson(job)) : Console.log(done(job))
    })).pipe(Command.withDescription(description))

const get = onJob("get", "Show one job", (client, id) => client.get(id), jobDetail)

const cancel = onJob(
  "cancel",
  "Cancel a job (a running one is interrupted by its runner)",
  (client, id) => client.cancel(id),
  (job) =>
    job.state === "running"
      ? `job ${job.id} is running: cancel requested, its runner interrupts it`
      : `job ${job.id} is ${job.state}`
)

const retry = onJob(
  "retry",
  "Make a job available again now (not a running one)",
  (client, id) => client.retry(id),
  (job) => `job ${job.id} is ${job.state}, scheduled at ${iso(job.scheduledAt)}`
)

const del = onJob(
  "delete",
  "Delete a job (not a running one)",
  (client, id) => client.delete(id),
  (job) => `job ${job.id} (${job.kind}, ${job.state}) deleted`
)

/** `effect-river jobs`. */
export const jobs = Command.make("jobs").pipe(
  Command.withDescription("List, show, cancel, retry and delete jobs"),
  Command.withSubcommands([list, get, cancel, retry, del])
)

const queueList = Command.make("list", { json }, (input) =>
  withClient((client) => client.listQueues({ limit: 10_000 })).pipe(
    Effect.flatMap((queues) =>
      input.json
        ? printJson(queues)
        : Console.log(
          queues.length === 0
            ? "no queues (a queue is recorded when a runner works it or it is paused)"
            : table([
              ["queue", "paused at", "created at", "updated at"],
              ...queues.map((q) => [q.name, iso(q.pausedAt), iso(q.createdAt), iso(q.updatedAt)])
            ])
        )
    )
  )).pipe(Command.withDescription("List the queues recorded in river_queue"))

const queueArgument = Argument.String("queue").pipe(Argument.withDescription("The queue's name, or \"*\" for every queue"))

const pause = Command.make("pause", { queue: queueArgument }, (input) =>
  withClient((client) => client.pauseQueue(input.queue)).pipe(
    Effect.andThen(Console.log(input.queue === "*" ? "every queue paused" : `queue ${input.queue} paused`))
  )).pipe(Command.withDescription("Pause a queue: runners stop fetching from it (running jobs continue)"))

const resume = Command.make("resume", { queue: queueArgument }, (input) =>
  withClient((client) => client.resumeQueue(input.queue)).pipe(
    Effect.andThen(Console.log(input.queue === "*" ? "every queue resumed" : `queue ${input.queue} resumed`))
  )).pipe(Command.withDescription("Resume a paused queue"))

/** `effect-river queues`. */
export const queues = Command.make("queues").pipe(
  Command.withDescription("List, pause and resume queues"),
  Command.withSubcommands([queueList, pause, resume])
)

/** One line each for `effect-river --help`. */
export const jobsSummary = "list, show, cancel, retry or delete jobs (list: --state, --kind, --queue, --tag, --json)"
export const queuesSummary = "list, pause or resume queues"
