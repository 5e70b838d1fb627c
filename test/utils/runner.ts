/**
 * Runner fixtures for the suite, built on the public testing kit (src/Testing.ts): a runner on
 * a fresh schema, its client, and a subscription to its events, with the TestClock settings.
 */
import { Effect, Fiber, type PubSub, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import type { JobEvent } from "../../src/JobEvent.ts"
import type * as Runner from "../../src/Runner.ts"
import * as Testing from "../../src/Testing.ts"
import type * as Worker from "../../src/Worker.ts"

export const testSettings = Testing.testRunnerSettings

export const startRunner = <const W extends ReadonlyArray<Worker.Any>>(
  options: Omit<Runner.RunnerOptions<W>, "schema"> & { readonly schema?: string }
) =>
  Effect.gen(function*() {
    const schema = options.schema ?? (yield* Testing.freshSchema("r"))
    const { client, events, runner } = yield* Testing.runner({ ...options, schema })
    return { client, runner, schema, events }
  }) as Effect.Effect<
    {
      client: import("../../src/Client.ts").Client["Service"]
      runner: Runner.Runner["Service"]
      schema: string
      events: PubSub.Subscription<JobEvent>
    },
    unknown,
    SqlClient.SqlClient | Scope.Scope | Worker.Requirements<W[number]>
  >

export const awaitEvent = Testing.awaitEvent

/** Collects `n` events. */
export const takeEvents = (events: PubSub.Subscription<JobEvent>, n: number) =>
  Effect.gen(function*() {
    const out: Array<JobEvent> = []
    while (out.length < n) out.push(yield* Testing.awaitEvent(events))
    return out
  })

export const advanceUntilEvent = (
  events: PubSub.Subscription<JobEvent>,
  predicate: (e: JobEvent) => boolean,
  options: { readonly stepMillis?: number; readonly maxMillis?: number } = {}
) => Testing.advanceUntil(events, predicate, { step: options.stepMillis, max: options.maxMillis ?? 600_000 })

/**
 * Moves TestClock forward in steps (with a few real milliseconds each) until the fiber is done;
 * returns how far the clock moved. Fails the fiber's way if it failed.
 */
export const adjustUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>, stepMillis = 1_000, maxMillis = 600_000) =>
  Effect.gen(function*() {
    let moved = 0
    while (fiber.pollUnsafe() === undefined) {
      if (moved >= maxMillis) return yield* Effect.die(new Error(`fiber still running after moving the clock ${moved} ms`))
      yield* TestClock.withLive(Effect.sleep("15 millis"))
      if (fiber.pollUnsafe() !== undefined) break
      yield* TestClock.adjust(stepMillis)
      moved += stepMillis
    }
    yield* Fiber.join(fiber)
    return moved
  })

/** Waits in real time (also under `TestClock`) until `condition` holds; a defect after 30 s naming `what`. */
export const waitReal = <R>(what: string, condition: Effect.Effect<boolean, unknown, R>) =>
  TestClock.withLive(Effect.gen(function*() {
    const deadline = Date.now() + 30_000
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  }))
