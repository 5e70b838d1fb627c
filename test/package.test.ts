/**
 * The package as a user installs it: `npm pack` (which builds dist/ through `prepack`), the
 * tarball unpacked into a scratch project's node_modules, its dependencies linked from this
 * checkout. A consumer file is typechecked against the packed declarations and run on Node
 * (no type stripping: Node refuses it under node_modules), working one job on a real database;
 * the packed CLI prints its help.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { createDatabase, urlForDatabase } from "./utils/db.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (file: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.callback<Run>((resume) => {
    const child = execFile(file, args, { cwd, timeout: 120_000, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })

const expectOk = (what: string, r: Run) => {
  assert.strictEqual(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

const consumer = `import { Client, JobKind, Migrator, Runner, Worker } from "effect-river"
import * as Testing from "effect-river/Testing"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const Greet = JobKind.make("greet", { args: Schema.Struct({ name: Schema.String }) })
const greeted: Array<string> = []

// The declarations are real types, not \`any\`: a wrong option must not compile.
// @ts-expect-error maxWorkers is a number
const wrong: Runner.RunnerOptions<[]> = { queues: { default: { maxWorkers: "many" } }, workers: [] }
void wrong

const program = Effect.gen(function*() {
  yield* Migrator.up()
  const client = yield* Client.make()
  const { job } = yield* client.insert(Greet, { name: "Ada" })
  yield* Effect.scoped(Effect.gen(function*() {
    const { runner } = yield* Runner.make({
      queues: { default: { maxWorkers: 2 } },
      workers: [Worker.make(Greet, (job) => Effect.sync(() => void greeted.push(job.args.name)))],
      autoStart: false
    })
    const events = yield* runner.subscribe
    yield* runner.start
    yield* Testing.awaitEvent(events, (e) => e.job.id === job.id)
  }))
  const done = yield* client.get(job.id)
  return { state: done.state, greeted }
})

const url = process.argv[2]!
const result = await Effect.runPromise(
  program.pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))
)
console.log(JSON.stringify(result))
`

/** The public modules, each importable by itself; the CLI and internals are not exported. */
const PUBLIC = ["Client", "Errors", "InsertOptions", "Job", "JobEvent", "JobKind", "Migrator", "PeriodicJob", "Resumable", "Runner", "Testing", "Worker"]
const exportsCheck = `const found = {}
for (const m of ${JSON.stringify(PUBLIC)}) found[m] = typeof (await import("effect-river/" + m)) === "object"
for (const spec of ["effect-river/bin", "effect-river/cli/main", "effect-river/internal/client", "effect-river/internal/runner", "effect-river/dist/Client.js"]) {
  try {
    await import(spec)
    found[spec] = "loaded"
  } catch (error) {
    found[spec] = error.code
  }
}
console.log(JSON.stringify(found))
`

const tsconfig = {
  compilerOptions: {
    target: "ES2023",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    exactOptionalPropertyTypes: true,
    erasableSyntaxOnly: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"]
  },
  include: ["consumer.ts"]
}

describe("packed package", () => {
  it.live("installs from its tarball, typechecks, works a job on Node without type stripping, and runs its CLI", () =>
    Effect.gen(function*() {
      const scratch = mkdtempSync(join(tmpdir(), "effect-river-pack-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(scratch, { recursive: true, force: true })))
      const bin = join(root, "node_modules", ".bin")

      const packed = JSON.parse(expectOk("npm pack", yield* run("npm", ["pack", "--json", "--pack-destination", scratch], root)))
      const files: ReadonlyArray<string> = packed[0].files.map((f: { path: string }) => f.path)
      assert.include(files, "dist/index.js")
      assert.include(files, "dist/index.d.ts")
      assert.include(files, "bin/effect-river.js")
      assert.isFalse(files.some((f) => f.startsWith("src/") || f.startsWith("test/")), "sources and tests are not packed")

      const installed = join(scratch, "node_modules", "effect-river")
      mkdirSync(installed, { recursive: true })
      expectOk("tar", yield* run("tar", ["xzf", join(scratch, packed[0].filename), "-C", installed, "--strip-components=1"], scratch))
      for (const dep of ["effect", "@effect/sql-pg", "@effect/platform-node", "@types/node"]) {
        const link = join(scratch, "node_modules", dep)
        mkdirSync(dirname(link), { recursive: true })
        symlinkSync(join(root, "node_modules", dep), link, "dir")
      }
      writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
      writeFileSync(join(scratch, "tsconfig.json"), JSON.stringify(tsconfig))
      writeFileSync(join(scratch, "consumer.ts"), consumer)

      expectOk("tsc on the consumer", yield* run(join(bin, "tsc"), ["-p", "tsconfig.json"], scratch))

      const url = urlForDatabase(yield* createDatabase("pack"))
      const out = expectOk("the consumer", yield* run(join(bin, "node"), ["consumer.ts", url], scratch))
      assert.deepStrictEqual(JSON.parse(out.trim().split("\n").pop()!), { state: "completed", greeted: ["Ada"] })

      writeFileSync(join(scratch, "exports.mjs"), exportsCheck)
      const found = JSON.parse(expectOk("the exports check", yield* run(join(bin, "node"), ["exports.mjs"], scratch)).trim())
      for (const m of PUBLIC) assert.isTrue(found[m], `effect-river/${m}`)
      for (const spec of ["effect-river/bin", "effect-river/cli/main", "effect-river/internal/client", "effect-river/internal/runner", "effect-river/dist/Client.js"]) {
        assert.strictEqual(found[spec], "ERR_PACKAGE_PATH_NOT_EXPORTED", spec)
      }

      const help = expectOk("effect-river --help", yield* run(join(bin, "node"), [join(installed, "bin", "effect-river.js"), "--help"], scratch))
      assert.include(help, "Usage: effect-river <command>")
    }).pipe(Effect.scoped), { timeout: 240_000 })
})
