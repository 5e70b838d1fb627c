/**
 * A memory-limited cgroup for one child process of the benchmarks: how a container with a memory
 * limit runs the runner. Node sizes its default V8 heap from the memory it may use
 * (`process.constrainedMemory()`, read from the cgroup's limit), so "Node's default heap" means
 * something else on a 24 GB host than in a pod limited to 2 GB. Needs root and a cgroup file
 * system whose memory controller this process may write (cgroup v1's `memory` hierarchy, or
 * cgroup v2 with `memory` enabled for children); otherwise {@link makeMemoryCgroup} says why not.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs"

/**
 * Where to create a child cgroup of this process's memory cgroup, from `/proc/self/cgroup` and
 * the cgroup v2 root's `cgroup.controllers`: v1's `N:memory:/path` gives
 * `/sys/fs/cgroup/memory/path`; otherwise v2's `0::/path` gives `/sys/fs/cgroup/path` when the
 * root offers `memory`. The file to write the limit to differs: `memory.limit_in_bytes` (v1),
 * `memory.max` (v2).
 */
export const memoryCgroupParent = (
  procSelfCgroup: string,
  v2Controllers: string | undefined
): { readonly dir: string; readonly limitFile: string } | string => {
  const lines = procSelfCgroup.split("\n").filter((l) => l.length > 0)
  for (const line of lines) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line)
    if (match !== null && match[1]!.split(",").includes("memory")) {
      const path = match[2]!
      return { dir: `/sys/fs/cgroup/memory${path === "/" ? "" : path}`, limitFile: "memory.limit_in_bytes" }
    }
  }
  const unified = lines.find((l) => l.startsWith("0::"))
  if (unified === undefined) return "no memory cgroup in /proc/self/cgroup"
  if (v2Controllers === undefined || !v2Controllers.split(/\s+/).includes("memory")) {
    return "cgroup v2 without the memory controller"
  }
  const path = unified.slice(3)
  return { dir: `/sys/fs/cgroup${path === "/" ? "" : path}`, limitFile: "memory.max" }
}

/** A cgroup made for one child: run the child through `wrap`, then `remove` it. */
export interface MemoryCgroup {
  readonly dir: string
  /** The command that joins the cgroup, then execs `command` (so Node starts inside it). */
  readonly wrap: (command: ReadonlyArray<string>) => readonly [string, ReadonlyArray<string>]
  readonly remove: () => void
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

/** Creates a cgroup limited to `bytes` of memory, or returns why it cannot. */
export const makeMemoryCgroup = (name: string, bytes: number): MemoryCgroup | string => {
  const parent = memoryCgroupParent(read("/proc/self/cgroup") ?? "", read("/sys/fs/cgroup/cgroup.controllers"))
  if (typeof parent === "string") return parent
  const dir = `${parent.dir}/${name}`
  try {
    mkdirSync(dir)
  } catch (e) {
    return `cannot create ${dir}: ${(e as Error).message}`
  }
  try {
    writeFileSync(`${dir}/${parent.limitFile}`, String(bytes))
  } catch (e) {
    rmdirSync(dir)
    return `cannot set ${dir}/${parent.limitFile}: ${(e as Error).message}`
  }
  return {
    dir,
    wrap: (command) => ["/bin/sh", ["-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir, ...command]],
    remove: () => {
      try {
        rmdirSync(dir)
      } catch {
        // still has a process (a child that did not exit): left for the next run's cleanup
      }
    }
  }
}
