import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, String as Str } from "effect"
import { SqlClient } from "effect/sql"
import { TestConsole } from "effect/testing"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { outputFile, ownMigrationsDir, ownOutputFile, render, root } from "../scripts/build-sql.ts"
import type { MigrationError } from "../src/Errors.ts"
import { run as runCli } from "../src/cli/run.ts"
import * as Migrator from "../src/Migrator.ts"
import { catalog, catalogFileLines } from "./utils/catalog.ts"
import { freshDatabase, urlForDatabase } from "./utils/db.ts"

const snapshotFile = join(root, "test", "schema", "river-v8.catalog.txt")
const snapshot = catalogFileLines(readFileSync(snapshotFile, "utf8"))

const names = [
  "create_river_migration",
  "initial_schema",
  "river_job_tags_non_null",
  "pending_and_more",
  "migration_unique_client",
  "bulk_unique",
  "notification_outbox",
  "job_id_autoincrement"
]

/** Counts of everything a schema can hold that River creates. */
const objectCounts = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ relations: number; types: number; functions: number; schemas: number }>`
      SELECT (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema}) AS relations,
             (SELECT count(*)::int FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ${schema}) AS types,
             (SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ${schema}) AS functions,
             (SELECT count(*)::int FROM pg_namespace WHERE nspname = ${schema}) AS schemas`
    return row!
  })

/** Every relation, type and function outside pg_catalog/information_schema, as "schema.name". */
const allObjects = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ name: string }>`
    SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    UNION ALL
    SELECT n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    UNION ALL
    SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT nspname FROM pg_namespace
    ORDER BY 1`
  return rows.map((r) => r.name)
})

/** A run as `line/version`. */
const tag = (run: Migrator.MigrationRun) => `${run.line}/${run.version}`
const OWN = "effect-river/1"

const historyRows = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ line: string; version: string; created_at: Date }>`
      SELECT line, version::text AS version, created_at FROM ${sql(schema)}.river_migration ORDER BY line, version`
  })

const databaseUrl = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ name: string }>`SELECT current_database() AS name`
  return urlForDatabase(row!.name)
})

const expectMigrationError = <A, E, R>(effect: Effect.Effect<A, E, R>, reason: MigrationError["reason"]) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    assert.strictEqual((error as { _tag?: string })._tag, "MigrationError", String(error))
    assert.strictEqual((error as { reason?: string }).reason, reason, String(error))
    return error as unknown as { readonly detail: string; readonly message: string }
  })

const nodeBin = join(root, "node_modules", ".bin", "node")

interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `node src/cli/main.ts ...args` (without DATABASE_URL in its environment unless given). */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.promise(() =>
    new Promise<CliResult>((resolve) => {
      const { DATABASE_URL: _, ...inherited } = process.env
      execFile(
        nodeBin,
        ["src/cli/main.ts", ...args],
        { cwd: root, env: { ...inherited, ...env }, timeout: 120_000 },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })
      )
    })
  )

/** Runs `effect-river migrate ...args` in this process, capturing its console output. */
const runMigrateCommand = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(runCli(["migrate", ...args]))
    const out = (yield* TestConsole.logLines).map((line) => `${String(line)}\n`).join("")
    return { out, error: result._tag === "Failure" ? result.failure.message : undefined }
  }).pipe(Effect.provide(TestConsole.layer))

const assertOneLineError = (result: CliResult, pattern: RegExp) => {
  assert.strictEqual(result.code, 1, `exit code; stderr: ${result.stderr}`)
  assert.strictEqual(result.stdout, "")
  const lines = result.stderr.split("\n").filter((l) => l !== "")
  assert.strictEqual(lines.length, 1, result.stderr)
  assert.match(lines[0]!, /^effect-river: /)
  assert.match(lines[0]!, pattern)
}

describe("Migrator", () => {
  it.effect("knows River's line main, versions 1 to 8", () =>
    Effect.sync(() => {
      assert.strictEqual(Migrator.line, "main")
      assert.strictEqual(Migrator.latestVersion, 8)
      assert.deepStrictEqual(Migrator.migrations.map((m) => [m.version, m.name]), names.map((n, i) => [i + 1, n]))
    }))

  it.effect("the generated module is in sync with migrations/*.sql", () =>
    Effect.sync(() => {
      const committed = readFileSync(outputFile, "utf8")
      assert.isTrue(committed.startsWith("// Generated by scripts/build-sql.ts from migrations/*.sql. Do not edit.\n"))
      assert.strictEqual(committed, render(), "run npm run build:sql")
      assert.strictEqual(readFileSync(ownOutputFile, "utf8"), render(ownMigrationsDir, true), "run npm run build:sql")
    }))

  it.effect("sql renders the versions of a range, with the schema substituted", () =>
    Effect.gen(function*() {
      const upText = yield* Migrator.sql({ direction: "up", schema: "jobs" })
      const headers = upText.split("\n").filter((l) => l.startsWith("-- River migration line"))
      assert.deepStrictEqual(headers, names.map((n, i) => `-- River migration line main, version ${i + 1} (${n}), up`))
      assert.notInclude(upText, "TEMPLATE")
      assert.include(upText, `CREATE TABLE "jobs".river_job (`)
      assert.include(upText, `ADD VALUE IF NOT EXISTS 'pending'`)

      const unqualified = yield* Migrator.sql({ direction: "up", fromVersion: 5, targetVersion: 6 })
      assert.match(unqualified, /^-- River migration line main, version 6 \(bulk_unique\), up\n/)
      assert.notInclude(unqualified, "TEMPLATE")
      assert.notInclude(unqualified, "\".")
      assert.include(unqualified, "CREATE OR REPLACE FUNCTION river_job_state_in_bitmask(bitmask bit(8), state river_job_state)")

      const downText = yield* Migrator.sql({ direction: "down", schema: "jobs", targetVersion: 5 })
      assert.deepStrictEqual(
        downText.split("\n").filter((l) => l.startsWith("-- River migration line")),
        [
          "-- River migration line main, version 8 (job_id_autoincrement), down",
          "-- River migration line main, version 7 (notification_outbox), down",
          "-- River migration line main, version 6 (bulk_unique), down"
        ]
      )
      assert.strictEqual(yield* Migrator.sql({ direction: "up", fromVersion: 8 }), "")

      yield* expectMigrationError(Migrator.sql({ direction: "up", fromVersion: 5, targetVersion: 3 }), "InvalidTarget")
      yield* expectMigrationError(Migrator.sql({ direction: "down", targetVersion: 9 }), "UnknownVersion")
      yield* expectMigrationError(Migrator.sql({ direction: "up", targetVersion: 2.5 }), "InvalidTarget")
      const invalid = yield* Effect.flip(Migrator.sql({ direction: "up", schema: "no-dashes" }))
      assert.strictEqual(invalid._tag, "InvalidOptions")
    }))

  it.layer(freshDatabase("migrator"))((it) => {
    it.effect("up with a schema creates exactly River's v8 schema there, and nothing elsewhere", () =>
      Effect.gen(function*() {
        const before = yield* allObjects
        const runs = yield* Migrator.up({ schema: "named" })
        assert.deepStrictEqual(
          runs.map((r) => [r.line, r.version, r.name]),
          [...names.map((n, i) => ["main", i + 1, n]), ["effect-river", 1, "rate_limit"]],
          "River's line, then effect-river's own"
        )
        assert.deepStrictEqual(yield* catalog("named"), snapshot, "River's catalog stays identical")
        const own = yield* catalog("named", { own: true })
        assert.include(own, "table effect_river_rate_limit: table, unlogged")
        assert.include(own, "data river_migration row: line=effect-river version=1")
        const after = (yield* allObjects).filter((name) => name !== "named" && !name.startsWith("named."))
        assert.deepStrictEqual(after, before)
        assert.deepStrictEqual(yield* Migrator.up({ schema: "named" }), [], "a second up has nothing to do")
      }))

    it.effect("up and down through the search_path (no schema)", () =>
      Effect.gen(function*() {
        yield* Migrator.up()
        assert.deepStrictEqual(yield* catalog("public"), snapshot)
        const runs = yield* Migrator.down({ targetVersion: 0 })
        assert.deepStrictEqual(runs.map(tag), [OWN, ...[8, 7, 6, 5, 4, 3, 2, 1].map((v) => `main/${v}`)])
        assert.deepStrictEqual(yield* catalog("public", { own: true }), [])
        assert.deepInclude(yield* objectCounts("public"), { relations: 0, types: 0, functions: 0 })
      }))

    it.effect("down to 0 removes every River object; the schema stays", () =>
      Effect.gen(function*() {
        yield* Migrator.up({ schema: "gone" })
        const runs = yield* Migrator.down({ schema: "gone", targetVersion: 0 })
        assert.deepStrictEqual(
          runs.map((r) => [r.line, r.version, r.name]),
          [["effect-river", 1, "rate_limit"], ...names.map((n, i) => ["main", i + 1, n]).reverse()],
          "effect-river's line first: River's version 5 refuses to drop lines other than main"
        )
        assert.deepStrictEqual(yield* objectCounts("gone"), { relations: 0, types: 0, functions: 0, schemas: 1 })
        assert.deepStrictEqual(yield* catalog("gone"), [])
        const status = yield* Migrator.list({ schema: "gone" })
        assert.strictEqual(status.current, 0)
        assert.strictEqual(status.pending.length, 8)
      }))

    it.effect("down to N leaves the schema of up to N, and up from there gives v8 again", () =>
      Effect.gen(function*() {
        // Catalogs of a database migrated up to each version, one version at a time.
        const fresh: Array<ReadonlyArray<string>> = [[]]
        for (const version of [1, 2, 3, 4, 5, 6, 7]) {
          yield* Migrator.up({ schema: "stairs", targetVersion: version })
          fresh.push(yield* catalog("stairs"))
        }
        // River's one-way changes: version 4 keeps the enum value 'pending' when reverted (it
        // cannot be dropped), and River's version 4 down drops metadata's NOT NULL and default.
        const oneWay = (lines: ReadonlyArray<string>) =>
          lines.map((l) =>
            l === "enum river_job_state: 'available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable', 'running', 'scheduled'"
              ? "enum river_job_state: 'available', 'cancelled', 'completed', 'discarded', 'retryable', 'running', 'scheduled'"
              : l === "column river_job.metadata #14: jsonb"
              ? "column river_job.metadata #14: jsonb NOT NULL DEFAULT '{}'::jsonb"
              : l
          )

        yield* Migrator.up({ schema: "cycle" })
        for (const target of [7, 6, 5, 4, 3, 2, 1, 0]) {
          const reverted = yield* Migrator.down({ schema: "cycle", targetVersion: target })
          assert.deepStrictEqual(
            reverted.map(tag),
            [...(target < 5 ? [OWN] : []), ...[8, 7, 6, 5, 4, 3, 2, 1].filter((v) => v > target).map((v) => `main/${v}`)]
          )
          assert.strictEqual((yield* Migrator.list({ schema: "cycle" })).current, target)
          const reached = yield* catalog("cycle")
          assert.deepStrictEqual(target < 4 ? oneWay(reached) : reached, fresh[target], `down to ${target}`)
          const applied = yield* Migrator.up({ schema: "cycle" })
          assert.deepStrictEqual(
            applied.map(tag),
            [...[1, 2, 3, 4, 5, 6, 7, 8].filter((v) => v > target).map((v) => `main/${v}`), ...(target < 5 ? [OWN] : [])]
          )
          assert.deepStrictEqual(yield* catalog("cycle"), snapshot, `after down to ${target} and up`)
        }
      }))

    it.effect("up to a target, then the rest (v4 adds 'pending', v6 uses it, in separate transactions)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const first = yield* Migrator.up({ schema: "stepwise", targetVersion: 3 })
        assert.deepStrictEqual(first.map((r) => r.version), [1, 2, 3])
        // Before version 5 the history keeps River's old shape, without `line`.
        const old = yield* sql<{ version: string }>`SELECT version::text AS version FROM stepwise.river_migration ORDER BY id`
        assert.deepStrictEqual(old.map((r) => r.version), ["1", "2", "3"])
        const status = yield* Migrator.list({ schema: "stepwise" })
        assert.strictEqual(status.current, 3)
        assert.deepStrictEqual(status.pending.map((m) => m.version), [4, 5, 6, 7, 8])

        const second = yield* Migrator.up({ schema: "stepwise", targetVersion: 4 })
        assert.deepStrictEqual(second.map((r) => r.version), [4])
        const rest = yield* Migrator.up({ schema: "stepwise" })
        assert.deepStrictEqual(rest.map(tag), ["main/5", "main/6", "main/7", "main/8", OWN])
        assert.deepStrictEqual(yield* catalog("stepwise"), snapshot)
      }))

    it.effect("a version 7 database (River before v0.48) has the v8 schema and is brought to 8 by recording it", () =>
      Effect.gen(function*() {
        yield* Migrator.up({ schema: "older", targetVersion: 7 })
        assert.deepStrictEqual(
          yield* catalog("older"),
          snapshot
            .filter((line) => line !== "data river_migration row: line=main version=8")
            .map((line) => line === "data river_migration: 8 rows" ? "data river_migration: 7 rows" : line),
          "version 8 changes nothing on PostgreSQL but its history row"
        )
        const status = yield* Migrator.list({ schema: "older" })
        assert.strictEqual(status.current, 7)
        assert.deepStrictEqual(status.pending, [{ version: 8, name: "job_id_autoincrement" }])
        const runs = yield* Migrator.up({ schema: "older" })
        assert.deepStrictEqual(runs.map((r) => [r.line, r.version, r.name]), [
          ["main", 8, "job_id_autoincrement"],
          ["effect-river", 1, "rate_limit"]
        ])
        assert.deepStrictEqual(
          (yield* historyRows("older")).map((r) => `${r.line}/${r.version}`).slice(-2),
          ["main/7", "main/8"]
        )
        assert.deepStrictEqual(yield* catalog("older"), snapshot)
      }))

    it.effect("down to a target reverts only the versions above it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.up({ schema: "partial" })
        const runs = yield* Migrator.down({ schema: "partial", targetVersion: 5 })
        assert.deepStrictEqual(runs.map((r) => [r.version, r.name]), [
          [8, "job_id_autoincrement"],
          [7, "notification_outbox"],
          [6, "bulk_unique"]
        ])
        const lines = yield* catalog("partial")
        assert.isFalse(lines.some((l) => l.includes("river_notification")), "river_notification dropped")
        assert.isFalse(lines.some((l) => l.includes("river_job_state_in_bitmask")), "bitmask function dropped")
        assert.isFalse(lines.some((l) => l.startsWith("column river_job.unique_states")), "unique_states dropped")
        assert.include(lines, "table river_client: table, unlogged")
        assert.include(lines, "table river_client_queue: table, unlogged")
        assert.isTrue(lines.some((l) => l.startsWith("index river_job.river_job_kind_unique_key_idx:")))
        assert.include(lines, "column river_job.max_attempts #4: smallint NOT NULL")
        assert.include(lines, "column river_queue.updated_at #5: timestamp with time zone NOT NULL")
        assert.deepStrictEqual(
          (yield* historyRows("partial")).map((r) => `${r.line}/${r.version}`),
          [OWN, "main/1", "main/2", "main/3", "main/4", "main/5"],
          "effect-river's line stays while main is at 5 or later"
        )
        assert.deepStrictEqual(yield* Migrator.down({ schema: "partial", targetVersion: 5 }), [], "nothing left to revert")
        // Below version 5 the history table goes back to River's old shape.
        yield* Migrator.down({ schema: "partial", targetVersion: 2 })
        const old = yield* sql<{ version: string }>`SELECT version::text AS version FROM partial.river_migration ORDER BY version`
        assert.deepStrictEqual(old.map((r) => r.version), ["1", "2"])
        assert.strictEqual((yield* Migrator.list({ schema: "partial" })).current, 2)
      }))

    it.effect("list before, between and after", () =>
      Effect.gen(function*() {
        const empty = yield* Migrator.list({ schema: "listed" })
        assert.deepStrictEqual(empty, {
          current: 0,
          applied: [],
          pending: names.map((name, i) => ({ version: i + 1, name }))
        })
        yield* Migrator.up({ schema: "listed", targetVersion: 2 })
        const two = yield* Migrator.list({ schema: "listed" })
        assert.strictEqual(two.current, 2)
        assert.deepStrictEqual(two.applied.map((m) => [m.version, m.name]), [[1, names[0]], [2, names[1]]])
        assert.isTrue(two.applied.every((m) => m.createdAt instanceof Date && !Number.isNaN(m.createdAt.getTime())))
        assert.deepStrictEqual(two.pending.map((m) => m.version), [3, 4, 5, 6, 7, 8])
        yield* Migrator.up({ schema: "listed" })
        const all = yield* Migrator.list({ schema: "listed" })
        assert.strictEqual(all.current, 8)
        assert.deepStrictEqual(all.applied.map((m) => m.version), [1, 2, 3, 4, 5, 6, 7, 8])
        assert.deepStrictEqual(all.applied.slice(0, 2), two.applied, "timestamps kept across the v5 rebuild")
        assert.deepStrictEqual(all.pending, [])
      }))

    it.effect("validate: ok once every version up to the target is applied (River's migrate-validate)", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* Migrator.validate({ schema: "validated" }), {
          ok: false,
          messages: ["Unapplied migrations: [1 2 3 4 5 6 7 8]"]
        })
        yield* Migrator.up({ schema: "validated", targetVersion: 5 })
        assert.deepStrictEqual(yield* Migrator.validate({ schema: "validated" }), {
          ok: false,
          messages: ["Unapplied migrations: [6 7 8]"]
        })
        assert.deepStrictEqual(yield* Migrator.validate({ schema: "validated", targetVersion: 5 }), { ok: true, messages: [] })
        yield* Migrator.up({ schema: "validated" })
        assert.deepStrictEqual(yield* Migrator.validate({ schema: "validated" }), { ok: true, messages: [] })
        yield* expectMigrationError(Migrator.validate({ schema: "validated", targetVersion: 9 }), "UnknownVersion")
      }))

    it.effect("concurrent ups apply each version exactly once, and both succeed", () =>
      Effect.gen(function*() {
        const results = yield* Effect.all(
          [Migrator.up({ schema: "raced" }), Migrator.up({ schema: "raced" }), Migrator.up({ schema: "raced" })],
          { concurrency: "unbounded" }
        )
        const versions = results.flatMap((runs) => runs.map(tag)).sort()
        assert.deepStrictEqual(versions, [OWN, ...[1, 2, 3, 4, 5, 6, 7, 8].map((v) => `main/${v}`)])
        assert.deepStrictEqual(
          (yield* historyRows("raced")).map((r) => `${r.line}/${r.version}`),
          [OWN, ...[1, 2, 3, 4, 5, 6, 7, 8].map((v) => `main/${v}`)]
        )
        assert.deepStrictEqual(yield* catalog("raced"), snapshot)
      }))

    it.effect("an invalid schema name fails with InvalidOptions before any SQL", () =>
      Effect.gen(function*() {
        const before = yield* allObjects
        for (const schema of ["bad-name", "x\".evil", "1abc", "a".repeat(47)]) {
          for (
            const effect of [
              Migrator.up({ schema }),
              Migrator.down({ schema, targetVersion: 0 }),
              Migrator.list({ schema })
            ] as ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }, SqlClient.SqlClient>>
          ) {
            const error = yield* Effect.flip(effect)
            assert.strictEqual(error._tag, "InvalidOptions")
            assert.strictEqual((error as { field?: string }).field, "schema")
          }
        }
        assert.deepStrictEqual(yield* allObjects, before)
      }))

    it.effect("unknown or invalid target versions fail before any change", () =>
      Effect.gen(function*() {
        const before = yield* allObjects
        yield* expectMigrationError(Migrator.up({ schema: "targets", targetVersion: 9 }), "UnknownVersion")
        yield* expectMigrationError(Migrator.up({ schema: "targets", targetVersion: -1 }), "UnknownVersion")
        yield* expectMigrationError(Migrator.up({ schema: "targets", targetVersion: 1.5 }), "InvalidTarget")
        yield* expectMigrationError(Migrator.up({ schema: "targets", targetVersion: Number.NaN }), "InvalidTarget")
        yield* expectMigrationError(Migrator.down({ schema: "targets", targetVersion: 99 }), "UnknownVersion")
        assert.deepStrictEqual(yield* allObjects, before, "nothing created, not even the schema")

        yield* Migrator.up({ schema: "targets", targetVersion: 4 })
        const at4 = yield* catalog("targets")
        const below = yield* expectMigrationError(Migrator.up({ schema: "targets", targetVersion: 2 }), "InvalidTarget")
        assert.include(below.detail, "below the current version 4")
        const above = yield* expectMigrationError(Migrator.down({ schema: "targets", targetVersion: 6 }), "InvalidTarget")
        assert.include(above.detail, "above the current version 4")
        assert.deepStrictEqual(yield* catalog("targets"), at4)
      }))

    it.effect("a database past version 8 fails with DatabaseAhead and is left alone", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.up({ schema: "ahead" })
        yield* sql`INSERT INTO ahead.river_migration (line, version) VALUES ('main', 9)`
        const before = yield* catalog("ahead")
        const error = yield* expectMigrationError(Migrator.up({ schema: "ahead" }), "DatabaseAhead")
        assert.include(error.detail, "version 9")
        yield* expectMigrationError(Migrator.down({ schema: "ahead", targetVersion: 0 }), "DatabaseAhead")
        yield* expectMigrationError(Migrator.down({ schema: "ahead", targetVersion: 8 }), "DatabaseAhead")
        assert.deepStrictEqual(yield* catalog("ahead"), before)
        const status = yield* Migrator.list({ schema: "ahead" })
        assert.strictEqual(status.current, 9)
        assert.deepStrictEqual(status.applied.at(-1)?.version, 9)
        assert.strictEqual(status.applied.at(-1)?.name, undefined)
        assert.deepStrictEqual(status.pending, [])
      }))

    it.effect("rows of other migration lines survive up and down, and block reverting version 5", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.up({ schema: "pro" })
        yield* sql`INSERT INTO pro.river_migration (line, version, created_at) VALUES
          ('workflow', 1, '2024-01-01T00:00:00Z'), ('workflow', 2, '2024-01-02T00:00:00Z'), ('sequence', 1, '2024-01-03T00:00:00Z')`
        const foreign = (rows: ReadonlyArray<{ line: string; version: string; created_at: Date }>) =>
          rows.filter((r) => r.line !== "main" && r.line !== "effect-river").map((r) => `${r.line}/${r.version}@${r.created_at.toISOString()}`)
        const expected = [
          "sequence/1@2024-01-03T00:00:00.000Z",
          "workflow/1@2024-01-01T00:00:00.000Z",
          "workflow/2@2024-01-02T00:00:00.000Z"
        ]

        assert.deepStrictEqual((yield* Migrator.down({ schema: "pro", targetVersion: 5 })).map((r) => r.version), [8, 7, 6])
        assert.deepStrictEqual(foreign(yield* historyRows("pro")), expected)
        assert.deepStrictEqual((yield* Migrator.up({ schema: "pro", line: "main" })).map((r) => r.version), [6, 7, 8])
        assert.deepStrictEqual(foreign(yield* historyRows("pro")), expected)
        assert.strictEqual((yield* Migrator.list({ schema: "pro" })).current, 8, "other lines do not count")

        // Like River, version 5 cannot be reverted while other lines have rows: it fails and rolls back.
        yield* Migrator.down({ schema: "pro", targetVersion: 5 })
        const failed = yield* expectMigrationError(Migrator.down({ schema: "pro", targetVersion: 4 }), "Failed")
        assert.include(failed.detail, "version 5 (migration_unique_client) down failed")
        assert.include(failed.detail, "other than main")
        assert.strictEqual((yield* Migrator.list({ schema: "pro" })).current, 5)
        assert.deepStrictEqual(foreign(yield* historyRows("pro")), expected)
        assert.isTrue((yield* catalog("pro")).some((l) => l.startsWith("column river_job.unique_key ")))
      }))

    it.effect("a failing version fails with Failed naming it, and only it is rolled back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Migrator.up({ schema: "broken", targetVersion: 3 })
        yield* sql`CREATE TABLE broken.river_queue (squatter int)`
        const error = yield* expectMigrationError(Migrator.up({ schema: "broken" }), "Failed")
        assert.include(error.detail, "version 4 (pending_and_more) up failed")
        assert.include(error.detail, "river_queue")
        assert.strictEqual((yield* Migrator.list({ schema: "broken" })).current, 3)
        const lines = yield* catalog("broken")
        assert.include(lines, "enum river_job_state: 'available', 'cancelled', 'completed', 'discarded', 'retryable', 'running', 'scheduled'")
        assert.include(lines, "column river_job.args #10: jsonb", "args still nullable")
        assert.isTrue(lines.some((l) => l.startsWith("trigger river_job.river_notify:")), "trigger still there")
      }))

    it.effect("works with a caller's client that transforms names", () =>
      Effect.gen(function*() {
        const url = yield* databaseUrl
        const program = Effect.gen(function*() {
          const runs = yield* Migrator.up({ schema: "camel", targetVersion: 6 })
          assert.strictEqual(runs.length, 6)
          const status = yield* Migrator.list({ schema: "camel" })
          assert.strictEqual(status.current, 6)
          assert.isTrue(status.applied.every((m) => m.createdAt instanceof Date))
          yield* Migrator.up({ schema: "camel" })
        })
        yield* program.pipe(Effect.provide(PgClient.layer({
          url: Redacted.make(url),
          maxConnections: 2,
          transformQueryNames: Str.camelToSnake,
          transformResultNames: Str.snakeToCamel
        })))
        assert.deepStrictEqual(yield* catalog("camel"), snapshot)
      }))

    it.effect("CLI: up, list, get and down", () =>
      Effect.gen(function*() {
        const url = yield* databaseUrl
        const up = yield* cli(["migrate", "up", "--schema", "cli", "--database-url", url])
        assert.strictEqual(up.code, 0, up.stderr)
        assert.strictEqual(up.stderr, "")
        const upLines = up.stdout.trimEnd().split("\n")
        assert.deepStrictEqual(
          upLines.slice(0, 8).map((l) => l.replace(/\(\d+ ms\)$/, "(N ms)")),
          names.map((n, i) => `applied version ${i + 1} ${n} (N ms)`)
        )
        assert.strictEqual(upLines[8]!.replace(/\(\d+ ms\)$/, "(N ms)"), "applied effect-river version 1 rate_limit (N ms)")
        assert.strictEqual(upLines[9], "migration line main is at version 8 (latest: 8)")
        assert.deepStrictEqual(yield* catalog("cli"), snapshot)

        const [list, get, again] = yield* Effect.all([
          cli(["migrate", "list", "--schema", "cli"], { DATABASE_URL: url }),
          cli(["migrate", "get", "--up", "--schema", "cli"]),
          cli(["migrate", "up", "--schema=cli", `--database-url=${url}`])
        ], { concurrency: "unbounded" })
        assert.strictEqual(list.code, 0, list.stderr)
        const listLines = list.stdout.trimEnd().split("\n")
        assert.match(listLines[0]!, /^version\s+name\s+applied at$/)
        names.forEach((name, i) => {
          assert.match(listLines[i + 1]!, new RegExp(`^${i + 1}\\s+${name}\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`))
        })
        assert.strictEqual(listLines[9], "migration line main is at version 8 (latest: 8)")
        assert.strictEqual(get.code, 0, get.stderr)
        assert.strictEqual(get.stdout, `${(yield* Migrator.sql({ direction: "up", schema: "cli" })).trimEnd()}\n`)
        assert.strictEqual(again.code, 0, again.stderr)
        assert.strictEqual(again.stdout, "nothing to apply: migration line main is at version 8 (latest: 8)\n")

        const down = yield* cli(["migrate", "down", "--schema", "cli", "--target-version", "0", "--database-url", url])
        assert.strictEqual(down.code, 0, down.stderr)
        assert.match(
          down.stdout,
          /^reverted effect-river version 1 rate_limit \(\d+ ms\)\nreverted version 8 job_id_autoincrement \(\d+ ms\)\nreverted version 7 notification_outbox \(\d+ ms\)\n/
        )
        assert.deepStrictEqual(yield* catalog("cli"), [])
      }), { timeout: 300_000 })

    it.effect("CLI: failures print one line on stderr, exit 1 and change nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const url = yield* databaseUrl
        yield* Migrator.up({ schema: "cli_ahead" })
        yield* sql`INSERT INTO cli_ahead.river_migration (line, version) VALUES ('main', 9)`
        const before = yield* allObjects
        const results = yield* Effect.all([
          cli(["migrate", "up", "--database-url", "not a url"]),
          cli(["migrate", "list", "--database-url", "postgres://nobody:secret@127.0.0.1:1/none"]),
          cli(["migrate", "up", "--schema", "cli_missing"]),
          cli(["migrate", "up", "--schema", "cli_target", "--target-version", "9", "--database-url", url]),
          cli(["migrate", "up", "--schema", "cli_ahead", "--database-url", url]),
          cli(["migrate", "up", "--schema", "bad-schema", "--database-url", url])
        ], { concurrency: "unbounded" })
        const patterns = [
          /invalid database URL: expected postgres:\/\//,
          /database error .*ECONNREFUSED/,
          /no database URL: pass --database-url or set DATABASE_URL/,
          /UnknownVersion.*target version 9/,
          /DatabaseAhead.*version 9/,
          /invalid schema: must match/
        ]
        results.forEach((result, i) => assertOneLineError(result, patterns[i]!))
        assert.notInclude(results[1]!.stderr, "secret")
        assert.deepStrictEqual(yield* allObjects, before)
      }), { timeout: 300_000 })

    it.effect("CLI: --help lists the commands", () =>
      Effect.gen(function*() {
        const help = yield* cli(["--help"])
        assert.strictEqual(help.code, 0)
        assert.match(help.stdout, /^Usage: effect-river <command>/)
        assert.match(help.stdout, /\n {2}migrate {3}apply, revert, list, validate or print/)
      }))

    it.effect("migrate command: input errors, help, and list of a database ahead (in process)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const url = yield* databaseUrl
        const failures: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
          [["up", "--database-url", "mysql://localhost/app"], /^invalid database URL scheme "mysql:"/],
          [["up", "--target-version", "two"], /^--target-version must be an integer \(got "two"\)$/],
          [["up", "--target-version", "99999999999999999999"], /^--target-version 99999999999999999999 is not a version of migration line main \(0 to \d+\)$/],
          [["down", "--target-version", "-1"], /^migration error \(UnknownVersion\): target version -1 is not a version of migration line main \(0 to \d+\)$/],
          [["down", "--target-version=-1"], /^migration error \(UnknownVersion\): target version -1 is not a version/],
          [["get", "--up", "--from-version", "-2"], /^migration error \(UnknownVersion\): from version -2 is not a version/],
          [["get", "--up", "--from-version", "-99999999999999999999"], /^--from-version -99999999999999999999 is not a version of migration line main/],
          [["down", "--schema", "x"], /^migrate down needs --target-version/],
          [["sideways"], /^Unknown subcommand "sideways" for "effect-river migrate"; see effect-river migrate --help$/],
          [["up", "--frobnicate"], /^Unrecognized flag: --frobnicate in command effect-river migrate up; see effect-river migrate up --help$/],
          [["list", "extra"], /^Unexpected positional argument: "extra"; see effect-river migrate list --help$/],
          [["get", "--up", "--down"], /^migrate get needs exactly one of --up or --down$/],
          [["get", "--down", "--target-version", "9"], /UnknownVersion/]
        ]
        const before = yield* allObjects
        for (const [args, pattern] of failures) {
          const { error } = yield* runMigrateCommand(args)
          assert.match(error ?? "(succeeded)", pattern, args.join(" "))
        }
        assert.deepStrictEqual(yield* allObjects, before)

        const help = yield* runMigrateCommand(["--help"])
        assert.strictEqual(help.error, undefined)
        for (const command of ["up", "down", "list", "get"]) assert.match(help.out, new RegExp(`\\n  ${command} `))
        assert.include(help.out, "--database-url")

        yield* Migrator.up({ schema: "cmd_ahead" })
        yield* sql`INSERT INTO cmd_ahead.river_migration (line, version) VALUES ('main', 9)`
        const ahead = yield* runMigrateCommand(["list", "--schema", "cmd_ahead", "--database-url", url])
        assert.match(ahead.out, /\n9 +\(unknown\) +\d{4}-/)
        assert.match(ahead.error ?? "", /^the database is at version 9 of migration line main, ahead/)
      }))
  })
})
