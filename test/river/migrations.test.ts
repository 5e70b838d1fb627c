/**
 * Scenario 1, migrations both ways: River's migrator (rivermigrate v0.51.2, what River's CLI
 * runs) and effect-river's Migrator and CLI on the same schemas. Each sees the other's history,
 * `validate` passes on both sides, and down/up alternate between the two tools. River's latest
 * is version 8; a version 7 database (older River) keeps working.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Migrator from "../../src/Migrator.ts"
import { catalog, catalogFileLines } from "../utils/catalog.ts"
import { behave, Behave } from "./utils/kinds.ts"
import { effectMigrate, riverMigrate, riverMigrateRaw, Scenario, waitFor } from "./utils/harness.ts"

const snapshot = catalogFileLines(readFileSync(join(import.meta.dirname, "..", "schema", "river-v8.catalog.txt"), "utf8"))

interface Versions {
  readonly versions: ReadonlyArray<{ readonly version: number; readonly name: string }>
}
interface RiverList {
  readonly applied: ReadonlyArray<{ readonly version: number; readonly name: string }>
  readonly all: ReadonlyArray<{ readonly version: number; readonly name: string }>
}
interface RiverValidate {
  readonly ok: boolean
  readonly messages: ReadonlyArray<string>
}

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_migrations")
})
afterAll(async () => {
  await s?.dispose()
})

const versions = (result: Versions) => result.versions.map((v) => v.version)

describe("migrations both ways", () => {
  it("River's latest is version 8, and effect-river knows every version River knows, by the same names", async () => {
    const schema = s.schemaName("names")
    const list = await riverMigrate<RiverList>(s.url, ["list", "--schema", schema])
    expect(list.all.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(Migrator.latestVersion).toBe(8)
    // River's names (the migration files' names); effect-river's v7 name is shorter.
    expect(list.all.map((m) => m.name)).toEqual([
      "create river migration",
      "initial schema",
      "river job tags non null",
      "pending and more",
      "migration unique client",
      "bulk unique",
      "notification outbox sqlite jsonb and sql cleanup",
      "job id autoincrement"
    ])
    expect(Migrator.migrations.map((m) => m.name.replaceAll("_", " "))).toEqual(
      list.all.map((m) => m.name === "notification outbox sqlite jsonb and sql cleanup" ? "notification outbox" : m.name)
    )
  })

  it("River's migrator on an effect-river database: everything applied, nothing to do, validate passes", async () => {
    const schema = await s.effectSchema("by_effect")
    const list = await riverMigrate<RiverList>(s.url, ["list", "--schema", schema])
    expect(list.applied.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(versions(await riverMigrate<Versions>(s.url, ["up", "--schema", schema]))).toEqual([])
    expect(await riverMigrate<RiverValidate>(s.url, ["validate", "--schema", schema])).toEqual({ ok: true, messages: [] })
  })

  it("effect-river on a River database: same catalog, nothing to do, validate passes, the runner works a job", async () => {
    const schema = await s.riverSchema("by_river")
    expect(await s.run(catalog(schema))).toEqual(snapshot)
    const status = await s.run(Migrator.list({ schema }))
    expect(status.current).toBe(8)
    expect(status.pending).toEqual([])
    // River's line is complete; effect-river's own line (flow control's table) is added.
    expect((await s.run(Migrator.up({ schema }))).map((r) => `${r.line}/${r.version}`)).toEqual(["effect-river/1"])
    expect(await s.run(Migrator.up({ schema }))).toEqual([])
    expect(await s.run(catalog(schema))).toEqual(snapshot)
    expect(await s.run(Migrator.validate({ schema }))).toEqual({ ok: true, messages: [] })
    const cli = await effectMigrate(s.url, ["validate", "--schema", schema])
    expect(cli.code, cli.stderr).toBe(0)
    expect(cli.stdout).toBe("migrations are valid\n")

    const runner = await s.runner(schema, { id: "effect-on-river-schema", queues: { default: { maxWorkers: 2 } } })
    const { job } = await s.run(runner.client.insert(Behave, behave("complete")))
    const done = await waitFor("the job completed", async () => {
      const row = await s.run(runner.client.get(job.id))
      return row.state === "completed" ? row : undefined
    })
    expect(done.attempt).toBe(1)
    await runner.stop()
  })

  it("down and up alternate between River's migrator and effect-river's CLI", async () => {
    const schema = await s.effectSchema("alternate")
    // River down to 5.
    expect(versions(await riverMigrate<Versions>(s.url, ["down", "--schema", schema, "--target-version", "5"]))).toEqual([8, 7, 6])
    expect((await s.run(Migrator.list({ schema }))).current).toBe(5)
    expect(await riverMigrate<RiverValidate>(s.url, ["validate", "--schema", schema])).toEqual({
      ok: false,
      messages: ["Unapplied migrations: [6 7 8]"]
    })
    expect(await s.run(Migrator.validate({ schema }))).toEqual({ ok: false, messages: ["Unapplied migrations: [6 7 8]"] })
    const invalid = await effectMigrate(s.url, ["validate", "--schema", schema])
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toContain("Unapplied migrations: [6 7 8]")

    // effect-river's CLI up from River's 5.
    const up = await effectMigrate(s.url, ["up", "--schema", schema])
    expect(up.code, up.stderr).toBe(0)
    expect(up.stdout).toMatch(/^applied version 6 bulk_unique .*\napplied version 7 .*\napplied version 8 job_id_autoincrement /)
    expect(await riverMigrate<RiverValidate>(s.url, ["validate", "--schema", schema])).toEqual({ ok: true, messages: [] })

    // effect-river's CLI down to 3 (through version 5's table rebuild), River up from there.
    const down = await effectMigrate(s.url, ["down", "--schema", schema, "--target-version", "3"])
    expect(down.code, down.stderr).toBe(0)
    expect((await riverMigrate<RiverList>(s.url, ["list", "--schema", schema])).applied.map((m) => m.version)).toEqual([1, 2, 3])
    expect(versions(await riverMigrate<Versions>(s.url, ["up", "--schema", schema]))).toEqual([4, 5, 6, 7, 8])
    expect(await s.run(catalog(schema))).toEqual(snapshot)

    // River all the way down (target -1), effect-river all the way up.
    expect(versions(await riverMigrate<Versions>(s.url, ["down", "--schema", schema, "--target-version", "-1"]))).toEqual([
      8,
      7,
      6,
      5,
      4,
      3,
      2,
      1
    ])
    expect((await s.run(Migrator.list({ schema }))).current).toBe(0)
    expect((await s.run(Migrator.up({ schema }))).map((r) => `${r.line}/${r.version}`)).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((v) => `main/${v}`),
      "effect-river/1"
    ])
    expect(await s.run(catalog(schema))).toEqual(snapshot)
    expect(await riverMigrate<RiverValidate>(s.url, ["validate", "--schema", schema])).toEqual({ ok: true, messages: [] })

    // River's version 5 refuses to go down while other lines have rows (River Pro's or
    // effect-river's): effect-river's own line is reverted first, as Migrator.down does itself.
    expect((await s.run(Migrator.down({ schema, line: "effect-river", targetVersion: 0 }))).map((r) => r.version)).toEqual([1])

    // Migrated by effect-river from 0: River's own down path works on it to the end.
    expect(versions(await riverMigrate<Versions>(s.url, ["down", "--schema", schema, "--target-version", "-1"]))).toHaveLength(8)
    expect(await s.run(catalog(schema))).toEqual([])
  })

  it("a version 7 database (River before v0.48) keeps working; effect-river brings it to 8 and River agrees", async () => {
    const schema = s.schemaName("v7")
    await s.q(`CREATE SCHEMA "${schema}"`)
    expect(versions(await riverMigrate<Versions>(s.url, ["up", "--schema", schema, "--target-version", "7"]))).toEqual([
      1,
      2,
      3,
      4,
      5,
      6,
      7
    ])
    const status = await s.run(Migrator.list({ schema }))
    expect(status.current).toBe(7)
    expect(status.pending.map((m) => m.version)).toEqual([8])

    // The runner and River both work on a v7 database.
    const runner = await s.runner(schema, { id: "effect-on-v7", queues: { default: { maxWorkers: 2 } } })
    const river = await s.river(schema, "river-v7")
    const { job } = await river.insert("interop_behave", behave("complete"))
    await waitFor("effect-river completed River's job on a v7 database", async () =>
      (await s.run(runner.client.get(job.id))).state === "completed")
    await runner.stop()

    expect((await s.run(Migrator.up({ schema }))).map((r) => `${r.line}/${r.version}`)).toEqual(["main/8", "effect-river/1"])
    expect((await riverMigrate<RiverList>(s.url, ["list", "--schema", schema])).applied.map((m) => m.version)).toEqual([
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8
    ])
    expect(await riverMigrate<RiverValidate>(s.url, ["validate", "--schema", schema])).toEqual({ ok: true, messages: [] })
  })

  it("River rejects an unknown target the way effect-river does: nothing changes", async () => {
    const schema = await s.effectSchema("targets")
    const river = await riverMigrateRaw(s.url, ["up", "--schema", schema, "--target-version", "9"])
    expect(river.code).toBe(1)
    expect(river.stdout).toContain("version 9 is not a valid River migration version")
    const effect = await effectMigrate(s.url, ["up", "--schema", schema, "--target-version", "9"])
    expect(effect.code).toBe(1)
    expect(effect.stderr).toContain("UnknownVersion")
    expect(await s.run(catalog(schema))).toEqual(snapshot)
  })
})
