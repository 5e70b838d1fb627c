/**
 * Timeouts for the benchmarks: no workload may hang `npm run bench`.
 *
 * - `withTimeout` races a promise against a timer and rejects with a {@link BenchTimeout} that
 *   names what timed out and the last step the workload reported.
 * - `step` records what a workload is doing (printed when it times out); `waitFor` polls a
 *   condition until a deadline and fails with a message saying how far it got.
 * - `track` registers a child process so that a timed-out run can kill it.
 */
import type { ChildProcess } from "node:child_process"

/** Raised when a workload, or one step of it, did not finish in time. */
export class BenchTimeout extends Error {
  override readonly name = "BenchTimeout"
}

let current = "starting"

/** Records what the running workload is doing now (shown if it times out). */
export const step = (label: string): void => {
  current = label
}

/** The last step recorded with {@link step}. */
export const lastStep = (): string => current

/**
 * `promise`, or a rejection with a {@link BenchTimeout} after `millis`: "`label` timed out after
 * N s (last step: …)". The timer does not keep the process alive.
 */
export const withTimeout = <A>(promise: Promise<A>, millis: number, label: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BenchTimeout(`${label} timed out after ${(millis / 1000).toFixed(1)} s (last step: ${current})`)),
      millis
    )
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Polls `check` every `everyMillis` until it returns true; rejects with a {@link BenchTimeout}
 * after `millis`, its message built by `progress` (e.g. "12,000 of 20,000 jobs finished").
 */
export const waitFor = async (
  check: () => boolean | Promise<boolean>,
  options: { readonly millis: number; readonly label: string; readonly progress?: () => string; readonly everyMillis?: number }
): Promise<void> => {
  const deadline = performance.now() + options.millis
  const every = options.everyMillis ?? 5
  while (!(await check())) {
    if (performance.now() > deadline) {
      const progress = options.progress === undefined ? "" : `: ${options.progress()}`
      throw new BenchTimeout(`${options.label} did not finish within ${(options.millis / 1000).toFixed(0)} s${progress}`)
    }
    await new Promise((resolve) => setTimeout(resolve, every))
  }
}

const children = new Set<ChildProcess>()

/** Registers a child process, to be killed if the run times out; unregistered when it exits. */
export const track = <C extends ChildProcess>(child: C): C => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

/** Kills every tracked child process that is still running. */
export const killChildren = (): void => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  children.clear()
}
