/**
 * Flow control's pure core as tables: the rate's sliding-window allowance, the fetch plan, and
 * the guarantee that a rate never allows more than `limit` starts in any window of length `per`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FlowControl from "../../src/internal/flowControl.ts"

const rate = (limit: number, perMillis: number) => ({ limit, perMillis })

describe("flow control core", () => {
  it("rateAllowance: limit minus the starts of buckets overlapping the window; when full, when it frees", () => {
    const r = rate(4, 1_000) // buckets of 50 ms; at 2,000 the buckets after 950 count
    const table: ReadonlyArray<
      readonly [recent: ReadonlyArray<FlowControl.Bucket>, now: number, allowed: number, nextAt: number | undefined]
    > = [
      [[], 2_000, 4, undefined],
      [[[900, 3]], 2_000, 4, undefined], // out of the window
      [[[950, 3]], 2_000, 4, undefined], // ends at 1,000: out too
      [[[1_000, 3]], 2_000, 1, undefined],
      [[[1_000, 3], [1_950, 1]], 2_000, 0, 2_050], // the 1,000 bucket leaves at 1,000 + 1,000 + 50
      [[[1_000, 1], [1_500, 2], [1_950, 1]], 2_000, 0, 2_050],
      [[[1_500, 2], [1_000, 1], [1_950, 2]], 2_000, 0, 2_550] // order-independent; two buckets must leave
    ]
    for (const [recent, now, allowed, nextAt] of table) {
      assert.deepStrictEqual(FlowControl.rateAllowance(r, recent, now), { allowed, nextAt }, JSON.stringify(recent))
    }
  })

  it("a greedy fetcher never gets more than limit starts in any window of per, and is not starved", () => {
    for (const [limit, per, every] of [[1, 1_000, 7], [3, 1_000, 7], [7, 1_000, 13], [100, 60_000, 250], [5, 333, 1]] as const) {
      const r = rate(limit, per)
      const buckets = new Map<number, number>()
      const starts: Array<number> = []
      for (let now = 0; now < 20 * per; now += every) {
        const { allowed } = FlowControl.rateAllowance(r, [...buckets], now)
        const n = Math.min(allowed, 5)
        for (let i = 0; i < n; i++) starts.push(now)
        if (n > 0) {
          const at = FlowControl.bucketAt(r, now)
          buckets.set(at, (buckets.get(at) ?? 0) + n)
        }
      }
      for (let i = 0; i + limit < starts.length; i++) {
        assert.isAtLeast(starts[i + limit]! - starts[i]!, per, `limit ${limit} per ${per}: start ${i + limit} within per of start ${i}`)
      }
      // At most a twentieth of the window's capacity is lost to bucketing (and one fetch interval).
      const windows = 20
      assert.isAtLeast(starts.length, Math.floor(windows * limit * (1 - 1 / FlowControl.BUCKETS_PER_WINDOW) - limit), `${limit}/${per}`)
    }
  })

  it("plan: global limit per partition, rate allowance, the smaller wins; full partitions are listed", () => {
    const limits: FlowControl.FlowLimits = {
      globalLimit: 3,
      rate: rate(2, 1_000),
      partition: { byKind: false, byArgs: ["customer"] }
    }
    const states = new Map<string, FlowControl.PartitionState>([
      ["a", { running: 3, recent: [] }], // global full
      ["b", { running: 1, recent: [] }], // 2 by global, 2 by rate
      ["c", { running: 0, recent: [[1_600, 2]] }], // rate full until 1,600 + 1,000 + 50
      ["d", { running: 2, recent: [[1_900, 1]] }] // 1 by global, 1 by rate
    ])
    const plan = FlowControl.plan(limits, states, 2_000)
    assert.deepStrictEqual(plan.full, ["a", "c"])
    assert.deepStrictEqual(plan.caps, [["b", 2], ["d", 1]])
    assert.strictEqual(plan.defaultCap, 2)
    assert.strictEqual(plan.nextRateAt, 2_650, "only c is held back by its rate")
  })

  it("plan: a global limit alone, and a rate alone", () => {
    const global = FlowControl.plan({ globalLimit: 5, rate: undefined, partition: undefined }, new Map([["", { running: 2, recent: [] }]]), 0)
    assert.deepStrictEqual(global, { full: [], caps: [["", 3]], defaultCap: 5, nextRateAt: undefined })
    const rated = FlowControl.plan({ globalLimit: undefined, rate: rate(10, 1_000), partition: undefined }, new Map(), 0)
    assert.deepStrictEqual(rated, { full: [], caps: [], defaultCap: 10, nextRateAt: undefined })
  })
})
