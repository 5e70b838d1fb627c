/**
 * Flow control's pure core: what one fetch of a limited queue may take.
 *
 * A queue may have a global limit (jobs of the queue running at once across every runner of the
 * schema, per partition when partitioned) and a rate limit (job starts per window, per partition
 * when partitioned). The fetch statement runs under a per-queue advisory lock (see the driver's
 * `jobGetAvailableLimited`), reads the running counts and the rate state of the queue's
 * partitions, and asks {@link plan} how many jobs of each partition it may start.
 *
 * Rate limits use GCRA (the generic cell rate algorithm): each partition keeps a theoretical
 * arrival time `tat` (epoch milliseconds); with `limit` starts per `per`, each start advances it
 * by the emission interval `T = per / limit`, and a start at `now` conforms while
 * `max(tat, now) - now ≤ per - T`. A partition idle for `per` may start `limit` jobs at once; after
 * that one start every `T`: in any window of length `per` at most `limit` starts, with no burst at
 * window edges (a fixed-window counter would allow `2 × limit` across an edge).
 *
 * @internal
 */

/** How a queue is partitioned: by kind, by the values of top-level args keys, or both. */
export interface Partitioning {
  readonly byKind: boolean
  readonly byArgs: ReadonlyArray<string>
}

/** A queue's limits, validated. */
export interface FlowLimits {
  /** Jobs running at once across every runner (of each partition, when partitioned). */
  readonly globalLimit: number | undefined
  /** At most `limit` starts per `perMillis` across every runner (of each partition, when partitioned). */
  readonly rate: { readonly limit: number; readonly perMillis: number } | undefined
  readonly partition: Partitioning | undefined
}

/** What the database says about one partition: jobs running now, and its rate state. */
export interface PartitionState {
  readonly running: number
  /** The theoretical arrival time (epoch ms), if one is stored and still ahead of now. */
  readonly tat: number | undefined
}

/** The fetch's plan: which partitions are full, how many each other may start. */
export interface FetchPlan {
  /** Partitions that may start nothing now (left out of the fetch's scan). */
  readonly full: ReadonlyArray<string>
  /** Partitions with a known state that may start some jobs: how many each. */
  readonly caps: ReadonlyArray<readonly [partition: string, count: number]>
  /** How many jobs a partition with no stored state (nothing running, no rate state) may start. */
  readonly defaultCap: number
  /**
   * When the earliest rate-limited partition may start again (epoch ms), if any partition is full
   * because of its rate: the producer fetches again then.
   */
  readonly nextRateAt: number | undefined
}

/** Float slack for `per / limit` intervals that are not whole milliseconds. */
const EPSILON = 1e-6

/** The emission interval and the burst tolerance of a rate. */
const gcra = (rate: NonNullable<FlowLimits["rate"]>) => {
  const interval = rate.perMillis / rate.limit
  return { interval, tolerance: rate.perMillis - interval }
}

/**
 * How many starts a partition's rate allows at `now`, and when the next one becomes possible if
 * none is allowed.
 */
export const rateAllowance = (
  rate: NonNullable<FlowLimits["rate"]>,
  tat: number | undefined,
  now: number
): { readonly allowed: number; readonly nextAt: number | undefined } => {
  const { interval, tolerance } = gcra(rate)
  const ahead = Math.max(tat ?? now, now) - now
  if (ahead > tolerance + EPSILON) return { allowed: 0, nextAt: (tat ?? now) - tolerance }
  return { allowed: Math.min(rate.limit, Math.floor((tolerance - ahead) / interval + EPSILON) + 1), nextAt: undefined }
}

/** A partition's theoretical arrival time after `started` starts at `now`. */
export const advanceTat = (
  rate: NonNullable<FlowLimits["rate"]>,
  tat: number | undefined,
  now: number,
  started: number
): number => Math.max(tat ?? now, now) + started * gcra(rate).interval

/**
 * The plan of one fetch: for each partition with a state, how many jobs it may start (its global
 * limit minus what runs, and what its rate allows); partitions that may start none are full.
 * Partitions with no state get `defaultCap` (the global limit, or the rate's burst).
 */
export const plan = (limits: FlowLimits, states: ReadonlyMap<string, PartitionState>, now: number): FetchPlan => {
  const capOf = (state: PartitionState | undefined): { readonly cap: number; readonly rateNextAt: number | undefined } => {
    let cap = Number.MAX_SAFE_INTEGER
    let rateNextAt: number | undefined
    if (limits.globalLimit !== undefined) cap = Math.max(0, limits.globalLimit - (state?.running ?? 0))
    if (limits.rate !== undefined) {
      const allowance = rateAllowance(limits.rate, state?.tat, now)
      if (allowance.allowed < cap) {
        cap = allowance.allowed
        rateNextAt = allowance.nextAt
      }
    }
    return { cap, rateNextAt }
  }
  const full: Array<string> = []
  const caps: Array<readonly [string, number]> = []
  let nextRateAt: number | undefined
  for (const [partition, state] of states) {
    const { cap, rateNextAt } = capOf(state)
    if (cap > 0) {
      caps.push([partition, cap])
    } else {
      full.push(partition)
      if (rateNextAt !== undefined && (nextRateAt === undefined || rateNextAt < nextRateAt)) nextRateAt = rateNextAt
    }
  }
  return { full, caps, defaultCap: capOf(undefined).cap, nextRateAt }
}

/**
 * The new rate state after a fetch: for each partition that started jobs, its advanced `tat`.
 */
export const tatsAfter = (
  rate: NonNullable<FlowLimits["rate"]>,
  states: ReadonlyMap<string, PartitionState>,
  startedByPartition: ReadonlyMap<string, number>,
  now: number
): Array<readonly [partition: string, tat: number]> => {
  const out: Array<readonly [string, number]> = []
  for (const [partition, started] of startedByPartition) {
    if (started > 0) out.push([partition, advanceTat(rate, states.get(partition)?.tat, now, started)])
  }
  return out
}
