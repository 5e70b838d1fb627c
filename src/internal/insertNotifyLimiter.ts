/**
 * Rate limit for River's insert notifications, with a trailing edge.
 *
 * River sends at most one `river_insert` NOTIFY per queue per cooldown and drops the rest, so a
 * job inserted just after a notification may wait for the next poll. Here an insert inside the
 * window is answered by one trailing notification at the window's end, sent after the insert
 * commits (rolled-back inserts schedule nothing).
 *
 * Quiet period (issue 16): an insert that comes at least a tenth of the cooldown after the
 * queue's previous insert by this client (notified or not) notifies at once, inside the window
 * or not, unless an insert held back since the last notification is still waiting for its
 * trailing one. A trickle of inserts (one every 20 ms, say) so notifies each one without
 * waiting for the window, while a burst (inserts closer together than that, which are held
 * back) keeps River's one notification per window plus the trailing one, whatever pauses it
 * has.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Driver } from "./driver/driver.ts"
import { insertPayload } from "./notification.ts"

interface QueueState {
  /** When the last notification was sent (Clock millis). */
  last: number
  /** When the last insert was planned, notified or not. */
  lastInsert: number
  /** An insert was held back since the last notification (its trailing one is due). */
  held: boolean
  trailing: boolean
}

/** The rate limiter of one client's insert notifications. */
export interface InsertNotifyLimiter {
  /** Decides which queues get a notification in the insert statement itself. */
  readonly plan: (
    queues: ReadonlySet<string>,
    now: number
  ) => { readonly queues: ReadonlyArray<string>; readonly suppressed: ReadonlyArray<string> }
  /** Schedules trailing notifications for suppressed queues (run after commit). */
  readonly trailing: (queues: ReadonlyArray<string>) => Effect.Effect<void>
}

const NONE: ReadonlyArray<string> = []

/**
 * A limiter allowing one notification per queue per `cooldownMillis` (and one per quiet period of
 * `cooldownMillis / 10` without inserts), sending suppressed ones as trailing notifications in `scope`.
 */
export const makeInsertNotifyLimiter = (options: {
  readonly driver: Driver
  readonly scope: Scope.Scope
  readonly cooldownMillis: number
}): InsertNotifyLimiter => {
  const { cooldownMillis, driver, scope } = options
  const quietMillis = cooldownMillis / 10
  const states = new Map<string, QueueState>()

  const plan = (queues: ReadonlySet<string>, now: number) => {
    if (queues.size === 0) return { queues: NONE, suppressed: NONE }
    let notified: Array<string> | undefined
    let suppressed: Array<string> | undefined
    for (const queue of queues) {
      const state = states.get(queue)
      if (state === undefined) {
        states.set(queue, { last: now, lastInsert: now, held: false, trailing: false })
        ;(notified ??= []).push(queue)
      } else if (
        now - state.last >= cooldownMillis || now < state.last || (!state.held && now - state.lastInsert >= quietMillis)
      ) {
        state.last = now
        state.lastInsert = now
        state.held = false
        ;(notified ??= []).push(queue)
      } else {
        state.lastInsert = now
        state.held = true
        ;(suppressed ??= []).push(queue)
      }
    }
    return { queues: notified ?? NONE, suppressed: suppressed ?? NONE }
  }

  const sendTrailing = (queue: string, state: QueueState) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const wait = state.last + cooldownMillis - now
      if (wait > 0) yield* Effect.sleep(wait)
      state.last = yield* Clock.currentTimeMillis
      state.held = false
      yield* driver.notifyMany({ topic: "river_insert", payloads: [insertPayload(queue)] })
    }).pipe(
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => {
        state.trailing = false
      }))
    )

  const trailing = (queues: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      const fibers: Array<Effect.Effect<unknown>> = []
      for (const queue of queues) {
        const state = states.get(queue)
        if (state === undefined || state.trailing) continue
        state.trailing = true
        fibers.push(Effect.forkIn(sendTrailing(queue, state), scope))
      }
      return fibers.length === 0 ? Effect.void : Effect.asVoid(Effect.all(fibers))
    })

  return { plan, trailing }
}
