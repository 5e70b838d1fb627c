/**
 * Flow control's pure core: what one fetch of a limited queue may take.
 *
 * A queue may have a global limit (jobs of the queue running at once across every runner of the
 * schema, per partition when partitioned) and a rate limit (job starts per window, per partition
 * when partitioned). The fetch statement runs under a per-queue advisory lock (see the driver's
 * `jobGetAvailableLimited`), reads the running counts and the rate state of the queue's
 * partitions, and asks {@link plan} how many jobs of each partition it may start.
 *
 * Rate limits are a sliding window: at most `limit` starts in any window of length `per`,
 * wherever it begins (a fixed-window counter would allow `2 × limit` across a window's edge).
 * Starts are counted per bucket of `per / 20`; a fetch at `now` counts every bucket that overlaps
 * `(now − per, now]`, so the count never misses a start inside the window (it may include a few
 * from just before it: at worst a twentieth of the window's capacity is left unused).
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

/** Starts recorded in one bucket: the bucket's start (epoch ms) and how many. */
export type Bucket = readonly [at: number, starts: number]

/** What the database says about one partition: jobs running now, and its recent starts. */
export interface PartitionState {
  readonly running: number
  /** Buckets of starts that may overlap the rate's window, oldest first. */
  readonly recent: ReadonlyArray<Bucket>
}

/** The fetch's plan: which partitions are full, how many each other may start. */
export interface FetchPlan {
  /** Partitions that may start nothing now (left out of the fetch's scan). */
  readonly full: ReadonlyArray<string>
  /** Partitions with a known state that may start some jobs: how many each. */
  readonly caps: ReadonlyArray<readonly [partition: string, count: number]>
  /** How many jobs a partition with no stored state (nothing running, no recent starts) may start. */
  readonly defaultCap: number
  /**
   * When the earliest rate-limited partition may start again (epoch ms), if any partition is full
   * because of its rate: the producer fetches again then.
   */
  readonly nextRateAt: number | undefined
}

/** Buckets per window. */
export const BUCKETS_PER_WINDOW = 20

type Rate = NonNullable<FlowLimits["rate"]>

/** A bucket's width in ms. */
export const bucketWidth = (rate: Rate): number => rate.perMillis / BUCKETS_PER_WINDOW

/** The start of the bucket holding `now`. */
export const bucketAt = (rate: Rate, now: number): number => {
  const width = bucketWidth(rate)
  return Math.floor(now / width) * width
}

/** Buckets starting after this time overlap the window `(now − per, now]`. */
export const windowFloor = (rate: Rate, now: number): number => now - rate.perMillis - bucketWidth(rate)

/**
 * How many starts a partition's rate allows at `now`, given its recent buckets, and when the
 * next one becomes possible if none is (the end of the oldest buckets whose starts must leave
 * the window first).
 */
export const rateAllowance = (
  rate: Rate,
  recent: ReadonlyArray<Bucket>,
  now: number
): { readonly allowed: number; readonly nextAt: number | undefined } => {
  const floor = windowFloor(rate, now)
  const counted = recent.filter(([at]) => at > floor).sort((a, b) => a[0] - b[0])
  const total = counted.reduce((sum, [, n]) => sum + n, 0)
  if (total < rate.limit) return { allowed: rate.limit - total, nextAt: undefined }
  let excess = total - rate.limit + 1
  for (const [at, n] of counted) {
    excess -= n
    // This bucket stops overlapping the window once now − per − width reaches its start.
    if (excess <= 0) return { allowed: 0, nextAt: at + rate.perMillis + bucketWidth(rate) }
  }
  return { allowed: 0, nextAt: undefined }
}

/**
 * The plan of one fetch: for each partition with a state, how many jobs it may start (its global
 * limit minus what runs, and what its rate allows); partitions that may start none are full.
 * Partitions with no state get `defaultCap` (the global limit, or the rate's limit).
 */
export const plan = (limits: FlowLimits, states: ReadonlyMap<string, PartitionState>, now: number): FetchPlan => {
  const capOf = (state: PartitionState | undefined): { readonly cap: number; readonly rateNextAt: number | undefined } => {
    let cap = Number.MAX_SAFE_INTEGER
    let rateNextAt: number | undefined
    if (limits.globalLimit !== undefined) cap = Math.max(0, limits.globalLimit - (state?.running ?? 0))
    if (limits.rate !== undefined) {
      const allowance = rateAllowance(limits.rate, state?.recent ?? [], now)
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
