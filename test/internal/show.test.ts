import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { InvalidOptions } from "../../src/Errors.ts"
import { show } from "../../src/internal/show.ts"
import * as JobKind from "../../src/JobKind.ts"
import * as Runner from "../../src/Runner.ts"
import * as Worker from "../../src/Worker.ts"

describe("show: how a rejected value is named in an error", () => {
  it("names values JSON has no form for instead of printing null", () => {
    assert.strictEqual(show(new Date(Number.NaN)), "Invalid Date")
    assert.strictEqual(show(Number.NaN), "NaN")
    assert.strictEqual(show(Number.POSITIVE_INFINITY), "Infinity")
    assert.strictEqual(show(-0), "-0")
    assert.strictEqual(show(undefined), "undefined")
    assert.strictEqual(show(Symbol("x")), "Symbol(x)")
    assert.strictEqual(show(() => 1), "a function")
    assert.strictEqual(show(12n), "12n")
    assert.strictEqual(show({ at: new Date(Number.NaN), n: Number.NaN }), `{"at":Invalid Date,"n":NaN}`)
  })

  it("keeps JSON for plain values, dates as ISO strings, and shortens long ones", () => {
    assert.strictEqual(show("a"), `"a"`)
    assert.strictEqual(show({ a: [1, true, null] }), `{"a":[1,true,null]}`)
    assert.strictEqual(show(new Date("2030-01-02T03:04:05.000Z")), "2030-01-02T03:04:05.000Z")
    assert.strictEqual(show("x".repeat(200)).length, 80)
  })

  it.effect("errors show an invalid Date or NaN as given", () =>
    Effect.gen(function*() {
      const Kind = JobKind.make("show_kind", { args: Schema.Struct({}) })
      const worker = Worker.make(Kind, () => Effect.void)
      const error = yield* Effect.flip(
        Runner.make({ queues: { default: { maxWorkers: Number.NaN } }, workers: [worker] }) as Effect.Effect<unknown, unknown, never>
      )
      assert.instanceOf(error, InvalidOptions)
      assert.strictEqual((error as InvalidOptions).message, "invalid queues.default.maxWorkers: must be an integer from 1 to 10,000 (got NaN)")
    }))
})
