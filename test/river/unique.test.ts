/**
 * Scenario 5, unique jobs across languages: the same unique job inserted by River's client and
 * by effect-river is deduplicated (`UniqueSkippedAsDuplicate` / `skippedAsDuplicate`, same job)
 * in both orders, and the `unique_key` bytes are identical: by args (all keys, chosen keys with
 * River's `river:"unique"` tags, nested objects and maps), by period (with and without
 * `scheduledAt`, in another time zone), by queue and by state (with the `unique_states` bits).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { InsertOptions } from "../../src/InsertOptions.ts"
import type * as JobKind from "../../src/JobKind.ts"
import { uniqueKeyHex, uniqueKeyString } from "../../src/internal/uniqueKey.ts"
import { resolveUnique } from "../../src/internal/insertOptions.ts"
import { Behave, behave, UniqueAll, UniqueKeys } from "./utils/kinds.ts"
import { Scenario } from "./utils/harness.ts"
import type { RiverInsertOpts } from "./utils/riverside.ts"

let s: Scenario
beforeAll(async () => {
  s = await Scenario.create("river_unique")
})
afterAll(async () => {
  await s?.dispose()
})

const hex = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString("hex"))

const sides = async (prefix: string) => {
  const schema = await s.effectSchema(prefix)
  const river = await s.river(schema, `river-${prefix}`)
  const client = await s.client(schema)
  return { schema, river, client }
}

/** River inserts first, effect-river second; then the reverse in another schema. Both must deduplicate. */
const bothOrders = async <A>(
  prefix: string,
  kind: JobKind.JobKind<A, any>,
  args: { readonly ts: A; readonly go: unknown },
  options: { readonly ts: InsertOptions; readonly go: RiverInsertOpts }
) => {
  const first = await sides(`${prefix}_go_first`)
  const goJob = (await first.river.insert(kind.kind, args.go, options.go)).job
  expect(goJob.uniqueKey, "River made the job unique").not.toBeNull()
  const tsDuplicate = await s.run(first.client.insert(kind, args.ts, options.ts))
  expect(tsDuplicate.skippedAsDuplicate, "effect-river sees River's job as a duplicate").toBe(true)
  expect(tsDuplicate.job.id).toBe(goJob.id)
  const many = await s.run(first.client.insertMany([kind.of(args.ts, options.ts)]))
  expect(many[0]!.skippedAsDuplicate, "insertMany too").toBe(true)

  const second = await sides(`${prefix}_ts_first`)
  const tsJob = (await s.run(second.client.insert(kind, args.ts, options.ts))).job
  const goDuplicate = await second.river.insert(kind.kind, args.go, options.go)
  expect(goDuplicate.skippedAsDuplicate, "River sees effect-river's job as a duplicate").toBe(true)
  expect(goDuplicate.job.id).toBe(tsJob.id)
  const goMany = await second.river.insertMany([{ kind: kind.kind, args: args.go, opts: options.go }])
  expect(goMany[0]!.skippedAsDuplicate, "River's InsertMany too").toBe(true)

  expect(hex(tsJob.uniqueKey), "identical unique_key bytes").toBe(goJob.uniqueKey)
  expect(tsJob.uniqueStates).toEqual(goJob.uniqueStates)
  return { goJob, tsJob, first, second }
}

const customer = "Acme <&> Grüße 👋"
const allArgs = { customer, amount: 42n, note: "first", nested: { zeta: "z", alpha: 1 }, labels: { a: "1", b: "2" }, items: [3, 1, 2] }

describe("unique by args", () => {
  it("all keys, with a nested struct in Go's field order", async () => {
    await bothOrders("all", UniqueAll, { ts: allArgs, go: allArgs }, { ts: { unique: { byArgs: true } }, go: { unique: { by_args: true } } })
  })

  it("all keys, with a nested map written in no particular order (Go sorts map keys)", async () => {
    const ts = { ...allArgs, labels: { b: "2", "10": "ten", a: "1", "2": "two" } }
    await bothOrders("all_map", UniqueAll, { ts, go: ts }, { ts: { unique: { byArgs: true } }, go: { unique: { by_args: true } } })
  })

  it("different args are different jobs on both sides", async () => {
    const { client, river } = await sides("all_different")
    const go = (await river.insert("interop_unique_all", allArgs, { unique: { by_args: true } })).job
    const ts = await s.run(client.insert(UniqueAll, { ...allArgs, amount: 43n }, { unique: { byArgs: true } }))
    expect(ts.skippedAsDuplicate).toBe(false)
    expect(ts.job.id).not.toBe(go.id)
  })

  it("chosen keys: River's river:\"unique\" fields (customer, address.city, all of meta) are effect-river's byArgs list", async () => {
    const base = { customer, note: "one", address: { street: "1 Main St", city: "Zürich" }, meta: { region: "eu", tier: 2 } }
    const other = { ...base, note: "two", address: { street: "2 Side St", city: "Zürich" } }
    const options = { ts: { unique: { byArgs: ["customer", "address.city", "meta"] } }, go: { unique: { by_args: true } } }
    const { first } = await bothOrders("keys", UniqueKeys, { ts: other, go: base }, options)
    // A different city or meta is another job, on both sides.
    const city = await s.run(first.client.insert(UniqueKeys, { ...base, address: { ...base.address, city: "Genève" } }, options.ts))
    expect(city.skippedAsDuplicate).toBe(false)
    const meta = await first.river.insert("interop_unique_keys", { ...base, meta: { region: "eu", tier: 3 } }, options.go)
    expect(meta.skippedAsDuplicate).toBe(false)
    const key = uniqueKeyString(resolveUnique(options.ts.unique)!, {
      kind: "interop_unique_keys",
      argsJson: JSON.stringify(base),
      queue: "default",
      scheduledAtMillis: undefined,
      nowMillis: 0
    })
    expect(key).toBe(`&kind=interop_unique_keys&args={"address":{"city":"Zürich"},"customer":"Acme \\u003c\\u0026\\u003e Grüße 👋","meta":{"region":"eu","tier":2}}`)
  })
})

describe("unique by period", () => {
  it("without scheduledAt: the current period, on both sides", async () => {
    const period = 24 * 3_600_000
    for (let tries = 0; tries < 2; tries++) {
      const before = Date.now()
      const { client, river } = await sides(`period_now_${tries}`)
      const go = (await river.insert("interop_behave", behave("complete"), { unique: { by_period_ms: period } })).job
      const ts = await s.run(client.insert(Behave, behave("complete"), { unique: { byPeriod: "24 hours" } }))
      // A day boundary between the two inserts makes two periods: then try once more.
      if (Math.floor(before / period) !== Math.floor(Date.now() / period)) continue
      expect(ts.skippedAsDuplicate).toBe(true)
      expect(hex(ts.job.uniqueKey)).toBe(go.uniqueKey)
      return
    }
    throw new Error("two day boundaries in a row")
  })

  it("with scheduledAt: River's period of the scheduled time in UTC (since v0.48), whatever the offset", async () => {
    const at = "2031-05-06T07:08:09.123Z"
    const goOptions = { scheduled_at: "2031-05-06T12:38:09.123+05:30", unique: { by_period_ms: 15 * 60_000 } } as const
    const tsOptions = { scheduledAt: new Date("2031-05-06T07:14:59.999Z"), unique: { byPeriod: "15 minutes" } } as const
    const { goJob, first } = await bothOrders("period_scheduled", Behave, { ts: behave("complete"), go: behave("complete") }, {
      ts: tsOptions,
      go: goOptions
    })
    expect(goJob.scheduledAt.toISOString()).toBe(at)
    const key = uniqueKeyString(resolveUnique(tsOptions.unique)!, {
      kind: "interop_behave",
      argsJson: "{}",
      queue: "default",
      scheduledAtMillis: Date.parse(at),
      nowMillis: 0
    })
    expect(key).toBe("&kind=interop_behave&period=2031-05-06T07:00:00Z")
    expect(goJob.uniqueKey).toBe(uniqueKeyHex(key))
    // The next period is another job.
    const next = await s.run(first.client.insert(Behave, behave("complete"), { ...tsOptions, scheduledAt: new Date("2031-05-06T07:15:00Z") }))
    expect(next.skippedAsDuplicate).toBe(false)
  })
})

describe("unique by queue and by state", () => {
  it("by queue: one per queue on both sides", async () => {
    const { goJob, first } = await bothOrders("queue", Behave, { ts: behave("complete"), go: behave("complete") }, {
      ts: { queue: "alpha", unique: { byQueue: true } },
      go: { queue: "alpha", unique: { by_queue: true } }
    })
    const beta = await s.run(first.client.insert(Behave, behave("complete"), { queue: "beta", unique: { byQueue: true } }))
    expect(beta.skippedAsDuplicate).toBe(false)
    expect(hex(beta.job.uniqueKey)).not.toBe(goJob.uniqueKey)
  })

  it("by state: the same unique_states bits; a cancelled job blocks only where the states say so", async () => {
    const states = ["available", "cancelled", "pending", "running", "scheduled"] as const
    const { goJob, first } = await bothOrders("state", Behave, { ts: behave("complete"), go: behave("complete") }, {
      ts: { unique: { byArgs: true, byState: states } },
      go: { unique: { by_args: true, by_state: states } }
    })
    expect(goJob.uniqueStates).toEqual([...states])
    // Cancelled by River: still blocks (cancelled is in the states)…
    await first.river.cancel(goJob.id)
    const blocked = await s.run(first.client.insert(Behave, behave("complete"), { unique: { byArgs: true, byState: states } }))
    expect(blocked.skippedAsDuplicate).toBe(true)
    // …but not a job with River's default states (cancelled is not among them).
    const go = (await first.river.insert("interop_behave", behave("cancel"), { unique: { by_args: true } })).job
    await first.river.cancel(go.id)
    const free = await s.run(first.client.insert(Behave, behave("cancel"), { unique: { byArgs: true } }))
    expect(free.skippedAsDuplicate).toBe(false)
    expect(hex(free.job.uniqueKey)).toBe(go.uniqueKey)
    expect(free.job.uniqueStates).toEqual(go.uniqueStates)
  })
})
