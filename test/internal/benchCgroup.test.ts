/**
 * Where the backlog benchmark creates the memory cgroup its "container" runner process runs in
 * (bench/cgroup.ts), from `/proc/self/cgroup` as cgroup v1 and v2 write it.
 */
import { assert, describe, it } from "@effect/vitest"
import { makeMemoryCgroup, memoryCgroupParent } from "../../bench/cgroup.ts"

describe("bench memory cgroup", () => {
  it("cgroup v1: the memory hierarchy's path, limit in memory.limit_in_bytes", () => {
    const v1 = "9:name=systemd:/\n5:devices:/\n4:memory:/process_api/abc\n3:cpuset:/\n0::/\n"
    assert.deepStrictEqual(memoryCgroupParent(v1, undefined), {
      dir: "/sys/fs/cgroup/memory/process_api/abc",
      limitFile: "memory.limit_in_bytes"
    })
    assert.deepStrictEqual(memoryCgroupParent("4:cpu,memory:/\n", undefined), {
      dir: "/sys/fs/cgroup/memory",
      limitFile: "memory.limit_in_bytes"
    })
  })

  it("cgroup v2: the unified path, limit in memory.max, only when the memory controller is offered", () => {
    assert.deepStrictEqual(memoryCgroupParent("0::/user.slice/session-1.scope\n", "cpuset cpu io memory pids\n"), {
      dir: "/sys/fs/cgroup/user.slice/session-1.scope",
      limitFile: "memory.max"
    })
    assert.strictEqual(memoryCgroupParent("0::/\n", "cpuset cpu io pids\n"), "cgroup v2 without the memory controller")
    assert.strictEqual(memoryCgroupParent("", undefined), "no memory cgroup in /proc/self/cgroup")
  })

  it("a cgroup that cannot be made is a reason, not an exception (the variant is then skipped)", () => {
    // The parent directory does not exist, whatever this machine's cgroups are.
    const made = makeMemoryCgroup("effect-river-no-such-parent/child", 1024 ** 3)
    assert.strictEqual(typeof made, "string")
  })
})
