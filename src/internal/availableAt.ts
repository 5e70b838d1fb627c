/**
 * An internal insert instruction: the job is inserted `available` with this `scheduled_at`
 * instead of what its options say (an explicit `scheduledAt` makes a job `scheduled`, River's
 * rule for client inserts). The periodic enqueuer uses it so a run is `available` at its planned
 * time, as River's enqueuer inserts it. Set on an `InsertRequest` under this symbol; never part of
 * the public options.
 *
 * @internal
 */
export const AvailableAt: unique symbol = Symbol.for("effect-river/internal/AvailableAt")

/** The instruction on a request, if any. */
export const availableAtOf = (request: object): Date | undefined =>
  (request as { readonly [AvailableAt]?: Date })[AvailableAt]
