/** What the contenders of a drain (W1) share. */

/** One drain round: a backlog of `jobs` is worked until it is done or the window closes. */
export interface DrainSpec {
  readonly jobs: number
  /**
   * The round ends when every job is done or this much time has passed, whichever comes first;
   * the rate is the jobs finished in that time. Slow configurations (pg-boss's 2 s polls, a
   * 100 ms cooldown) would take minutes to drain 20,000 jobs; their rate is steady, so a window
   * measures it.
   */
  readonly windowMillis?: number | undefined
  /** The round fails with a timeout message if it has not ended by then. */
  readonly timeoutMillis: number
}

export interface DrainRound {
  /** Jobs whose completion is committed when the clock stopped. */
  readonly completed: number
  readonly seconds: number
  /** CPU time of the benchmark process per completed job, µs (the database's is not included). */
  readonly cpuMicros: number
}

export const rate = (r: DrainRound): number => r.completed / r.seconds
