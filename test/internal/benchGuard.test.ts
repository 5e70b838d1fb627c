/**
 * The benchmarks' timeouts (bench/guard.ts, bench/workloads.ts): a workload that hangs must end
 * `npm run bench` with a message, not hang it. No timing luck involved: the awaited promises
 * never settle and the conditions never hold, so only the timer can end them.
 */
import { describe, expect, it } from "@effect/vitest"
import { BenchTimeout, step, waitFor, withTimeout } from "../../bench/guard.ts"
import { workloads } from "../../bench/workloads.ts"

const never = new Promise<never>(() => {})

describe("bench timeouts", () => {
  it("withTimeout rejects a promise that never settles, naming it and the last step", async () => {
    step("w1: round 2 of 5, effect-river")
    const error = await withTimeout(never, 20, "workload w1").catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BenchTimeout)
    expect((error as Error).message).toBe("workload w1 timed out after 0.0 s (last step: w1: round 2 of 5, effect-river)")
  })

  it("withTimeout passes a settled promise through", async () => {
    expect(await withTimeout(Promise.resolve(7), 60_000, "x")).toBe(7)
    await expect(withTimeout(Promise.reject(new Error("boom")), 60_000, "x")).rejects.toThrow("boom")
  })

  it("waitFor fails with its progress when the condition never holds", async () => {
    const error = await waitFor(() => false, { millis: 20, label: "drain", progress: () => "3 of 10 jobs" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(BenchTimeout)
    expect((error as Error).message).toBe("drain did not finish within 0 s: 3 of 10 jobs")
  })

  it("every workload has a time limit", () => {
    expect(Object.keys(workloads).length).toBeGreaterThan(0)
    for (const [name, w] of Object.entries(workloads)) {
      expect(Number.isFinite(w.timeoutMillis) && w.timeoutMillis > 0, name).toBe(true)
    }
  })
})
