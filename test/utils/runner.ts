/**
 * Runner fixtures: a runner on a fresh schema, its client, and a subscription to its events,
 * with settings that work under TestClock (no fetch debounce, completions written at once,
 * no soft-stop wait at the end of a test).
 */
import { Effect, Fiber, PubSub, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import type { JobEvent } from "../../src/JobEvent.ts"
import * as Runner from "../../src/Runner.ts"
import type * as Worker from "../../src/Worker.ts"
import { migratedSchema } from "./river.ts"

export const testSettings = {
  fetchCooldown: 0,
  completerFlushInterval: 0,
  insertNotifyCooldown: 0,
  softStopTimeout: 0
} as const

export const startRunner = <const W extends ReadonlyArray<Worker.Any>>(
  options: Omit<Runner.RunnerOptions<W>, "schema"> & { readonly schema?: string }
) =>
  Effect.gen(function*() {
    const schema = options.schema ?? (yield* migratedSchema("r"))
    const { client, runner } = yield* Runner.make({ ...testSettings, ...options, schema })
    const events = yield* runner.subscribe
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

/** Waits (really) for the next event matching the predicate, skipping others. */
export const awaitEvent = (events: PubSub.Subscription<JobEvent>, predicate: (e: JobEvent) => boolean = () => true) =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* PubSub.take(events)
      if (predicate(event)) return event
    }
  })

/** Collects `n` events. */
export const takeEvents = (events: PubSub.Subscription<JobEvent>, n: number) =>
  Effect.gen(function*() {
    const out: Array<JobEvent> = []
    while (out.length < n) out.push(yield* PubSub.take(events))
    return out
  })

/**
 * Moves TestClock forward in steps until an event matching the predicate arrives, giving the
 * runner a few real milliseconds per step for its database round trips. Returns the event and
 * how far the clock moved.
 */
export const advanceUntilEvent = (
  events: PubSub.Subscription<JobEvent>,
  predicate: (e: JobEvent) => boolean,
  options: { readonly stepMillis?: number; readonly maxMillis?: number } = {}
) =>
  Effect.gen(function*() {
    const step = options.stepMillis ?? 500
    const max = options.maxMillis ?? 600_000
    let moved = 0
    while (true) {
      // Drain what arrived so far.
      while (true) {
        const ready = yield* PubSub.takeUpTo(events, 1)
        if (ready.length === 0) break
        if (predicate(ready[0]!)) return { event: ready[0]!, moved }
      }
      if (moved >= max) return yield* Effect.die(new Error(`no matching event after moving the clock ${moved} ms`))
      yield* TestClock.adjust(step)
      moved += step
      yield* TestClock.withLive(Effect.sleep("15 millis"))
    }
  })

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
